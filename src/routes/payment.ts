import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { idempotent } from '../lib/idempotency.ts';
import { NoWaitLock, WaitLock } from '../lib/locks/index.ts';
import { requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { getRedis } from '../lib/redis.ts';
import { UuidSchema } from '../lib/schemas.ts';
import { testSwitches } from '../lib/test-switches.ts';
import { payForReservation, type PaymentDeps } from '../services/balance.ts';
import type { App, AppEnv } from '../types.ts';
import { common, idempotencyHeader } from './common.ts';

const PaymentRequest = z.strictObject({ reservationId: UuidSchema }).openapi('PaymentRequest');
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
    // The fallback idempotency (record after the handler) until payment records in its transaction.
    middleware: [requireUser, idempotent] as const,
    request: { headers: idempotencyHeader, body: { required: true, content: { 'application/json': { schema: PaymentRequest } } } },
    responses: {
      201: { description: 'Paid; the seats are yours', content: { 'application/json': { schema: PaymentSchema } } },
      ...common,
      402: problemResponse('Not enough points (INSUFFICIENT_BALANCE)'),
      404: problemResponse('No such reservation, or not yours (RESERVATION_NOT_FOUND)'),
      409: problemResponse('RESERVATION_EXPIRED, ALREADY_PAID, PAYMENT_IN_PROGRESS or REQUEST_IN_PROGRESS'),
    },
  });
}

/**
 * Payment's dependencies. Going away: its per-request pool (the only one left in a Worker route
 * besides the reservation routes) goes when payment moves into the ConcertRoom's long-lived pool.
 */
function paymentDeps(c: Context<AppEnv>): PaymentDeps {
  const redis = getRedis(c.env);
  return {
    pool: c.var.pool(),
    waitLock: new WaitLock({ redis, timeoutMs: testSwitches.balanceLockTimeoutMs }),
    noWaitLock: new NoWaitLock({ redis }),
    bypassLock: testSwitches.bypassBalanceLock,
    roomFor: (concertId) => c.env.CONCERT_ROOM.getByName(concertId),
  };
}

/** POST /payment and its alias POST /payments. */
export function registerPaymentRoutes(app: App): void {
  for (const path of ['/payment', '/payments'] as const) {
    app.openapi(paymentRoute(path), async (c) => {
      const { reservationId } = c.req.valid('json');
      return c.json(await payForReservation(paymentDeps(c), c.get('userId'), reservationId), 201);
    });
  }
}
