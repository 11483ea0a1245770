import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testSwitches } from '../../src/lib/test-switches.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { balanceOf, charge, statusCounts, use } from '../helpers/balance.ts';
import { tokenFor } from '../helpers/concerts.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

checkInvariantsAfterEach();

async function newUser() {
  const userId = uniqueId('payer');
  return { userId, token: await tokenFor(userId) };
}

beforeAll(async () => {
  // Warm the isolate first: the first requests of a run compile the Worker and open the first
  // connections, and 70 of them landing on a cold isolate at once can starve the event loop past
  // the Redis command timeout (a fail-closed 503, correct but not what these races are about).
  const { token } = await newUser();
  for (let i = 0; i < 3; i++) {
    expect((await charge(token, 1)).status).toBe(200);
    expect((await use(token, 1)).status).toBe(200);
  }
});

beforeEach(() => {
  // These races are about exactness; a LOCK_TIMEOUT on a loaded machine would be correct but
  // would blur that. The timeout's own behaviour is covered in test/locks.
  testSwitches.redisDeadlineMs = 60_000;
});

afterEach(() => {
  testSwitches.bypassBalanceLock = false;
  testSwitches.redisDeadlineMs = undefined;
});

for (const bypass of [false, true]) {
  describe(`balance under concurrency (${bypass ? 'lock bypassed: Postgres guard alone' : 'wait lock'})`, () => {
    it('lets exactly 50 of 70 concurrent uses of 1 succeed from a balance of 50 (the seed’s test)', async () => {
      testSwitches.bypassBalanceLock = bypass;
      const { userId, token } = await newUser();
      expect((await charge(token, 50)).status).toBe(200);
      const counts = await statusCounts(await Promise.all(Array.from({ length: 70 }, () => use(token, 1))));
      expect(counts).toEqual({ 200: 50, 402: 20 });
      expect(await balanceOf(token)).toBe(0);
      expect(await expectLedgerMatchesBalance(userId)).toBe(0);
    });

    it('adds up 100 concurrent charges of 100 to exactly 10,000', async () => {
      testSwitches.bypassBalanceLock = bypass;
      const { userId, token } = await newUser();
      const counts = await statusCounts(await Promise.all(Array.from({ length: 100 }, () => charge(token, 100))));
      expect(counts).toEqual({ 200: 100 });
      expect(await balanceOf(token)).toBe(10_000);
      expect(await expectLedgerMatchesBalance(userId)).toBe(10_000);
    });
  });
}

describe('balance validation and limits', () => {
  it('rejects every malformed amount with 400 and writes nothing', async () => {
    const { userId, token } = await newUser();
    for (const amount of [-1, 0, 1.5, '100', 2 ** 53, 1_000_001, null, true]) {
      await expectProblem(await charge(token, amount), 400, 'VALIDATION_FAILED');
    }
    for (const body of ['{"amount": 1e309}', '{}', '{"amount": 5, "extra": 1}']) {
      const response = await api('/balance/charge', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body,
      });
      await expectProblem(response, 400, 'VALIDATION_FAILED');
    }
    expect(await directQuery('SELECT 1 FROM balance_ledger WHERE user_id = $1', [userId])).toEqual([]);
  });

  it('refuses a balance over 1,000,000,000 with 422 BALANCE_LIMIT and overdrafts with 402', async () => {
    const { userId, token } = await newUser();
    await directQuery(`INSERT INTO balances (user_id, amount) VALUES ($1, 999999990)`, [userId]);
    await directQuery(`INSERT INTO balance_ledger (user_id, delta, balance_after, kind) VALUES ($1, 999999990, 999999990, 'charge')`, [userId]);
    const problem = await expectProblem(await charge(token, 11), 422, 'BALANCE_LIMIT');
    expect(problem).toMatchObject({ balance: 999_999_990, limit: 1_000_000_000 });
    expect((await charge(token, 10)).status).toBe(200);
    await expectProblem(await use(token, 1_000_000 + 1), 400, 'VALIDATION_FAILED');
    const fresh = await newUser();
    await expectProblem(await use(fresh.token, 1), 402, 'INSUFFICIENT_BALANCE');
    expect(await expectLedgerMatchesBalance(userId)).toBe(1_000_000_000);
  });

  it('shows a balance to its owner only and pages the history newest first', async () => {
    const alice = await newUser();
    const bob = await newUser();
    for (const amount of [1, 2, 3, 4, 5]) expect((await charge(alice.token, amount)).status).toBe(200);
    const self = await api(`/balance/${alice.userId}`, { headers: { Authorization: `Bearer ${alice.token}` } });
    expect(await self.json()).toEqual({ userId: alice.userId, balance: 15 });
    await expectProblem(await api(`/balance/${alice.userId}`, { headers: { Authorization: `Bearer ${bob.token}` } }), 403, 'FORBIDDEN');
    const page1 = await (await api('/balance/history?limit=2', { headers: { Authorization: `Bearer ${alice.token}` } })).json<{
      entries: { delta: number; balanceAfter: number }[];
      nextCursor: string;
    }>();
    expect(page1.entries.map((e) => e.delta)).toEqual([5, 4]);
    const page2 = await (
      await api(`/balance/history?limit=2&before=${page1.nextCursor}`, { headers: { Authorization: `Bearer ${alice.token}` } })
    ).json<{ entries: { delta: number }[] }>();
    expect(page2.entries.map((e) => e.delta)).toEqual([3, 2]);
  });

  it('fails closed with 503 when Redis is refused, and writes nothing', async () => {
    const { userId, token } = await newUser();
    expect((await charge(token, 10)).status).toBe(200);
    await setFault('upstash', 'refuse');
    let response: Response;
    try {
      response = await charge(token, 5);
    } finally {
      await clearFault('upstash');
    }
    await expectProblem(response, 503, 'DEPENDENCY_UNAVAILABLE');
    expect(Number(response.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    expect(await balanceOf(token)).toBe(10);
    expect(await expectLedgerMatchesBalance(userId)).toBe(10);
  });
});
