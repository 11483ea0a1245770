import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testSwitches } from '../../src/lib/test-switches.ts';
import { uniqueId, userToken } from '../helpers/api.ts';
import { balanceOf, charge } from '../helpers/balance.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { redisCommand } from '../helpers/redis.ts';

checkInvariantsAfterEach();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeEach(() => {
  // Exactness under a flush is the point; a (correct) LOCK_TIMEOUT on a slow box would only blur it.
  testSwitches.redisDeadlineMs = 60_000;
});

afterEach(() => {
  testSwitches.redisDeadlineMs = undefined;
});

/** Ledger deltas of a user, sorted. */
async function ledgerDeltas(userId: string): Promise<number[]> {
  const rows = await directQuery<{ delta: string }>('SELECT delta FROM balance_ledger WHERE user_id = $1', [userId]);
  return rows.map((row) => Number(row.delta)).sort((a, b) => a - b);
}

describe('balance when Redis loses its data (FLUSHALL)', () => {
  it('keeps charging after a flush: the first write is re-fenced above the fence Postgres holds', async () => {
    const userId = uniqueId('flush-seq');
    const token = await userToken(userId);
    for (let i = 0; i < 5; i++) expect((await charge(token, 10)).status).toBe(200);
    await redisCommand('FLUSHALL');
    // Without the re-fence every write from here on would be FENCED (503 LOCK_TIMEOUT) forever.
    for (let i = 0; i < 5; i++) expect((await charge(token, 10)).status).toBe(200);
    expect(await balanceOf(token)).toBe(100);
    expect(await expectLedgerMatchesBalance(userId)).toBe(100);
    const [row] = await directQuery<{ fence: string }>('SELECT fence FROM balances WHERE user_id = $1', [userId]);
    expect(Number(row?.fence)).toBeGreaterThan(5);
  });

  it('applies every charge answered 200 exactly once, loses none, when Redis is flushed mid-run', async () => {
    const userId = uniqueId('flush-race');
    const token = await userToken(userId);
    expect((await charge(token, 1000)).status).toBe(200); // warm up, and a history of fences
    // Distinct amounts, so the ledger shows which requests were applied.
    const amounts = Array.from({ length: 60 }, (_, i) => 1001 + i);
    const during = amounts.map(async (amount, i) => {
      await sleep(i * 5);
      const response = await charge(token, amount);
      await response.arrayBuffer();
      return { amount, status: response.status };
    });
    await sleep(120);
    await redisCommand('FLUSHALL');
    const results = await Promise.all(during);
    // A holder from before the flush may lose its lease to one granted after it (Redis forgot it)
    // and be refused by the fence (503, nothing written); nothing else may fail.
    expect(results.filter((r) => r.status !== 200 && r.status !== 503)).toEqual([]);

    // After the flush, charges keep working.
    const after = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const amount = 2001 + i;
        const response = await charge(token, amount);
        await response.arrayBuffer();
        return { amount, status: response.status };
      }),
    );
    expect(after.map((r) => r.status)).toEqual(after.map(() => 200));

    const applied = [1000, ...results.filter((r) => r.status === 200).map((r) => r.amount), ...after.map((r) => r.amount)];
    expect(await ledgerDeltas(userId)).toEqual([...applied].sort((a, b) => a - b));
    const total = applied.reduce((sum, amount) => sum + amount, 0);
    expect(await balanceOf(token)).toBe(total);
    expect(await expectLedgerMatchesBalance(userId)).toBe(total);
  });
});
