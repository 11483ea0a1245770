import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../types.ts';
import { bearerToken, verifyUserToken } from './auth.ts';
import { unauthenticated } from './errors.ts';
import { invalidQueueToken, queueTokenOfAnotherUser, verifyQueueToken, type QueueClaims } from './queue-token.ts';
import { logJson } from './logging.ts';

/** One JSON log line per request, with the request id that error responses also carry. */
export const requestLog = createMiddleware<AppEnv>(async (c, next) => {
  const startedAt = Date.now();
  await next();
  logJson(c.res.status >= 500 ? 'error' : 'info', 'request', {
    requestId: c.get('requestId'),
    method: c.req.method,
    path: c.req.path,
    status: c.res.status,
    durationMs: Date.now() - startedAt,
  });
});

/** Requires a valid user token and exposes its subject as `userId`. */
export const requireUser = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearerToken(c.req.header('Authorization'));
  if (!token) throw unauthenticated('Send a user token as "Authorization: Bearer <token>"');
  c.set('userId', await verifyUserToken(c.env.AUTH_SECRET, token));
  await next();
});

/** Requires a valid queue token in the `Queue-Token` header and exposes its claims. */
export const requireQueueToken = createMiddleware<AppEnv>(async (c, next) => {
  const token = c.req.header('Queue-Token')?.trim();
  if (!token) throw invalidQueueToken('Send the queue token from POST /queue/token in the "Queue-Token" header');
  c.set('queueClaims', await verifyQueueToken(c.env.QUEUE_TOKEN_SECRET, token));
  await next();
});

/**
 * On queue-token routes that do not need a user token (status, the WebSocket): when the client
 * sends one anyway, it must be valid (401) and its user must own the queue token (403
 * QUEUE_TOKEN_MISMATCH), so a token taken from someone else is refused to anyone who says who they are.
 */
export async function checkOptionalUser(secret: string, authorization: string | undefined, claims: QueueClaims): Promise<void> {
  if (authorization === undefined) return;
  const token = bearerToken(authorization);
  if (!token) throw unauthenticated('Send a user token as "Authorization: Bearer <token>", or no Authorization header');
  if ((await verifyUserToken(secret, token)) !== claims.userId) throw queueTokenOfAnotherUser();
}

/** Middleware form of {@link checkOptionalUser}; runs after `requireQueueToken`. */
export const optionalUserMatchesQueueToken = createMiddleware<AppEnv>(async (c, next) => {
  await checkOptionalUser(c.env.AUTH_SECRET, c.req.header('Authorization'), c.get('queueClaims'));
  await next();
});
