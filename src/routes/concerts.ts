import { createRoute, z } from '@hono/zod-openapi';
import { listConcertsByDate } from '../db/concerts-repo.ts';
import { cachedConcertList, CONCERT_LIST_TTL_SECONDS, edgeResponse } from '../lib/edge-cache.ts';
import { validationFailed } from '../lib/errors.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { limitByAddress } from '../lib/rate-limit.ts';
import { ConcertIdParams, DateSchema, UuidSchema } from '../lib/schemas.ts';
import { concertDetails, openingDraw, openingMembership, seatMap, type RoomReadDeps } from '../services/concert-reads.ts';
import { concertView } from '../services/concerts.ts';
import type { App, AppEnv } from '../types.ts';
import type { Context } from 'hono';

/** The edge-cached room reads' dependencies for this request. */
export function roomReadDeps(c: Context<AppEnv>): RoomReadDeps {
  return {
    roomFor: (concertId) => c.env.CONCERT_ROOM.getByName(concertId),
    defer: (promise) => c.executionCtx.waitUntil(promise.catch(() => undefined)),
  };
}

/** Longest date range one list request may span. */
const MAX_RANGE_DAYS = 366;

const SeatStatusSchema = z.enum(['available', 'held', 'sold']);
const CountsSchema = z.object({ available: z.number().int(), held: z.number().int(), sold: z.number().int() });

export const ConcertSummarySchema = z
  .object({
    id: UuidSchema,
    title: z.string(),
    venue: z.string(),
    date: z.string(),
    startsAt: z.string(),
    salesOpenAt: z.string(),
    seatCount: z.number().int(),
  })
  .openapi('ConcertSummary');

