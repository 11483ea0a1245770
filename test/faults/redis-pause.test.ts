// redis-server frozen (SIGSTOP) while a balance lock is held, for longer than the lock's lease. Redis's
// clock runs on meanwhile, so when it thaws the lease has lapsed and the next caller gets the lock: the
// holder from before the pause is a late writer, and only the fence in Postgres keeps it out.
import { env } from 'cloudflare:workers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { moveBalanceOverHttp } from '../../src/db/balances-repo.ts';
import { createSql } from '../../src/db/http.ts';
import { WaitLock } from '../../src/lib/locks/index.ts';
import { testSwitches } from '../../src/lib/test-switches.ts';
import { uniqueId } from '../helpers/api.ts';
import { balanceOf, charge } from '../helpers/balance.ts';
import { tokenFor } from '../helpers/concerts.ts';
import { switchServer } from '../helpers/faults.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { redis } from '../locks/helpers.ts';
import { sleep } from './helpers.ts';

checkInvariantsAfterEach();

beforeEach(() => {
  // A request that gave up while Redis was frozen may still leave its place in the lock's line when
  // Redis thaws (a poll that ran late keeps it until that request's deadline), or even the lock (for
  // its lease); a slow box must not turn that into a LOCK_TIMEOUT for the requests after the thaw.
  testSwitches.redisDeadlineMs = 15_000;
});

afterEach(() => {
  testSwitches.redisDeadlineMs = undefined;
});

const LEASE_MS = 1_000;

describe('Redis paused while a balance lock is held past its lease', () => {
  it('fails closed while paused, then fences the late writer out: one debit, no double spend', async () => {
    const userId = uniqueId('paused');
    const token = await tokenFor(userId);
    expect((await charge(token, 100)).status).toBe(200);

    // A holds the user's balance lock (the very lock the API takes), with a short lease.
    const stalled = await new WaitLock({ redis, leaseMs: LEASE_MS }).acquire(`balance:${userId}`);
    let whilePaused: Response;
    let pausedFor: number;
    await switchServer('upstash', 'pause');
    const pausedAt = Date.now();
    try {
      // Redis answers nothing: a charge fails closed (503) by its deadline (the default one here) and
      // writes nothing.
      testSwitches.redisDeadlineMs = undefined;
      try {
        whilePaused = await charge(token, 5);
      } finally {
        testSwitches.redisDeadlineMs = 15_000;
      }
      await sleep(LEASE_MS + 500 - (Date.now() - pausedAt));
    } finally {
      await switchServer('upstash', 'resume');
      pausedFor = Date.now() - pausedAt;
    }
    expect(pausedFor).toBeGreaterThan(LEASE_MS);
    await expectProblem(whilePaused, 503, 'DEPENDENCY_UNAVAILABLE');
    expect(Number(whilePaused.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    expect(await balanceOf(token)).toBe(100);

    // Thawed: A's lease lapsed while Redis was frozen, so B (an API request) gets the lock and writes.
    const later = await charge(token, 10);
    expect(later.status).toBe(200);
    expect(await later.json()).toEqual({ balance: 110 });

    // A wakes up and writes late, under its old fence: Postgres refuses it.
    const late = await moveBalanceOverHttp(createSql(env), { userId, delta: -100, kind: 'use', fence: stalled.fence, reference: null }, undefined);
    expect(late).toMatchObject({ ok: false, reason: 'FENCED' });
    const [{ fence }] = (await directQuery<{ fence: string }>('SELECT fence FROM balances WHERE user_id = $1', [userId])) as [{ fence: string }];
    expect(Number(fence)).toBeGreaterThan(stalled.fence);
    // Nor can it talk its way back in: it no longer holds the lock, so no re-fence and no release.
    expect(await stalled.refence(Number(fence))).toBeNull();
    expect(await stalled.release()).toBe(false);

    expect(await balanceOf(token)).toBe(110);
    expect(await expectLedgerMatchesBalance(userId)).toBe(110);
    const uses = await directQuery(`SELECT 1 FROM balance_ledger WHERE user_id = $1 AND kind = 'use'`, [userId]);
    expect(uses).toEqual([]);
  });

  it('serves a waiter queued before the pause once Redis is back, in order', async () => {
    const userId = uniqueId('paused-queue');
    const token = await tokenFor(userId);
    expect((await charge(token, 1)).status).toBe(200);
    const holder = await new WaitLock({ redis, leaseMs: LEASE_MS }).acquire(`balance:${userId}`);
    // An API charge queues behind the holder, then Redis freezes past the holder's lease.
    const queued = charge(token, 7);
    await sleep(100);
    await switchServer('upstash', 'pause');
    try {
      await sleep(LEASE_MS + 300);
    } finally {
      await switchServer('upstash', 'resume');
    }
    const response = await queued;
    // Either it got the lock after the lapse, or its own Redis calls timed out while frozen (503,
    // nothing written); both are allowed, a double or a lost charge is not.
    expect([200, 503]).toContain(response.status);
    await response.arrayBuffer();
    expect(await holder.release()).toBe(false);
    const after = await charge(token, 2);
    expect(after.status).toBe(200);
    await after.arrayBuffer();
    const expected = 1 + (response.status === 200 ? 7 : 0) + 2;
    expect(await balanceOf(token)).toBe(expected);
    expect(await expectLedgerMatchesBalance(userId)).toBe(expected);
  });
});
