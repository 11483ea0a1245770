import { afterEach, describe, expect, it } from 'vitest';
import { uniqueId, userToken } from '../helpers/api.ts';
import { balanceOf, charge, use } from '../helpers/balance.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

checkInvariantsAfterEach();

async function newUser(startingBalance: number) {
  const userId = uniqueId('lost-reply');
  const token = await userToken(userId);
  if (startingBalance > 0) expect((await charge(token, startingBalance)).status).toBe(200);
  return { userId, token };
}

const ledgerDeltas = async (userId: string) =>
  (await directQuery<{ delta: string }>('SELECT delta FROM balance_ledger WHERE user_id = $1 ORDER BY id', [userId])).map((row) => Number(row.delta));

/** Sends `request` with the Neon adapter losing every reply (the statements still run and commit). */
async function withRepliesLost(request: () => Promise<Response>): Promise<Response> {
  await setFault('neon', 'cut-replies');
  try {
    return await request();
  } finally {
    await clearFault('neon');
  }
}

afterEach(async () => {
  await clearFault('neon');
});

describe('a reply lost after COMMIT (Neon adapter cut-replies)', () => {
  for (const kind of ['charge', 'use'] as const) {
    const send = kind === 'charge' ? charge : use;
    const delta = kind === 'charge' ? 30 : -30;

    it(`${kind}: the client gets a 503 problem, and the retry with the same key replays the committed 200 once`, async () => {
      const { userId, token } = await newUser(100);
      const key = { 'Idempotency-Key': uniqueId(kind) };

      const lost = await withRepliesLost(() => send(token, 30, key));
      // Never a 500 with a stack: the app cannot know whether the statement committed, so it says
      // "unavailable, retry" (and the retry is what resolves it).
      await expectProblem(lost, 503, 'DEPENDENCY_UNAVAILABLE');
      expect(Number(lost.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
      // The effect did commit, with its record.
      expect(await ledgerDeltas(userId)).toEqual([100, delta]);

      const retry = await send(token, 30, key);
      expect(retry.status).toBe(200);
      expect(retry.headers.get('Idempotent-Replayed')).toBe('true');
      expect(await retry.text()).toBe(`{"balance":${100 + delta}}`);
      const again = await send(token, 30, key);
      expect(await again.text()).toBe(`{"balance":${100 + delta}}`);

      expect(await ledgerDeltas(userId)).toEqual([100, delta]);
      expect(await balanceOf(token)).toBe(100 + delta);
      expect(await expectLedgerMatchesBalance(userId)).toBe(100 + delta);
    });

    it(`${kind} without a key: the 503 is resolved by reading state back, which is consistent`, async () => {
      const { userId, token } = await newUser(100);
      await expectProblem(await withRepliesLost(() => send(token, 30)), 503, 'DEPENDENCY_UNAVAILABLE');
      // The statement committed though the client was told 503: balance and ledger agree on it.
      expect(await balanceOf(token)).toBe(100 + delta);
      expect(await expectLedgerMatchesBalance(userId)).toBe(100 + delta);
      expect(await ledgerDeltas(userId)).toEqual([100, delta]);
    });
  }

  it('a refused use whose reply is lost is not stored, and its retry is answered afresh', async () => {
    const { userId, token } = await newUser(10);
    const key = { 'Idempotency-Key': uniqueId('use') };
    await expectProblem(await withRepliesLost(() => use(token, 30, key)), 503, 'DEPENDENCY_UNAVAILABLE');
    expect((await charge(token, 50)).status).toBe(200);
    // Nothing was recorded for the key (the statement moved nothing), so the retry runs now: 60 ≥ 30.
    const retry = await use(token, 30, key);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await retry.text()).toBe('{"balance":30}');
    expect(await expectLedgerMatchesBalance(userId)).toBe(30);
  });
});
