import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { WS_SEQ_HEADER, WS_USER_HEADER } from '../durable-objects/concert-room/index.ts';
import type { AdmissionSnapshot } from '../durable-objects/concert-room/model.ts';
import { publishSnapshot, readSnapshot } from '../lib/edge-cache.ts';
import { AppError } from '../lib/errors.ts';
import { logJson } from '../lib/logging.ts';
import { requireQueueToken, requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { invalidQueueToken, verifyQueueToken } from '../lib/queue-token.ts';
import { UuidSchema } from '../lib/schemas.ts';
import { joinQueue, queueStatus, type QueueDeps } from '../services/queue.ts';
import type { App, AppEnv } from '../types.ts';

const QueueStatusName = z.enum(['waiting', 'admitted', 'completed', 'expired', 'sold_out']);

export const JoinRequestSchema = z.strictObject({ concertId: UuidSchema }).openapi('QueueJoinRequest');
export const JoinResponseSchema = z
  .object({ token: z.string(), position: z.number().int(), status: QueueStatusName, estimatedWaitSeconds: z.number().int() })
  .openapi('QueueJoin');
export const QueueStatusSchema = z
  .object({
    status: QueueStatusName,
    position: z.number().int(),
    estimatedWaitSeconds: z.number().int(),
    sessionExpiresAt: z.string().nullable(),
  })
  .openapi('QueueStatus');

const joinRoute = createRoute({
  method: 'post',
  path: '/queue/token',
  tags: ['queue'],
  summary: 'Join a concert’s waiting line; joining again keeps the same place',
  security: [{ userToken: [] }],
  middleware: [requireUser] as const,
  request: { body: { required: true, content: { 'application/json': { schema: JoinRequestSchema } } } },
  responses: {
    201: { description: 'Your place and queue token', content: { 'application/json': { schema: JoinResponseSchema } } },
    400: problemResponse('Invalid body (VALIDATION_FAILED)'),
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
  },
});

const statusRoute = createRoute({
  method: 'get',
  path: '/queue/status',
  tags: ['queue'],
  summary: 'Your place in line, or your session; send the queue token as Queue-Token',
  request: { headers: z.object({ 'queue-token': z.string().optional() }) },
  middleware: [requireQueueToken] as const,
  responses: {
    200: { description: 'Current status', content: { 'application/json': { schema: QueueStatusSchema } } },
    401: problemResponse('Missing or invalid queue token (INVALID_QUEUE_TOKEN)'),
  },
});

function queueDeps(c: Context<AppEnv>, concertId: string): QueueDeps {
  return {
    room: c.env.CONCERT_ROOM.getByName(concertId),
    queueTokenSecret: c.env.QUEUE_TOKEN_SECRET,
    publish: (id: string, snapshot: AdmissionSnapshot) =>
      c.executionCtx.waitUntil(publishSnapshot(id, snapshot).catch((error: unknown) => logJson('warn', 'snapshot publish failed', { error: String(error) }))),
  };
}

export function registerQueueRoutes(app: App): void {
  app.openapi(joinRoute, async (c) => {
    const { concertId } = c.req.valid('json');
    return c.json(await joinQueue(queueDeps(c, concertId), c.get('userId'), concertId), 201);
  });

  app.openapi(statusRoute, async (c) => {
    const claims = c.get('queueClaims');
    const cached = await readSnapshot(claims.concertId);
    return c.json(await queueStatus({ ...queueDeps(c, claims.concertId), cached }, claims), 200);
  });

  // WebSocket upgrades are not JSON routes; documented in the README and DESIGN.md.
  app.get('/queue/ws', async (c) => {
    if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
      throw new AppError(426, 'UPGRADE_REQUIRED', 'Upgrade required', 'Open this URL as a WebSocket', { headers: { Upgrade: 'websocket' } });
    }
    const token = c.req.query('token');
    if (!token) throw invalidQueueToken('Pass the queue token as ?token=');
    const claims = await verifyQueueToken(c.env.QUEUE_TOKEN_SECRET, token);
    const headers = new Headers({ Upgrade: 'websocket', [WS_SEQ_HEADER]: String(claims.seq), [WS_USER_HEADER]: claims.userId });
    const response = await c.env.CONCERT_ROOM.getByName(claims.concertId).fetch(new Request(c.req.url, { headers }));
    if (response.status === 403) throw invalidQueueToken('Queue token does not match a place in this line');
    if (response.status === 404) throw new AppError(404, 'CONCERT_NOT_FOUND', 'Not found', `No concert ${claims.concertId}`);
    // A fresh response: the room's has immutable headers, and the middleware adds security headers.
    return new Response(null, { status: response.status, webSocket: response.webSocket });
  });
}
