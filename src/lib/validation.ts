import type { Hook } from '@hono/zod-openapi';
import type { z } from '@hono/zod-openapi';
import { validationFailed } from './errors.ts';
import type { AppEnv } from '../types.ts';

/** Turns zod issues into one readable sentence plus a machine-readable list. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): { detail: string; errors: { path: string; message: string }[] } {
  const errors = issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }));
  return { detail: errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors };
}

/** Every route's validation failure becomes one 400 VALIDATION_FAILED problem. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) {
    const { detail, errors } = describeIssues(result.error.issues);
    throw validationFailed(detail, { errors });
  }
};
