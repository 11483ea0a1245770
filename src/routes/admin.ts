import { createRoute, z } from '@hono/zod-openapi';
import { requireAdmin } from '../lib/admin.ts';
import { AppError } from '../lib/errors.ts';
import { concertRevenue } from '../db/reports-repo.ts';
import { purgeConcertLists } from '../lib/edge-cache.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { ConcertIdParams, DateSchema, DateTimeSchema, EntryConfigSchema, QueueConfigPatchSchema, QueueConfigSchema, UuidSchema } from '../lib/schemas.ts';
import { createConcert, MAX_SEATS_PER_CONCERT } from '../services/concerts.ts';
import { concertNotFound } from '../services/queue.ts';
import { ConcertSummarySchema } from './concerts.ts';
import type { App } from '../types.ts';

const Price = z.number().int().min(0).max(1_000_000);
const SeatCount = z.number().int().min(1).max(MAX_SEATS_PER_CONCERT);

export const CreateConcertSchema = z
  .strictObject({
    title: z.string().trim().min(1).max(200),
    venue: z.string().trim().min(1).max(200),
    date: DateSchema,
    startsAt: DateTimeSchema.openapi({ description: 'Must be in the future' }),
    salesOpenAt: DateTimeSchema.openapi({ description: 'Must be before startsAt (it may be in the past: sales open at once)' }),
    seats: z.strictObject({ count: SeatCount, price: Price }).optional(),
    sections: z
      .array(z.strictObject({ name: z.string().trim().min(1).max(50), count: SeatCount, price: Price }))
      .min(1)
      .max(50)
      .optional(),
    queue: QueueConfigPatchSchema.optional(),
    entry: EntryConfigSchema.optional().openapi({
      description: 'What a join must bring (issue 20): `{proofOfWork: {cost}}` asks for a proof of work (docs/entry.md). Same as queue.entry. @default {proofOfWork: null}',
    }),
    refunds: z
      .strictObject({
        fee: z.number().int().min(0).max(1_000_000).openapi({ description: 'Points kept from an owner\'s refund. @default 0' }),
        cutoffHours: z.number().int().min(0).max(8760).openapi({ description: 'Owners may refund until this many hours before the show. @default 24' }),
      })
      .partial()
      .optional(),
  })
  .openapi('CreateConcert');

export const ConcertSchema = ConcertSummarySchema.extend({ queue: QueueConfigSchema }).openapi('Concert');

export const StatsSchema = z
  .object({
    concertId: UuidSchema,
    waiting: z.number().int(),
    admitted: z.number().int(),
    active: z.number().int(),
    completed: z.number().int(),
    expired: z.number().int(),
    soldOut: z.boolean(),
    seats: z.object({ available: z.number().int(), held: z.number().int(), sold: z.number().int() }),
    waitlist: z
      .object({ waiting: z.number().int(), offered: z.number().int(), accepted: z.number().int(), expired: z.number().int(), left: z.number().int() })
      .openapi({ description: 'Waitlist entries by status (counters kept by the room)' }),
    revenue: z.number().int().openapi({ description: 'Points taken by payments for this concert (from Postgres)' }),
    queue: QueueConfigSchema,
  })
  .openapi('ConcertStats');

/** Body of `GET /admin/concerts/:id/stats`. */
export type ConcertStats = z.infer<typeof StatsSchema>;

const adminResponses = {
  400: problemResponse('Invalid input (VALIDATION_FAILED)'),
  401: problemResponse('No admin token (UNAUTHENTICATED)'),
  403: problemResponse('Not the admin token (FORBIDDEN)'),
};

const createRouteDef = createRoute({
  method: 'post',
  path: '/admin/concerts',
  tags: ['admin'],
  summary: 'Create a concert with its seats (count + price, or sections) and queue settings',
  security: [{ adminToken: [] }],
  middleware: [requireAdmin] as const,
  request: { body: { required: true, content: { 'application/json': { schema: CreateConcertSchema } } } },
  responses: { 201: { description: 'Created', content: { 'application/json': { schema: ConcertSchema } } }, ...adminResponses },
});

