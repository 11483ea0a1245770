import type { Pool, PoolClient } from '@neondatabase/serverless';
import { moveBalanceOverHttp, readBalance, readLedger, BALANCE_CAP } from '../db/balances-repo.ts';
import { payReservation } from '../db/payments-repo.ts';
import type { Sql } from '../db/http.ts';
import { withClient } from '../db/transaction.ts';
import { AppError, forbidden } from '../lib/errors.ts';
import type { IdempotencyClaim, StoredResponse } from '../lib/idempotency.ts';
import type { LockGrant, NoWaitLock, WaitLock } from '../lib/locks/index.ts';
import { describeError, logJson } from '../lib/logging.ts';
import { alreadyPaid, reservationExpired, reservationNotFound } from './reservations.ts';
import type { RoomStub } from './queue.ts';

export interface BalanceDeps {
  /** Neon's HTTP query function: charge and use are one statement each. */
  sql: Sql;
  waitLock: WaitLock;
  /** Test switch: run without the lock, leaving Postgres's guard alone in charge. */
  bypassLock: boolean;
}

/** Payment still runs its transaction on a per-request pool; going away when payment moves into the room. */
export interface PaymentDeps extends Omit<BalanceDeps, 'sql'> {
  pool: Pool;
  noWaitLock: NoWaitLock;
  roomFor: (concertId: string) => RoomStub;
}

const lockLost = () =>
  new AppError(503, 'LOCK_TIMEOUT', 'Lock lost', 'The balance lock expired before the write; nothing changed, retry', {
    headers: { 'Retry-After': '1' },
  });

const insufficient = (balance: number, amount: number) =>
  new AppError(402, 'INSUFFICIENT_BALANCE', 'Insufficient balance', `Balance ${balance} is less than ${amount}`, {
    extensions: { balance, amount },
  });

/**
 * Releases a grant, trying once more if Redis did not answer: a lock left to its lease blocks the
 * user's balance for up to 10 s, longer than the 5 s a next request waits. Never throws: the
 * work it guarded is already done, and the lease frees the lock in the end anyway.
 */
async function releaseOrLog(grant: LockGrant): Promise<void> {
  try {
    await grant.release();
  } catch {
    await grant.release().catch((error: unknown) => logJson('warn', 'lock release failed', { key: grant.key, ...describeError(error) }));
  }
}

/**
 * Runs `work` holding the fair wait lock `balance:{userId}` and hands it the grant's fencing token,
 * which the guarded write checks. Releasing is best effort: if Redis is gone by then, the lease frees
 * the lock anyway.
 *
 * Fences survive Redis losing data: when the write comes back FENCED (`storedFence(result)` gives
 * the fence Postgres holds) although this grant still holds the lock, Redis has lost its counter and
 * every new grant would be refused forever. The grant is re-fenced above the stored fence and the
 * write retried once. A grant that no longer holds the lock stays refused (see LockGrant.refence).
 */
async function withBalanceLock<T>(
  deps: Pick<BalanceDeps, 'waitLock' | 'bypassLock'>,
  userId: string,
  work: (fence: number | null) => Promise<T>,
  storedFence: (result: T) => Promise<number | undefined> | number | undefined,
): Promise<T> {
  if (deps.bypassLock) return work(null);
  const grant = await deps.waitLock.acquire(`balance:${userId}`);
  try {
    const result = await work(grant.fence);
    const seen = await storedFence(result);
    if (seen === undefined || seen < grant.fence) return result;
    const refenced = await grant.refence(seen);
    if (!refenced) return result;
    logJson('warn', 'balance lock re-fenced above the stored fence (Redis lost its counter)', { key: grant.key, was: grant.fence, stored: seen, now: refenced.fence });
    return await work(refenced.fence);
  } finally {
    await releaseOrLog(grant);
  }
}

/**
 * {@link withBalanceLock} with a connection of the per-request pool, opened before the lock is taken
 * so that connection set-up never lengthens the critical section. Only payForReservation still needs
 * it; it goes away when payment moves into the ConcertRoom. A `{reason: 'FENCED'}` outcome has the
 * stored fence read back on the same connection, for the re-fence.
 */
async function underBalanceLock<T>(
  deps: Pick<PaymentDeps, 'pool' | 'waitLock' | 'bypassLock'>,
  userId: string,
  work: (client: PoolClient, fence: number | null) => Promise<T>,
): Promise<T> {
  return withClient(deps.pool, (client) =>
    withBalanceLock(
      deps,
      userId,
      (fence) => work(client, fence),
      async (result) => {
        if ((result as { reason?: unknown }).reason !== 'FENCED') return undefined;
        const rows = await client.query<{ fence: string }>(`SELECT fence FROM balances WHERE user_id = $1`, [userId]);
        return rows.rows[0] ? Number(rows.rows[0].fence) : undefined;
      },
    ),
  );
}

/** What charge and use come to: the new balance, or the response stored for the Idempotency-Key. */
export type BalanceChangeResult = { balance: number; stored?: never } | { stored: StoredResponse };

/**
 * Adds `amount` points (charge) or takes them (use) under the balance lock: ONE HTTP statement
 * between acquire and release moves the balance, writes the ledger row and, given an Idempotency-Key
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

/**
 * Pays a held reservation (DESIGN.md §5 Pay): a no-wait lock stops duplicate clicks at once, the
 * balance lock orders the debit with charges and uses, and one Postgres transaction decides. The
 * room is told afterwards; if that call fails, its alarm and reconciliation catch up from Postgres.
 */
export async function payForReservation(deps: PaymentDeps, userId: string, reservationId: string) {
  const paymentLock = await deps.noWaitLock.tryAcquire(`payment:${reservationId}`);
  if (!paymentLock) throw new AppError(409, 'PAYMENT_IN_PROGRESS', 'Payment in progress', 'This reservation is being paid right now');
  try {
    const outcome = await underBalanceLock(deps, userId, (client, fence) => payReservation(client, { reservationId, userId, fence }));
    if (!outcome.ok) {
      switch (outcome.reason) {
        case 'RESERVATION_NOT_FOUND':
          throw reservationNotFound(reservationId);
        case 'ALREADY_PAID':
          throw alreadyPaid();
        case 'RESERVATION_EXPIRED':
          throw reservationExpired();
        case 'INSUFFICIENT_BALANCE':
          throw insufficient(outcome.balance, outcome.amount);
        case 'FENCED':
          throw lockLost();
      }
    }
    try {
      await deps.roomFor(outcome.concertId).confirmPaid(userId, reservationId);
    } catch (error) {
      logJson('warn', 'room not told of payment; it will reconcile', { reservationId, ...describeError(error) });
    }
    return { paymentId: outcome.paymentId, reservationId, amount: outcome.amount, balance: outcome.balance, status: 'confirmed' as const };
  } finally {
    await releaseOrLog(paymentLock);
  }
}
