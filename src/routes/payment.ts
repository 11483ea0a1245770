import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Deadline } from '../lib/deadline.ts';
import type { TypedJsonResponse } from '../lib/edge-cache.ts';
import { idempotentInEffect, replayStored, respondRecorded } from '../lib/idempotency.ts';
import { WaitLock } from '../lib/locks/index.ts';
import { requireUser } from '../lib/middleware.ts';
import { limitByAddress, limitByUser } from '../lib/rate-limit.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { redisUntil } from '../lib/redis.ts';
import { UuidSchema } from '../lib/schemas.ts';
import { testSwitches } from '../lib/test-switches.ts';
import { payForReservation, type PaymentDeps } from '../services/payments.ts';
import type { App, AppEnv } from '../types.ts';
import { common, idempotencyHeader } from './common.ts';

export const PaymentRequest = z.strictObject({ reservationId: UuidSchema }).openapi('PaymentRequest');
const PaymentSchema = z
  .object({ paymentId: UuidSchema, reservationId: UuidSchema, amount: z.number().int(), balance: z.number().int(), status: z.literal('confirmed') })
  .openapi('Payment');

function paymentRoute(path: '/payment' | '/payments') {
  return createRoute({
    method: 'post',
    path,
    tags: ['payment'],
    summary: path === '/payment' ? 'Pay a held reservation from your balance' : 'Alias of POST /payment',
    security: [{ userToken: [] }],
    // The payment statement records the response with the effect (see ConcertRoom.pay).
    middleware: [limitByAddress('pay'), requireUser, limitByUser('pay', (c) => c.get('userId')), idempotentInEffect] as const,
    request: { headers: idempotencyHeader, body: { required: true, content: { 'application/json': { schema: PaymentRequest } } } },
    responses: {
      201: { description: 'Paid; the seats are yours', content: { 'application/json': { schema: PaymentSchema } } },
      ...common,
      402: problemResponse('Not enough points (INSUFFICIENT_BALANCE)'),
      404: problemResponse('No such reservation, or not yours (RESERVATION_NOT_FOUND)'),
      409: problemResponse('RESERVATION_EXPIRED, ALREADY_PAID, PAYMENT_IN_PROGRESS or REQUEST_IN_PROGRESS'),
      429: problemResponse('Too many payments from this user or address (RATE_LIMITED, with Retry-After)'),
    },
  });
}

/**
 * Payment's dependencies: the locks (bound to the request's Redis deadline), the HTTP query path, the
 * rooms, and the execution context for what runs after the response; no connection of its own.
 */
function paymentDeps(c: Context<AppEnv>): PaymentDeps {
  return {
    sql: c.var.sql(),
    waitLock: new WaitLock({ redis: (deadline: Deadline) => redisUntil(c.env, deadline), deadline: c.var.deadline }),
    afterResponse: (task) => c.executionCtx.waitUntil(task),
    bypassLock: testSwitches.bypassBalanceLock,
    roomFor: (concertId) => c.env.CONCERT_ROOM.getByName(concertId),
  };
}

/** POST /payment and its alias POST /payments. */
export function registerPaymentRoutes(app: App): void {
  for (const path of ['/payment', '/payments'] as const) {
    app.openapi(paymentRoute(path), async (c) => {
      const { reservationId } = c.req.valid('json');
      const claim = c.get('idempotency');
      const result = await payForReservation(paymentDeps(c), c.get('userId'), reservationId, claim);
      if (result.stored) return replayStored(claim!, result.stored) as TypedJsonResponse<201>;
      return respondRecorded(c, 201, result.body) as TypedJsonResponse<201>;
    });
  }
}
