import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../types.ts';
import { bearerToken, verifyUserToken } from './auth.ts';
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

/**
 * Requires the admin token or a valid user token, and sets `actor`: the user id, or null for the
 * admin. A route middleware, so it runs before the path and body are validated: a caller without
 * credentials learns nothing about its input (401, not 400).
 */
export const requireUserOrAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearerToken(c.req.header('Authorization'));
  if (!token) throw unauthenticated('Send a user token (or the admin token) as "Authorization: Bearer <token>"');
  c.set('actor', (await isAdminToken(c.env, token)) ? null : await verifyUserToken(c.env.AUTH_SECRET, token));
  await next();
});
