import { moveBalanceOverHttp, readBalance, readLedger, BALANCE_CAP } from '../db/balances-repo.ts';
import type { Sql } from '../db/http.ts';
import { AppError, forbidden } from '../lib/errors.ts';
import type { IdempotencyClaim, StoredResponse } from '../lib/idempotency.ts';
import type { LockGrant, WaitLock } from '../lib/locks/index.ts';
import { describeError, logJson } from '../lib/logging.ts';

export interface BalanceDeps {
  /** Neon's HTTP query function: charge and use are one statement each. */
  sql: Sql;
  waitLock: WaitLock;
  /** Test switch: run without the lock, leaving Postgres's guard alone in charge. */
  bypassLock: boolean;
  /**
   * Keeps a task running after the response is sent (the execution context's `waitUntil`): lock
   * releases, which no answer waits for. Every write under a lock checks its fence, so a lock freed
   * a few milliseconds after the answer is as safe as one freed before it.
   */
  afterResponse: (task: Promise<unknown>) => void;
}

export const lockLost = () =>
  new AppError(503, 'LOCK_TIMEOUT', 'Lock lost', 'The balance lock expired before the write; nothing changed, retry', {
    headers: { 'Retry-After': '1' },
  });

export const insufficient = (balance: number, amount: number) =>
  new AppError(402, 'INSUFFICIENT_BALANCE', 'Insufficient balance', `Balance ${balance} is less than ${amount}`, {
    extensions: { balance, amount },
  });

/**
 * Releases a grant, trying once more if Redis did not answer: a lock left to its lease blocks the
 * user's balance for up to 10 s, far past a next request's Redis deadline. Never throws: the
 * work it guarded is already done, and the lease frees the lock in the end anyway.
 */
export async function releaseOrLog(grant: LockGrant): Promise<void> {
  try {
    await grant.release();
  } catch {
    await grant.release().catch((error: unknown) => logJson('warn', 'lock release failed', { key: grant.key, ...describeError(error) }));
  }
}

/**
 * Runs `work` holding the fair wait lock `balance:{userId}` and hands it the grant's fencing token,
 * which the guarded write checks (see {@link underGrant}). The lock is released after the response
 * (best effort: if Redis is gone by then, the lease frees the lock anyway).
 */
export async function withBalanceLock<T>(
  deps: Pick<BalanceDeps, 'waitLock' | 'bypassLock' | 'afterResponse'>,
  userId: string,
  work: (fence: number | null) => Promise<T>,
  storedFence: (result: T) => Promise<number | undefined> | number | undefined,
): Promise<T> {
  if (deps.bypassLock) return work(null);
  const grant = await deps.waitLock.acquire(`balance:${userId}`);
  try {
    return await underGrant(grant, work, storedFence);
  } finally {
    deps.afterResponse(releaseOrLog(grant));
  }
}

/**
 * Runs `work` with `grant`'s fence. Fences survive Redis losing data: when the write comes back
 * FENCED (`storedFence(result)` gives the fence Postgres holds) although this grant still holds the
 * lock, Redis has lost its counter and every new grant would be refused forever. The grant is
 * re-fenced above the stored fence and the write retried once. A grant that no longer holds the lock
 * stays refused (see LockGrant.refence). Releasing is the caller's.
 */
export async function underGrant<T>(
  grant: LockGrant,
  work: (fence: number) => Promise<T>,
  storedFence: (result: T) => Promise<number | undefined> | number | undefined,
): Promise<T> {
  const result = await work(grant.fence);
  const seen = await storedFence(result);
  if (seen === undefined || seen < grant.fence) return result;
  const refenced = await grant.refence(seen);
  if (!refenced) return result;
  logJson('warn', 'balance lock re-fenced above the stored fence (Redis lost its counter)', { key: grant.key, was: grant.fence, stored: seen, now: refenced.fence });
  return await work(refenced.fence);
}

/** What charge and use come to: the new balance, or the response stored for the Idempotency-Key. */
export type BalanceChangeResult = { balance: number; stored?: never } | { stored: StoredResponse };

/**
 * Adds `amount` points (charge) or takes them (use) under the balance lock: one acquisition, then ONE
 * HTTP statement moves the balance, writes the ledger row and, given an Idempotency-Key
 * claim, records the 200 response with them (see moveBalanceOverHttp). A key whose response is stored
 * already comes back as `{stored}`, with nothing done.
 */
export async function changeBalanceOf(
  deps: BalanceDeps,
  userId: string,
  kind: 'charge' | 'use',
  amount: number,
  claim?: IdempotencyClaim,
): Promise<BalanceChangeResult> {
  const delta = kind === 'charge' ? amount : -amount;
  const change = await withBalanceLock(
    deps,
    userId,
    (fence) => moveBalanceOverHttp(deps.sql, { userId, delta, kind, fence, reference: null }, claim),
    (result) => (!result.ok && result.reason === 'FENCED' ? result.storedFence : undefined),
  );
  if (change.ok) return { balance: change.balance };
  switch (change.reason) {
    case 'STORED':
      return { stored: change.stored };
    case 'INSUFFICIENT_BALANCE':
      throw insufficient(change.balance, amount);
    case 'BALANCE_LIMIT':
      throw new AppError(422, 'BALANCE_LIMIT', 'Balance limit', `A balance may not exceed ${BALANCE_CAP}; it is ${change.balance}`, {
        extensions: { balance: change.balance, limit: BALANCE_CAP },
      });
    case 'FENCED':
      throw lockLost();
  }
}

/** A balance may only be read by its owner. */
export async function balanceOf(sql: Sql, requesterId: string, userId: string) {
  if (requesterId !== userId) throw forbidden('You can only read your own balance');
  return { userId, balance: await readBalance(sql, userId) };
}

/** One page of the user's ledger, newest first, with the cursor for the next page. */
export async function historyOf(sql: Sql, userId: string, limit: number, before?: number) {
  const entries = await readLedger(sql, userId, limit, before);
  const last = entries.at(-1);
  return { entries, nextCursor: entries.length === limit && last ? String(last.id) : null };
}
