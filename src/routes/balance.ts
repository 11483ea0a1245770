import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { idempotent, idempotentInEffect, markRecorded, replayStored } from '../lib/idempotency.ts';
import { NoWaitLock, WaitLock } from '../lib/locks/index.ts';
import { requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { getRedis } from '../lib/redis.ts';
import { UuidSchema } from '../lib/schemas.ts';
import { testSwitches } from '../lib/test-switches.ts';
import { UserIdSchema } from './auth.ts';
import { balanceOf, changeBalanceOf, historyOf, payForReservation, type BalanceDeps, type PaymentDeps } from '../services/balance.ts';
import type { App, AppEnv } from '../types.ts';

/** Points per charge or use (DESIGN.md §3): an integer, so 1e309, 2^53, "100" and 1.5 are all refused. */
export const AmountSchema = z.number().int().min(1).max(1_000_000);

const AmountRequest = z.strictObject({ amount: AmountSchema }).openapi('AmountRequest');
const BalanceSchema = z.object({ userId: z.string(), balance: z.number().int() }).openapi('Balance');
const NewBalanceSchema = z.object({ balance: z.number().int() }).openapi('NewBalance');
const LedgerEntrySchema = z
  .object({
    id: z.number().int(),
    delta: z.number().int(),
    balanceAfter: z.number().int(),
    kind: z.enum(['charge', 'use', 'payment', 'refund']),
    reference: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('LedgerEntry');
const PaymentRequest = z.strictObject({ reservationId: UuidSchema }).openapi('PaymentRequest');
const PaymentSchema = z
  .object({ paymentId: UuidSchema, reservationId: UuidSchema, amount: z.number().int(), balance: z.number().int(), status: z.literal('confirmed') })
  .openapi('Payment');

const idempotencyHeader = z.object({
  'idempotency-key': z.string().max(255).optional().openapi({ description: 'Replays the first response for 24 h' }),
});

const common = {
  400: problemResponse('Invalid body (VALIDATION_FAILED)'),
  401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
  409: problemResponse('Same Idempotency-Key still running (REQUEST_IN_PROGRESS)'),
  422: problemResponse('Idempotency-Key reused with another body (IDEMPOTENCY_KEY_REUSED)'),
  503: problemResponse('Redis or Postgres unavailable, or the lock timed out; nothing changed (DEPENDENCY_UNAVAILABLE, LOCK_TIMEOUT)'),
};

function balanceChangeRoute(kind: 'charge' | 'use') {
  return createRoute({
    method: 'post',
    path: `/balance/${kind}`,
    tags: ['balance'],
    summary: kind === 'charge' ? 'Add points' : 'Spend points',
    security: [{ userToken: [] }],
    middleware: [requireUser, idempotentInEffect] as const,
    request: { headers: idempotencyHeader, body: { required: true, content: { 'application/json': { schema: AmountRequest } } } },
    responses: {
      200: { description: 'The new balance', content: { 'application/json': { schema: NewBalanceSchema } } },
      ...common,
      ...(kind === 'use' ? { 402: problemResponse('Not enough points (INSUFFICIENT_BALANCE)') } : {}),
      422: problemResponse('Balance would exceed 1,000,000,000 (BALANCE_LIMIT), or IDEMPOTENCY_KEY_REUSED'),
    },
  });
}

const balanceRoute = createRoute({
  method: 'get',
  path: '/balance',
  tags: ['balance'],
  summary: 'Your balance',
  security: [{ userToken: [] }],
  middleware: [requireUser] as const,
  responses: { 200: { description: 'Balance', content: { 'application/json': { schema: BalanceSchema } } }, 401: common[401] },
});

const balanceOfRoute = createRoute({
  method: 'get',
  path: '/balance/{userId}',
  tags: ['balance'],
  summary: 'A balance by user id (your own only)',
  security: [{ userToken: [] }],
  middleware: [requireUser] as const,
  request: { params: z.object({ userId: UserIdSchema.openapi({ param: { name: 'userId', in: 'path' } }) }) },
  responses: {
    200: { description: 'Balance', content: { 'application/json': { schema: BalanceSchema } } },
    401: common[401],
    403: problemResponse('Someone else’s balance (FORBIDDEN)'),
  },
});

const historyRoute = createRoute({
  method: 'get',
  path: '/balance/history',
  tags: ['balance'],
  summary: 'Your ledger, newest first; pass nextCursor back as before= for the next page',
  security: [{ userToken: [] }],
  middleware: [requireUser] as const,
  request: {
    query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.coerce.number().int().min(1).optional() }),
  },
  responses: {
    200: {
      description: 'Ledger page',
      content: { 'application/json': { schema: z.object({ entries: z.array(LedgerEntrySchema), nextCursor: z.string().nullable() }) } },
    },
    400: common[400],
    401: common[401],
  },
});

function paymentRoute(path: '/payment' | '/payments') {
  return createRoute({
    method: 'post',
    path,
    tags: ['payment'],
    summary: path === '/payment' ? 'Pay a held reservation from your balance' : 'Alias of POST /payment',
    security: [{ userToken: [] }],
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

function balanceDeps(c: Context<AppEnv>): BalanceDeps {
  return {
    sql: c.var.sql(),
    waitLock: new WaitLock({ redis: getRedis(c.env), timeoutMs: testSwitches.balanceLockTimeoutMs }),
    bypassLock: testSwitches.bypassBalanceLock,
  };
}

/** Payment's dependencies; its per-request pool goes away when payment moves into the ConcertRoom. */
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

export function registerBalanceRoutes(app: App): void {
  app.openapi(balanceRoute, async (c) => c.json(await balanceOf(c.var.sql(), c.get('userId'), c.get('userId')), 200));

  // Registered before /balance/{userId} so "history" is never taken for a user id.
  app.openapi(historyRoute, async (c) => {
    const { limit, before } = c.req.valid('query');
    return c.json(await historyOf(c.var.sql(), c.get('userId'), limit, before), 200);
  });

  for (const kind of ['charge', 'use'] as const) {
    app.openapi(balanceChangeRoute(kind), async (c) => {
      const { amount } = c.req.valid('json');
      const claim = c.get('idempotency');
      const result = await changeBalanceOf(balanceDeps(c), c.get('userId'), kind, amount, claim);
      if (result.stored) return replayStored(claim!, result.stored);
      // The statement recorded {"balance":N} with the effect; c.json sends those same bytes.
      if (claim) markRecorded(c);
      return c.json({ balance: result.balance }, 200);
    });
  }

  app.openapi(balanceOfRoute, async (c) => c.json(await balanceOf(c.var.sql(), c.get('userId'), c.req.valid('param').userId), 200));

  for (const path of ['/payment', '/payments'] as const) {
    app.openapi(paymentRoute(path), async (c) => {
      const { reservationId } = c.req.valid('json');
      return c.json(await payForReservation(paymentDeps(c), c.get('userId'), reservationId), 201);
    });
  }
}
