import { createRoute, z } from '@hono/zod-openapi';
import { listConcertsByDate } from '../db/concerts-repo.ts';
import { cachedConcertList, edgeResponse } from '../lib/edge-cache.ts';
import { availableSeats } from '../services/concert-reads.ts';
import { concertView } from '../services/concerts.ts';
import { roomReadDeps } from './concerts.ts';
import { requireUserOrAdmin } from '../lib/admin.ts';
import { bearerToken, verifyUserToken } from '../lib/auth.ts';
import { AppError, unauthenticated, validationFailed } from '../lib/errors.ts';
import { findStoredResponse, idempotentInEffect, replayStored, respondRecorded } from '../lib/idempotency.ts';
import type { TypedJsonResponse } from '../lib/edge-cache.ts';
import { requireQueueToken, requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { limitByAddress, limitByUser } from '../lib/rate-limit.ts';
import { DateSchema, UuidSchema } from '../lib/schemas.ts';
import { concertNotFound } from '../services/queue.ts';
import { cancelReservation, holdSeats, readReservation, refundPaidReservation } from '../services/reservations.ts';
import type { App } from '../types.ts';

const SeatNumber = z.number().int().min(1).max(100_000);

export const HoldRequestSchema = z
  .strictObject({
    concertId: UuidSchema,
    seatNumbers: z
      .array(SeatNumber)
      .min(1)
      .max(4)
      .refine((numbers) => new Set(numbers).size === numbers.length, 'seat numbers must be distinct')
      .optional(),
    seatNumber: SeatNumber.optional(),
  })
  .refine((body) => (body.seatNumbers === undefined) !== (body.seatNumber === undefined), {
    message: 'give exactly one of seatNumbers or seatNumber',
  })
  .openapi('HoldRequest');

const HeldSeatSchema = z.object({ seatNumber: z.number().int(), section: z.string(), price: z.number().int() });

export const HoldResponseSchema = z
  .object({
    reservationId: UuidSchema,
    concertId: UuidSchema,
    seats: z.array(HeldSeatSchema),
    amount: z.number().int(),
    status: z.literal('held'),
    expiresAt: z.string(),
  })
  .openapi('Hold');

export const ReservationSchema = z
  .object({
    reservationId: UuidSchema,
    concertId: UuidSchema,
    status: z.enum(['held', 'confirmed', 'expired', 'cancelled', 'refunded']),
    amount: z.number().int(),
    expiresAt: z.string(),
    createdAt: z.string(),
    confirmedAt: z.string().nullable(),
    seats: z.array(HeldSeatSchema),
  })
  .openapi('Reservation');

const AvailableSeatsSchema = z
  .object({ date: z.string(), concertId: UuidSchema, available: z.number().int(), seats: z.array(HeldSeatSchema) })
  .openapi('AvailableSeats');

const holdRoute = createRoute({
  method: 'post',
  path: '/reservations',
  tags: ['reservations'],
  summary: 'Hold 1–4 seats, all or nothing (user token + admitted Queue-Token)',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('hold'), requireUser, requireQueueToken, limitByUser('hold', (c) => c.get('userId')), idempotentInEffect] as const,
  request: {
    headers: z.object({ 'queue-token': z.string().optional(), 'idempotency-key': z.string().max(255).optional() }),
    body: { required: true, content: { 'application/json': { schema: HoldRequestSchema } } },
  },
  responses: {
    201: { description: 'Held until expiresAt', content: { 'application/json': { schema: HoldResponseSchema } } },
    400: problemResponse('Invalid body (VALIDATION_FAILED)'),
    401: problemResponse('Missing or invalid tokens (UNAUTHENTICATED, INVALID_QUEUE_TOKEN)'),
    403: problemResponse('Not admitted, session over, or a queue token of someone else (NOT_ADMITTED, QUEUE_TOKEN_MISMATCH)'),
    404: problemResponse('No such concert or seat (CONCERT_NOT_FOUND, SEAT_NOT_FOUND)'),
    409: problemResponse('A seat is taken (SEAT_UNAVAILABLE, with `seats`)'),
    422: problemResponse('More than 4 seats per person (HOLD_LIMIT)'),
    429: problemResponse('Too many holds from this user or address (RATE_LIMITED, with Retry-After)'),
    503: problemResponse('Postgres unavailable; nothing was held (DEPENDENCY_UNAVAILABLE)'),
  },
});

const readRoute = createRoute({
  method: 'get',
  path: '/reservations/{key}',
  tags: ['reservations'],
  summary: 'A reservation by id (owner only), or — the seed’s call — available seats of the concert on a date (YYYY-MM-DD)',
  // Counted as a public read per client address, whichever of the two it is.
  middleware: [limitByAddress('read')] as const,
  request: {
    params: z.object({ key: z.string().openapi({ param: { name: 'key', in: 'path' }, example: '2026-12-24' }) }),
    query: z.object({ concertId: UuidSchema.optional() }),
  },
  responses: {
    200: {
      description: 'The reservation (by id) or the available seats (by date)',
      content: { 'application/json': { schema: z.union([ReservationSchema, AvailableSeatsSchema]) } },
    },
    400: problemResponse('Neither a uuid nor a valid date, or a date with several concerts and no concertId'),
    401: problemResponse('Reading a reservation needs a user token'),
    404: problemResponse('No such reservation (or not yours), or no concert that day'),
    429: problemResponse('Too many reads from this address (RATE_LIMITED, with Retry-After)'),
  },
});

