import type { Sql } from '../db/http.ts';
import type { PayResult } from '../durable-objects/concert-room/index.ts';
import { AppError, dependencyUnavailable } from '../lib/errors.ts';
import { LIVE_RECORD, toStoredResponse, type IdempotencyClaim, type StoredResponse } from '../lib/idempotency.ts';
import type { LockGrant, WaitLock } from '../lib/locks/index.ts';
import { insufficient, lockLost, releaseOrLog, underGrant } from './balance.ts';
import { concertNotFound, type RoomStub } from './queue.ts';
import { alreadyPaid, requestInProgress, reservationExpired, reservationNotFound } from './reservations.ts';

export interface PaymentDeps {
  /** Neon's HTTP query function, for the one read beside the locks. */
  sql: Sql;
  waitLock: WaitLock;
  /** Test switch: run without the locks, leaving Postgres's guard alone in charge. */
  bypassLock: boolean;
  roomFor: (concertId: string) => RoomStub;
  /** Keeps a task running after the response (the execution context's `waitUntil`): the lock release. */
  afterResponse: (task: Promise<unknown>) => void;
}

/** What a payment comes to: the 201 body as the room's statement built (and stored) it, or a replay. */
export type PaymentResult = { body: string; stored?: never } | { stored: StoredResponse };

/**
 * The reservation's concert if it is the caller's, and the response stored for the key if there is
 * one: one HTTP read.
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

/** The error that answers a payment the room did not make. */
function refusal(outcome: Exclude<PayResult, { ok: true }>, concertId: string, reservationId: string): Error {
  switch (outcome.reason) {
    case 'CONCERT_NOT_FOUND':
      return concertNotFound(concertId);
    case 'RESERVATION_NOT_FOUND':
      return reservationNotFound(reservationId);
    case 'ALREADY_PAID':
      return alreadyPaid();
    case 'RESERVATION_EXPIRED':
      return reservationExpired();
    case 'INSUFFICIENT_BALANCE':
      return insufficient(outcome.balance, outcome.amount);
    case 'FENCED':
      return lockLost();
    case 'REQUEST_IN_PROGRESS':
      return requestInProgress('The hold is still being written; retry shortly');
    case 'DEPENDENCY_UNAVAILABLE':
      return dependencyUnavailable('Postgres');
  }
}

const paymentInProgress = () =>
  new AppError(409, 'PAYMENT_IN_PROGRESS', 'Payment in progress', 'This reservation is being paid right now', {
    headers: { 'Retry-After': '1' },
  });

/**
 * Pays a held reservation (DESIGN.md §5 Pay) in two dependent calls:
 *
 * 1. At once, side by side: one Redis script per poll takes both locks (the fair wait lock
 *    `balance:{user}`, which orders the debit with charges and uses and issues its fence, with the
 *    no-wait lock `payment:{id}` under it, which answers a duplicate click 409 at once; see
 *    WaitLock.acquireWith), and one HTTP read finds the reservation's concert (whose room pays it)
 *    and any response stored for the key. Neither needs the other's answer, so the read adds no
 *    round trip. A made-up or someone else's id answers 404 from the read; the locks it took are
 *    released right after.
 * 2. The room that owns the seats runs the one Postgres statement on its warm pool with the fence,
 *    then sells the seats and ends the buyer's session in the same call.
 *
 * Both locks are released in one call after the response: the debit checked the fence, so nothing
 * a late release allows can double-spend.
 */
export async function payForReservation(
  deps: PaymentDeps,
  userId: string,
  reservationId: string,
  claim?: IdempotencyClaim,
): Promise<PaymentResult> {
  const stopWaiting = new AbortController();
  const reading = readBeforeLocking(deps.sql, userId, reservationId, claim);
  const locking: Promise<LockGrant | null | undefined> = deps.bypassLock
    ? Promise.resolve(undefined)
    : deps.waitLock.acquireWith(`balance:${userId}`, `payment:${reservationId}`, { signal: stopWaiting.signal });
  // Nothing to pay (not found, replayed, or the read failed): stop waiting for the lock if still in line.
  void reading.then(
    (read) => (read.stored || !read.concertId) && stopWaiting.abort(),
    () => stopWaiting.abort(),
  );
  const [read, locked] = await Promise.allSettled([reading, locking]);
  const grant = locked.status === 'fulfilled' ? locked.value : undefined;
  try {
    if (read.status === 'rejected') throw read.reason;
    const { concertId, stored } = read.value;
    if (stored) return { stored };
    if (!concertId) throw reservationNotFound(reservationId);
    if (locked.status === 'rejected') throw locked.reason;
    if (grant === null) throw paymentInProgress();
    const room = deps.roomFor(concertId);
    const pay = (fence: number | null): Promise<PayResult> => room.pay({ userId, reservationId, fence, ...(claim ? { claim } : {}) });
    const storedFence = (result: PayResult) => (!result.ok && result.reason === 'FENCED' ? result.storedFence : undefined);
    const outcome = grant ? await underGrant(grant, pay, storedFence) : await pay(null);
    if (outcome.ok) return { body: outcome.body };
    throw refusal(outcome, concertId, reservationId);
  } finally {
    if (grant) deps.afterResponse(releaseOrLog(grant));
  }
}
