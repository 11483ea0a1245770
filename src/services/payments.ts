import type { Sql } from '../db/http.ts';
import type { PayResult } from '../durable-objects/concert-room/index.ts';
import { AppError, dependencyUnavailable } from '../lib/errors.ts';
import { LIVE_RECORD, toStoredResponse, type IdempotencyClaim, type StoredResponse } from '../lib/idempotency.ts';
import type { NoWaitLock, WaitLock } from '../lib/locks/index.ts';
import { insufficient, lockLost, releaseOrLog, withBalanceLock } from './balance.ts';
import { concertNotFound, type RoomStub } from './queue.ts';
import { alreadyPaid, requestInProgress, reservationExpired, reservationNotFound } from './reservations.ts';

export interface PaymentDeps {
  /** Neon's HTTP query function, for the one read before the locks. */
  sql: Sql;
  waitLock: WaitLock;
  noWaitLock: NoWaitLock;
  /** Test switch: run without the balance lock, leaving Postgres's guard alone in charge. */
  bypassLock: boolean;
  roomFor: (concertId: string) => RoomStub;
}

/** What a payment comes to: the 201 body as the room's statement built (and stored) it, or a replay. */
export type PaymentResult = { body: string; stored?: never } | { stored: StoredResponse };

/**
 * The reservation's owner and concert, and the response stored for the key if there is one: one
 * HTTP read, before any lock, so a made-up or someone else's reservation id creates nothing in Redis.
 */
async function readBeforeLocking(sql: Sql, userId: string, reservationId: string, claim: IdempotencyClaim | undefined) {
  const rows = (await sql.query(
    `SELECT r.concert_id, r.user_id, k.request_hash, k.status_code, k.body
       FROM (SELECT 1) AS one
       LEFT JOIN reservations r ON r.id = $1
       LEFT JOIN (SELECT request_hash, status_code, body FROM idempotency_keys
                   WHERE $3::text IS NOT NULL AND user_id = $2 AND key = $3 AND ${LIVE_RECORD}) k ON true`,
    [reservationId, userId, claim?.key ?? null],
  )) as { concert_id: string | null; user_id: string | null; request_hash: string | null; status_code: number | null; body: unknown }[];
  const row = rows[0]!;
  return {
    concertId: row.user_id === userId ? row.concert_id : null,
    stored: row.request_hash === null ? undefined : toStoredResponse({ request_hash: row.request_hash, status_code: row.status_code ?? 0, body: row.body }),
  };
}

/**
 * Pays a held reservation (DESIGN.md §5 Pay). The no-wait lock `payment:{id}` stops duplicate
 * clicks at once, the fair wait lock `balance:{user}` orders the debit with charges and uses, and
 * the room that owns the seats runs the one Postgres statement on its warm pool with the lock's
 * fence, then sells the seats and ends the buyer's session in the same call.
 */
export async function payForReservation(
  deps: PaymentDeps,
  userId: string,
  reservationId: string,
  claim?: IdempotencyClaim,
): Promise<PaymentResult> {
  const { concertId, stored } = await readBeforeLocking(deps.sql, userId, reservationId, claim);
  if (stored) return { stored };
  if (!concertId) throw reservationNotFound(reservationId);
  const paymentLock = await deps.noWaitLock.tryAcquire(`payment:${reservationId}`);
  if (!paymentLock) {
    throw new AppError(409, 'PAYMENT_IN_PROGRESS', 'Payment in progress', 'This reservation is being paid right now', {
      headers: { 'Retry-After': '1' },
    });
  }
  try {
    const room = deps.roomFor(concertId);
    const outcome = await withBalanceLock(
      deps,
      userId,
      async (fence): Promise<PayResult> => room.pay({ userId, reservationId, fence, ...(claim ? { claim } : {}) }),
      (result) => (!result.ok && result.reason === 'FENCED' ? result.storedFence : undefined),
    );
    if (outcome.ok) return { body: outcome.body };
    switch (outcome.reason) {
      case 'CONCERT_NOT_FOUND':
        throw concertNotFound(concertId);
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
      case 'REQUEST_IN_PROGRESS':
        throw requestInProgress('The hold is still being written; retry shortly');
      case 'DEPENDENCY_UNAVAILABLE':
        throw dependencyUnavailable('Postgres');
    }
  } finally {
    await releaseOrLog(paymentLock);
  }
}
