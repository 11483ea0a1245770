import { AppError } from '../errors.ts';

/** The wait lock was not granted within its timeout: the resource is busy, so ask the client to retry. */
export const lockTimeout = (key: string, timeoutMs: number) =>
  new AppError(503, 'LOCK_TIMEOUT', 'Resource busy', 'Too many operations on this resource at once; retry shortly', {
    cause: new Error(`lock ${key} not granted within ${timeoutMs} ms`),
    headers: { 'Retry-After': '1' },
  });