const patchQueueRoute = createRoute({
  method: 'patch',
  path: '/admin/concerts/{id}/queue',
  tags: ['admin'],
  summary: 'Change admission, hold and waitlist-offer settings, or pause the line',
  security: [{ adminToken: [] }],
  middleware: [requireAdmin] as const,
  request: { params: ConcertIdParams, body: { required: true, content: { 'application/json': { schema: QueueConfigPatchSchema } } } },
  responses: {
    200: { description: 'The settings now in force', content: { 'application/json': { schema: QueueConfigSchema } } },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    409: problemResponse('openingOrder changed after sales opened (OPENING_ORDER_FIXED)'),
    ...adminResponses,
  },
});

const statsRoute = createRoute({
  method: 'get',
  path: '/admin/concerts/{id}/stats',
  tags: ['admin'],
  summary: 'Line and seat counts',
  security: [{ adminToken: [] }],
  middleware: [requireAdmin] as const,
  request: { params: ConcertIdParams },
  responses: {
    200: { description: 'Counts', content: { 'application/json': { schema: StatsSchema } } },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    ...adminResponses,
  },
});

const reconcileRoute = createRoute({
  method: 'post',
  path: '/admin/concerts/{id}/reconcile',
  tags: ['admin'],
  summary: 'Compare the room’s seat map with Postgres, repair the room (Postgres wins), report differences',
  description:
    'One reconciliation runs at a time per room. A call that arrives during a run is answered by the one run that starts after it, shared by every call that arrived meanwhile (its report may include changes those calls did not cause).',
  security: [{ adminToken: [] }],
  middleware: [requireAdmin] as const,
  request: { params: ConcertIdParams },
  responses: {
    200: {
      description: 'What differed',
      content: {
        'application/json': {
          schema: z.object({ concertId: UuidSchema, changed: z.number().int(), differences: z.array(z.record(z.string(), z.unknown())) }),
        },
      },
    },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    ...adminResponses,
  },
});


export function registerAdminRoutes(app: App): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'adminToken', { type: 'http', scheme: 'bearer' });

  app.openapi(createRouteDef, async (c) => {
    const concert = await createConcert(
      { db: c.var.db(), roomFor: (id) => c.env.CONCERT_ROOM.getByName(id) },
      c.req.valid('json'),
    );
    c.executionCtx.waitUntil(purgeConcertLists().catch(() => undefined));
    return c.json(concert, 201);
  });

  app.openapi(patchQueueRoute, async (c) => {
    const { id } = c.req.valid('param');
    const result = await c.env.CONCERT_ROOM.getByName(id).configure(c.req.valid('json'));
    if (!result.ok) {
      if (result.reason === 'OPENING_ORDER_FIXED') throw new AppError(409, 'OPENING_ORDER_FIXED', 'Opening order fixed', `Sales have opened: the pre-queue was already placed in ${result.order} order`);
      throw concertNotFound(id);
    }
    return c.json(result.config, 200);
  });

  app.openapi(reconcileRoute, async (c) => {
    const { id } = c.req.valid('param');
    const report = await c.env.CONCERT_ROOM.getByName(id).reconcile();
    if (!report.ok) throw concertNotFound(id);
    return c.json({ concertId: id, changed: report.changed, differences: report.differences }, 200);
  });

  app.openapi(statsRoute, async (c) => {
    const { id } = c.req.valid('param');
    const [stats, revenue] = await Promise.all([c.env.CONCERT_ROOM.getByName(id).stats(), concertRevenue(c.var.sql(), id)]);
    if ('ok' in stats) throw concertNotFound(id);
    return c.json({ concertId: id, ...stats.line, soldOut: stats.soldOut, seats: stats.seats, waitlist: stats.waitlist, revenue, queue: stats.config }, 200);
  });
}
