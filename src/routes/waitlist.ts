import { createRoute, z } from '@hono/zod-openapi';
import { MAX_SEATS_PER_USER } from '../durable-objects/concert-room/holds.ts';
import { requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { limitByAddress, limitByUser } from '../lib/rate-limit.ts';
import { ConcertIdParams, UuidSchema } from '../lib/schemas.ts';
import { joinWaitlist, leaveWaitlist, readWaitlistEntry } from '../services/waitlist.ts';
import type { App } from '../types.ts';

export const WaitlistJoinSchema = z
  .strictObject({
    seats: z.number().int().min(1).max(MAX_SEATS_PER_USER).openapi({ description: 'How many seats you want (1–4)' }),
    together: z.boolean().default(false).openapi({ description: 'Only adjacent seats (consecutive numbers in one section). @default false' }),
  })
  .openapi('WaitlistJoin');

const OfferedSeatSchema = z.object({ seatNumber: z.number().int(), section: z.string(), price: z.number().int() });

export const WaitlistEntrySchema = z
  .object({
    concertId: UuidSchema,
    seats: z.number().int(),
    together: z.boolean(),
    status: z.enum(['waiting', 'offered', 'accepted', 'expired', 'left']),
    position: z.number().int().openapi({ description: 'Waiting entries ahead of you + 1 while waiting; 0 otherwise' }),
    joinedAt: z.string(),
    reason: z
      .enum(['OFFER_EXPIRED', 'HOLD_LIMIT'])
      .optional()
      .openapi({ description: 'Why an expired entry ended: its offer ran out unpaid, or you meanwhile had too many seats for its size' }),
    offer: z
      .object({ reservationId: UuidSchema, seats: z.array(OfferedSeatSchema), amount: z.number().int(), expiresAt: z.string() })
      .optional()
      .openapi({ description: 'While offered: seats held for you. Pay with POST /payment {reservationId}; decline with DELETE /reservations/{id}' }),
    reservationId: UuidSchema.optional().openapi({ description: 'When accepted: the reservation you paid for' }),
  })
  .openapi('WaitlistEntry');

const rules =
  'The waitlist opens when the concert’s line sells out: no seat available or held. Until then it answers 409 WAITLIST_NOT_OPEN, ' +
  'and seats that come back go to the fans the line admits. From sell-out the line admits nobody more, fans still in it are told ' +
  '`sold_out` (with `waitlist: "open"`), and every seat that comes back (an expired or cancelled hold, a refund, a lapsed offer) is ' +
  'offered here, never to a re-opened line. Order: a fan whose place in line (taken before the sell-out) did not buy ranks by ' +
  'that place (its drawn rank, if the concert had a draw), ahead of everyone who joins without one; then by joining. Seats are offered in that order, first-fit, ' +
  'as a hold made for you that lasts the concert’s `waitlistOfferSeconds` (default 120): pay it with POST /payment, or it passes ' +
  'to the next fan. ';

const joinRoute = createRoute({
  method: 'post',
  path: '/concerts/{id}/waitlist',
  tags: ['waitlist'],
  summary: 'Join the waitlist of a sold-out concert; joining again returns your entry',
  description: `${rules}One entry per fan per concert: to change its size, leave and join again (at the back).`,
  security: [{ userToken: [] }],
  middleware: [limitByAddress('join'), requireUser, limitByUser('join', (c) => c.get('userId'))] as const,
  request: { params: ConcertIdParams, body: { required: true, content: { 'application/json': { schema: WaitlistJoinSchema } } } },
  responses: {
    201: { description: 'On the waitlist', content: { 'application/json': { schema: WaitlistEntrySchema } } },
    200: { description: 'Already on it (waiting or offered): your entry as it is', content: { 'application/json': { schema: WaitlistEntrySchema } } },
    400: problemResponse('Invalid body (VALIDATION_FAILED)'),
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    409: problemResponse('The line has not sold out (seats are available or held): join the line instead (WAITLIST_NOT_OPEN)'),
    422: problemResponse('Your seats held or bought plus these would pass 4 (HOLD_LIMIT)'),
    429: problemResponse('Too many requests from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

const readRoute = createRoute({
  method: 'get',
  path: '/concerts/{id}/waitlist/me',
  tags: ['waitlist'],
  summary: 'Your waitlist entry: status, position, and the offer while you have one',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('status'), requireUser, limitByUser('status', (c) => c.get('userId'))] as const,
  request: { params: ConcertIdParams },
  responses: {
    200: { description: 'Your entry', content: { 'application/json': { schema: WaitlistEntrySchema } } },
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    404: problemResponse('No such concert, or you are not on its waitlist (CONCERT_NOT_FOUND, WAITLIST_ENTRY_NOT_FOUND)'),
    429: problemResponse('Too many polls from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

const leaveRoute = createRoute({
  method: 'delete',
  path: '/concerts/{id}/waitlist/me',
  tags: ['waitlist'],
  summary: 'Leave the waitlist; an open offer is released to the next fan',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('join'), requireUser, limitByUser('join', (c) => c.get('userId'))] as const,
  request: { params: ConcertIdParams },
  responses: {
    204: { description: 'Off the waitlist (also when your entry had already ended)' },
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    404: problemResponse('No such concert, or you are not on its waitlist (CONCERT_NOT_FOUND, WAITLIST_ENTRY_NOT_FOUND)'),
    409: problemResponse('Your offer is paid (ALREADY_PAID: refund it instead) or still being written (REQUEST_IN_PROGRESS)'),
    429: problemResponse('Too many requests from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

/**
 * The waitlist for freed seats (issue 13). No Idempotency-Key: joining is idempotent by itself (one
 * entry per fan; a retry gets the same entry, 200) and so is leaving.
 */
export function registerWaitlistRoutes(app: App): void {
  app.openapi(joinRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { seats, together } = c.req.valid('json');
    const { created, entry } = await joinWaitlist({ room: c.env.CONCERT_ROOM.getByName(id) }, { userId: c.get('userId'), concertId: id, seats, together });
    if (created) return c.json(entry, 201);
    return c.json(entry, 200);
  });

  app.openapi(readRoute, async (c) => {
    const { id } = c.req.valid('param');
    return c.json(await readWaitlistEntry({ room: c.env.CONCERT_ROOM.getByName(id) }, c.get('userId'), id), 200);
  });

  app.openapi(leaveRoute, async (c) => {
    const { id } = c.req.valid('param');
    await leaveWaitlist({ room: c.env.CONCERT_ROOM.getByName(id) }, c.get('userId'), id);
    return c.body(null, 204);
  });
}
