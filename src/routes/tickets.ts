import { createRoute, z } from '@hono/zod-openapi';
import { requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { limitByAddress, limitByUser } from '../lib/rate-limit.ts';
import { UuidSchema } from '../lib/schemas.ts';
import { DEFAULT_TICKETS_LIMIT, myTickets } from '../services/tickets.ts';
import type { App } from '../types.ts';
import { common } from './common.ts';

const TicketSeatSchema = z.object({ seatNumber: z.number().int(), section: z.string(), price: z.number().int() });

export const TicketSchema = z
  .object({
    reservationId: UuidSchema,
    concert: z.object({ id: UuidSchema, title: z.string(), venue: z.string(), date: z.string(), startsAt: z.string() }),
    status: z.enum(['held', 'confirmed', 'expired', 'cancelled', 'refunded']),
    amount: z.number().int(),
    seats: z.array(TicketSeatSchema),
    createdAt: z.string(),
    expiresAt: z.string(),
    confirmedAt: z.string().nullable(),
    refundedAt: z.string().nullable(),
    refund: z
      .object({
        fee: z.number().int().openapi({ description: 'Points the concert keeps if you refund (its refund fee, at most the amount)' }),
        until: z.string().openapi({ description: 'Refunds by the owner close at this instant (the show’s start less its cut-off)' }),
        allowed: z.boolean().openapi({ description: 'Paid and before `until`: POST /reservations/{id}/refund would succeed' }),
      })
      .openapi({ description: 'Your refund terms, as POST /reservations/{id}/refund applies them' }),
  })
  .openapi('Ticket');

const listRoute = createRoute({
  method: 'get',
  path: '/reservations',
  tags: ['reservations'],
  summary: 'Your reservations (My tickets), newest first, each with its concert, seats and refund terms',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('account'), requireUser, limitByUser('account', (c) => c.get('userId'))] as const,
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(DEFAULT_TICKETS_LIMIT) }) },
  responses: {
    200: { description: 'Your reservations', content: { 'application/json': { schema: z.object({ reservations: z.array(TicketSchema) }) } } },
    400: problemResponse('limit out of 1–200 (VALIDATION_FAILED)'),
    401: common[401],
    429: problemResponse('Too many reads from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

/** `GET /reservations`: the fan's own reservations, for the fan page's My tickets. */
export function registerTicketRoutes(app: App): void {
  app.openapi(listRoute, async (c) => c.json({ reservations: await myTickets(c.var.sql(), c.get('userId'), c.req.valid('query').limit) }, 200));
}
