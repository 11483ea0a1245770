import { createRoute, z } from '@hono/zod-openapi';
import { signUserToken, USER_ID_MAX_LENGTH, USER_ID_PATTERN } from '../lib/auth.ts';
import { AppError } from '../lib/errors.ts';
import { requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import type { App } from '../types.ts';

/**
 * User ids are opaque to us, but bounded and printable so they are safe in keys and logs. The same
 * rules bound a token's `sub` when it is verified (src/lib/auth.ts).
 */
export const UserIdSchema = z.string().min(1).max(USER_ID_MAX_LENGTH).regex(USER_ID_PATTERN, 'letters, digits and . _ : @ - only');

export const DevTokenRequest = z.strictObject({ userId: UserIdSchema }).openapi('DevTokenRequest');
const DevTokenResponse = z
  .object({ token: z.string(), tokenType: z.literal('Bearer'), userId: z.string(), expiresAt: z.string() })
  .openapi('DevToken');

const route = createRoute({
  method: 'post',
  path: '/auth/dev-token',
  tags: ['auth'],
  summary: 'Mint a user token (only when DEV_AUTH=true: local dev and tests)',
  request: { body: { required: true, content: { 'application/json': { schema: DevTokenRequest } } } },
  responses: {
    201: { description: 'A signed user token', content: { 'application/json': { schema: DevTokenResponse } } },
    400: problemResponse('Invalid body'),
    404: problemResponse('DEV_AUTH is off'),
  },
});

const WhoAmI = z.object({ userId: z.string() }).openapi('WhoAmI');

const whoamiRoute = createRoute({
  method: 'get',
  path: '/auth/whoami',
  tags: ['auth'],
  summary: 'The user a token belongs to (checks a token end to end)',
  security: [{ userToken: [] }],
  middleware: [requireUser] as const,
  responses: {
    200: { description: 'The token is valid', content: { 'application/json': { schema: WhoAmI } } },
    401: problemResponse('Missing, invalid or expired token (UNAUTHENTICATED)'),
  },
});

export function registerAuthRoutes(app: App): void {
  app.openapi(whoamiRoute, (c) => c.json({ userId: c.get('userId') }, 200));

  // Checked before validation so that, with dev auth off, the route is indistinguishable from none.
  app.use('/auth/dev-token', async (c, next) => {
    if (c.env.DEV_AUTH !== 'true') {
      throw new AppError(404, 'ROUTE_NOT_FOUND', 'Not found', `No route for ${c.req.method} ${c.req.path}`);
    }
    await next();
  });
  app.openapi(route, async (c) => {
    const { userId } = c.req.valid('json');
    const { token, expiresAt } = await signUserToken(c.env.AUTH_SECRET, userId);
    return c.json({ token, tokenType: 'Bearer' as const, userId, expiresAt: expiresAt.toISOString() }, 201);
  });
}