const cancelRoute = createRoute({
  method: 'delete',
  path: '/reservations/{id}',
  tags: ['reservations'],
  summary: 'Cancel your hold and free its seats',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('cancel'), requireUser, limitByUser('cancel', (c) => c.get('userId'))] as const,
  request: { params: z.object({ id: UuidSchema.openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    204: { description: 'Cancelled (also when it already was)' },
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    404: problemResponse('No such reservation, or not yours (RESERVATION_NOT_FOUND)'),
    409: problemResponse('Already paid or expired (ALREADY_PAID, RESERVATION_EXPIRED)'),
    429: problemResponse('Too many cancels from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

export const RefundSchema = z
  .object({
    reservationId: UuidSchema,
    status: z.literal('refunded'),
    refunded: z.number().int().openapi({ description: 'Points credited back: the amount paid less the fee' }),
    fee: z.number().int().openapi({ description: "The concert's refund fee kept (0 when an admin refunds)" }),
    balance: z.number().int().openapi({ description: "The owner's balance after the refund" }),
    refundedAt: z.string(),
  })
  .openapi('Refund');

const refundRoute = createRoute({
  method: 'post',
  path: '/reservations/{id}/refund',
  tags: ['reservations'],
  summary: 'Refund a paid reservation to points; its seats become available again',
  description:
    "The owner (user token) refunds before the concert's refund cut-off (default 24 h before the show), less its refund fee " +
    '(default 0); an admin (admin token) refunds any paid reservation at any time without the fee. Refunding again ' +
    'answers with the same refund and changes nothing. Credentials are checked before the id: without them, 401 whatever the id. ' +
    'Limited per address, and per user for owners (the admin token has no per-user limit).',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('refund'), requireUserOrAdmin, limitByUser('refund', (c) => c.get('actor'))] as const,
  request: { params: z.object({ id: UuidSchema.openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    200: { description: 'Refunded (also when it already was)', content: { 'application/json': { schema: RefundSchema } } },
    401: problemResponse('No valid user or admin token'),
    404: problemResponse('No such reservation, or not yours (RESERVATION_NOT_FOUND)'),
    409: problemResponse('Not paid (RESERVATION_NOT_PAID), past the cut-off (REFUND_DEADLINE_PASSED), or being written (REQUEST_IN_PROGRESS)'),
    422: problemResponse('The refund would take the balance past its cap (BALANCE_LIMIT)'),
    429: problemResponse('Too many refunds from this user or address (RATE_LIMITED, with Retry-After)'),
    503: problemResponse('Postgres unavailable: retry, a refund happens at most once (DEPENDENCY_UNAVAILABLE)'),
  },
});

export function registerReservationRoutes(app: App): void {
  app.openapi(refundRoute, async (c) => {
    const { id } = c.req.valid('param');
    const refund = await refundPaidReservation({ sql: c.var.sql(), roomFor: (concertId) => c.env.CONCERT_ROOM.getByName(concertId) }, c.get('actor'), id);
    return c.json(refund, 200);
  });

  app.openapi(holdRoute, async (c) => {
    const body = c.req.valid('json');
    const seatNumbers = body.seatNumbers ?? [body.seatNumber!];
    const claim = c.get('idempotency');
    const stored = claim && (await findStoredResponse(c.var.sql(), claim));
    if (claim && stored) return replayStored(claim, stored) as TypedJsonResponse<201>;
    const hold = await holdSeats(
      { room: c.env.CONCERT_ROOM.getByName(body.concertId) },
      { userId: c.get('userId'), claims: c.get('queueClaims'), concertId: body.concertId, seatNumbers, claim },
    );
    return respondRecorded(c, 201, hold.body) as TypedJsonResponse<201>;
  });

  app.openapi(readRoute, async (c) => {
    const { key } = c.req.valid('param');
    if (UuidSchema.safeParse(key).success) {
      const token = bearerToken(c.req.header('Authorization'));
      if (!token) throw unauthenticated('Send a user token as "Authorization: Bearer <token>"');
      const userId = await verifyUserToken(c.env.AUTH_SECRET, token);
      return c.json(await readReservation(c.var.sql(), userId, key), 200);
    }
    const date = DateSchema.safeParse(key);
    if (!date.success) throw validationFailed('Expected a reservation id (uuid) or a date (YYYY-MM-DD)');
    // The date's concerts come from the edge-cached list, their seats from the edge-cached seat map.
    const { body } = await cachedConcertList(
      `${date.data}/${date.data}/50`,
      async () => ({ concerts: (await listConcertsByDate(c.var.db(), date.data, date.data, 50)).map(concertView) }),
      (promise) => c.executionCtx.waitUntil(promise.catch(() => undefined)),
    );
    const { concerts } = body;
    const { concertId } = c.req.valid('query');
    const concert = concertId ? concerts.find((candidate) => candidate.id === concertId) : concerts[0];
    if (!concert) throw concertNotFound(concertId ?? `on ${date.data}`);
    if (!concertId && concerts.length > 1) {
      throw new AppError(400, 'VALIDATION_FAILED', 'Request is invalid', `${concerts.length} concerts on ${date.data}; pass ?concertId=`, {
        extensions: { concerts: concerts.map((candidate) => ({ id: candidate.id, title: candidate.title })) },
      });
    }
    return edgeResponse(await availableSeats(roomReadDeps(c), date.data, concert.id));
  });

  app.openapi(cancelRoute, async (c) => {
    const { id } = c.req.valid('param');
    await cancelReservation({ sql: c.var.sql(), roomFor: (concertId) => c.env.CONCERT_ROOM.getByName(concertId) }, c.get('userId'), id);
    return c.body(null, 204);
  });
}
