import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../types.ts';
import { bearerToken } from './auth.ts';
import { AppError, unauthenticated } from './errors.ts';

const encoder = new TextEncoder();

/** Compares two secrets in time independent of where they differ. */
async function sameSecret(a: string, b: string): Promise<boolean> {
  // Hashing first gives equal lengths, which timingSafeEqual requires, without leaking the length.
  const [ha, hb] = await Promise.all([crypto.subtle.digest('SHA-256', encoder.encode(a)), crypto.subtle.digest('SHA-256', encoder.encode(b))]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}

/** True when `token` is the admin token (compared in constant time). */
export async function isAdminToken(env: { ADMIN_TOKEN?: string }, token: string): Promise<boolean> {
  return Boolean(env.ADMIN_TOKEN) && (await sameSecret(token, env.ADMIN_TOKEN!));
}

/** Requires `Authorization: Bearer <ADMIN_TOKEN>`. A valid user token is not enough: 403. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearerToken(c.req.header('Authorization'));
  if (!token) throw unauthenticated('Send the admin token as "Authorization: Bearer <token>"');
  if (!(await isAdminToken(c.env, token))) {
    throw new AppError(403, 'FORBIDDEN', 'Forbidden', 'Admin token required');
  }
  await next();
});
