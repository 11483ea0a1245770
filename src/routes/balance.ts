import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { idempotentInEffect, markRecorded, replayStored } from '../lib/idempotency.ts';
import { WaitLock } from '../lib/locks/index.ts';
import { requireUser } from '../lib/middleware.ts';
import { limitByAddress, limitByUser } from '../lib/rate-limit.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { redisUntil } from '../lib/redis.ts';
import { testSwitches } from '../lib/test-switches.ts';
import { UserIdSchema } from './auth.ts';
import { balanceOf, changeBalanceOf, historyOf, type BalanceDeps } from '../services/balance.ts';
import { common, idempotencyHeader } from './common.ts';
import type { App, AppEnv } from '../types.ts';

/** Points per charge or use (DESIGN.md §3): an integer, so 1e309, 2^53, "100" and 1.5 are all refused. */
export const AmountSchema = z.number().int().min(1).max(1_000_000);

export const AmountRequest = z.strictObject({ amount: AmountSchema }).openapi('AmountRequest');
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

// A user's own reads (balance, ledger) count against one `account` budget, per address then per user.
const accountReadLimited = problemResponse('Too many reads from this user or address (RATE_LIMITED, with Retry-After)');

const balanceRoute = createRoute({
  method: 'get',
  path: '/balance',
  tags: ['balance'],
  summary: 'Your balance',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('account'), requireUser, limitByUser('account', (c) => c.get('userId'))] as const,
  responses: { 200: { description: 'Balance', content: { 'application/json': { schema: BalanceSchema } } }, 401: common[401], 429: accountReadLimited },
});

const balanceOfRoute = createRoute({
  method: 'get',
  path: '/balance/{userId}',
  tags: ['balance'],
  summary: 'A balance by user id (your own only)',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('account'), requireUser, limitByUser('account', (c) => c.get('userId'))] as const,
  request: { params: z.object({ userId: UserIdSchema.openapi({ param: { name: 'userId', in: 'path' } }) }) },
  responses: {
    200: { description: 'Balance', content: { 'application/json': { schema: BalanceSchema } } },
    401: common[401],
    403: problemResponse('Someone else’s balance (FORBIDDEN)'),
    429: accountReadLimited,
  },
});

export const HistoryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(1).optional(),
});

const historyRoute = createRoute({
  method: 'get',
  path: '/balance/history',
  tags: ['balance'],
  summary: 'Your ledger, newest first; pass nextCursor back as before= for the next page',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('account'), requireUser, limitByUser('account', (c) => c.get('userId'))] as const,
  request: {
    query: HistoryQuery,
  },
  responses: {
    200: {
      description: 'Ledger page',
      content: { 'application/json': { schema: z.object({ entries: z.array(LedgerEntrySchema), nextCursor: z.string().nullable() }) } },
    },
    400: common[400],
    401: common[401],
    429: accountReadLimited,
  },
});

function balanceDeps(c: Context<AppEnv>): BalanceDeps {
  return {
    sql: c.var.sql(),
    // The wait ends at the request's Redis deadline (src/lib/deadline.ts), like every Redis call in it.
    waitLock: new WaitLock({ redis: (deadline) => redisUntil(c.env, deadline), deadline: c.var.deadline }),
    bypassLock: testSwitches.bypassBalanceLock,
    afterResponse: (task) => c.executionCtx.waitUntil(task),
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
}