export const ListQuery = z.object({
  date: DateSchema.optional(),
  from: DateSchema.optional(),
  to: DateSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const SeatSchema = z
  .object({ seatNumber: z.number().int(), section: z.string(), price: z.number().int(), status: SeatStatusSchema })
  .openapi('Seat');

export const OpeningSchema = z
  .object({
    concertId: UuidSchema,
    order: z.enum(['shuffle', 'fifo']),
    salesOpenAt: z.string(),
    commitment: z.string().openapi({ description: 'Hex SHA-256 of the seed’s 32 bytes, published before sales open' }),
    seed: z.string().nullable().openapi({ description: '64 hex digits, revealed once sales have opened; null before' }),
    prequeueSize: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Places 1..prequeueSize (everyone who joined before opening) were drawn; null before opening' }),
    membershipRoot: z
      .string()
      .nullable()
      .openapi({ description: 'Merkle root (RFC 9162) of the drawn places’ salted membership; null before the draw or when nobody was drawn' }),
  })
  .openapi('Opening');

export const MembershipSchema = z
  .object({
    concertId: UuidSchema,
    prequeueSize: z.number().int(),
    root: z.string().openapi({ description: 'Merkle root of the leaves (RFC 9162 §2.1); the same as the opening’s membershipRoot' }),
    leaves: z.array(z.string()).openapi({ description: 'Place p’s leaf at index p−1: SHA-256(0x00 ‖ p as 4 bytes ‖ SHA-256(salt ‖ user id))' }),
  })
  .openapi('OpeningMembership');

/** Public reads share one per-address budget (src/lib/rate-limit.ts). */
const readLimited = problemResponse('Too many reads from this address (RATE_LIMITED, with Retry-After)');

const listRoute = createRoute({
  method: 'get',
  path: '/concerts',
  tags: ['concerts'],
  summary: 'Concerts on a date (date=) or in a range (from=, to=), edge-cached',
  middleware: [limitByAddress('read')] as const,
  request: { query: ListQuery },
  responses: {
    200: {
      description: 'Concerts by date, then start time',
      content: { 'application/json': { schema: z.object({ concerts: z.array(ConcertSummarySchema) }) } },
    },
    400: problemResponse('Bad dates (VALIDATION_FAILED)'),
    429: readLimited,
  },
});

const detailRoute = createRoute({
  method: 'get',
  path: '/concerts/{id}',
  tags: ['concerts'],
  summary: 'A concert with live seat counts (edge-cached, at most about a second old: see Age)',
  middleware: [limitByAddress('read')] as const,
  request: { params: ConcertIdParams },
  responses: {
    200: { description: 'The concert', content: { 'application/json': { schema: ConcertSummarySchema.extend({ counts: CountsSchema }) } } },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    429: readLimited,
  },
});

const seatsRoute = createRoute({
  method: 'get',
  path: '/concerts/{id}/seats',
  tags: ['concerts'],
  summary: 'The live seat map, from the concert’s room (edge-cached, at most about a second old: see Age)',
  middleware: [limitByAddress('read')] as const,
  request: { params: ConcertIdParams, query: z.object({ status: SeatStatusSchema.optional() }) },
  responses: {
    200: { description: 'Seats by number', content: { 'application/json': { schema: z.object({ concertId: UuidSchema, seats: z.array(SeatSchema) }) } } },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    429: readLimited,
  },
});

const dayCount = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 86_400_000;

const openingRoute = createRoute({
  method: 'get',
  path: '/concerts/{id}/opening',
  tags: ['concerts'],
  summary:
    'The pre-queue draw, for anyone to audit: the seed’s commitment before opening, the seed after (docs/fairness.md: Fair opening). Not stored before the draw (no-store); once drawn it never changes and is edge-cached',
  middleware: [limitByAddress('read')] as const,
  request: { params: ConcertIdParams },
  responses: {
    200: { description: 'The draw', content: { 'application/json': { schema: OpeningSchema } } },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    429: readLimited,
  },
});

const membershipRoute = createRoute({
  method: 'get',
  path: '/concerts/{id}/opening/membership',
  tags: ['concerts'],
  summary:
    'Who was drawn, without naming anyone: every drawn place’s salted leaf and their Merkle root, so anyone can check P and the root, and each fan their own place (GET /queue/opening-proof). Edge-cached once drawn',
  middleware: [limitByAddress('read')] as const,
  request: { params: ConcertIdParams },
  responses: {
    200: { description: 'The drawn membership', content: { 'application/json': { schema: MembershipSchema } } },
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    409: problemResponse('Sales have not opened yet, so nothing is drawn (DRAW_PENDING)'),
    429: readLimited,
  },
});

export function registerConcertRoutes(app: App): void {
  app.openapi(listRoute, async (c) => {
    const query = c.req.valid('query');
    if (query.date && (query.from || query.to)) throw validationFailed('Use either date or from/to, not both');
    const from = query.date ?? query.from;
    const to = query.date ?? query.to ?? query.from;
    if (!from || !to) throw validationFailed('Give date=YYYY-MM-DD, or from= (and optionally to=)');
    if (dayCount(from, to) < 0) throw validationFailed('from must not be after to');
    if (dayCount(from, to) > MAX_RANGE_DAYS) throw validationFailed(`A range spans at most ${MAX_RANGE_DAYS} days`);
    const { body, hit } = await cachedConcertList(
      `${from}/${to}/${query.limit}`,
      async () => ({ concerts: (await listConcertsByDate(c.var.db(), from, to, query.limit)).map(concertView) }),
      (promise) => c.executionCtx.waitUntil(promise.catch(() => undefined)),
    );
    c.header('Cache-Control', `public, max-age=${CONCERT_LIST_TTL_SECONDS}`);
    c.header('X-Cache', hit ? 'HIT' : 'MISS');
    return c.json(body, 200);
  });

  app.openapi(detailRoute, async (c) => edgeResponse(await concertDetails(roomReadDeps(c), c.req.valid('param').id)));

  app.openapi(openingRoute, async (c) => edgeResponse(await openingDraw(roomReadDeps(c), c.req.valid('param').id)));

  app.openapi(membershipRoute, async (c) => edgeResponse(await openingMembership(roomReadDeps(c), c.req.valid('param').id)));

  app.openapi(seatsRoute, async (c) =>
    edgeResponse(await seatMap(roomReadDeps(c), c.req.valid('param').id, c.req.valid('query').status)),
  );
}
