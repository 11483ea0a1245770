import type { Sql } from '../db/http.ts';
import type { HoldResult } from '../durable-objects/concert-room/index.ts';
import { findReservation, type ReservationView } from '../db/reservations-repo.ts';
import { AppError, dependencyUnavailable, notFound } from '../lib/errors.ts';
import type { IdempotencyClaim } from '../lib/idempotency.ts';
import type { QueueClaims } from '../lib/queue-token.ts';
import { concertNotFound, type RoomStub } from './queue.ts';

export const reservationNotFound = (id: string) => notFound('RESERVATION_NOT_FOUND', `No reservation ${id}`);

export const alreadyPaid = () => new AppError(409, 'ALREADY_PAID', 'Already paid', 'This reservation has been paid');

export const reservationExpired = () =>
  new AppError(409, 'RESERVATION_EXPIRED', 'Reservation expired', 'This hold has expired or was cancelled; nothing was charged');

export const requestInProgress = (detail: string) =>
  new AppError(409, 'REQUEST_IN_PROGRESS', 'Request in progress', detail, { headers: { 'Retry-After': '1' } });

export const queueTokenMismatch = (detail: string) => new AppError(403, 'QUEUE_TOKEN_MISMATCH', 'Queue token does not match', detail);

/** Turns the room's refusal into the API's error. */
function holdError(result: Exclude<HoldResult, { ok: true }>, concertId: string): AppError {
  switch (result.reason) {
    case 'CONCERT_NOT_FOUND':
      return concertNotFound(concertId);
    case 'NOT_ADMITTED':
      return new AppError(403, 'NOT_ADMITTED', 'Not admitted', result.detail);
    case 'SEAT_NOT_FOUND':
      return new AppError(404, 'SEAT_NOT_FOUND', 'Not found', `No such seat: ${result.seats.join(', ')}`, { extensions: { seats: result.seats } });
    case 'SEAT_UNAVAILABLE':
      return new AppError(409, 'SEAT_UNAVAILABLE', 'Seat unavailable', `Already taken: ${result.seats.join(', ')}`, {
        extensions: { seats: result.seats },
      });
    case 'HOLD_LIMIT':
      return new AppError(422, 'HOLD_LIMIT', 'Hold limit reached', `At most ${result.limit} seats per person; you have ${result.owned}`, {
        extensions: { limit: result.limit, owned: result.owned },
      });
    case 'DEPENDENCY_UNAVAILABLE':
      return dependencyUnavailable('Postgres');
    case 'REQUEST_IN_PROGRESS':
      return requestInProgress('A request with this Idempotency-Key is still running');
  }
}

/**
 * Holds seats for an admitted user. The queue token must be this user's and this concert's; the
 * room checks admission, the session, the per-user cap and every seat, all or nothing.
 */
export async function holdSeats(
  deps: { room: RoomStub },
  input: { userId: string; claims: QueueClaims; concertId: string; seatNumbers: number[]; claim?: IdempotencyClaim | undefined },
): Promise<{ body: string }> {
  const { claims } = input;
  if (claims.userId !== input.userId) throw queueTokenMismatch('The queue token belongs to another user');
  if (claims.concertId !== input.concertId) throw queueTokenMismatch('The queue token is for another concert');
  const result = await deps.room.hold({
    userId: input.userId,
    seq: claims.seq,
    jti: claims.jti,
    seatNumbers: input.seatNumbers,
    ...(input.claim ? { claim: input.claim } : {}),
  });
  if (!result.ok) throw holdError(result, input.concertId);
  // The room's serialization of the 201 answer, which its idempotency record (if any) holds too.
  return { body: result.body };
}

/** A reservation as its owner sees it; anyone else gets 404, not 403, so ids reveal nothing. */
export async function readReservation(sql: Sql, userId: string, reservationId: string): Promise<Omit<ReservationView, 'userId'>> {
  const reservation = await findReservation(sql, reservationId);
  if (!reservation || reservation.userId !== userId) throw reservationNotFound(reservationId);
  const { userId: _owner, ...view } = reservation;
  return view;
}

/** Cancels the owner's hold, freeing its seats in Postgres and in the room. */
const refundRefused = {
  RESERVATION_NOT_PAID: () => new AppError(409, 'RESERVATION_NOT_PAID', 'Not paid', 'Only a paid reservation can be refunded'),
  REFUND_DEADLINE_PASSED: () =>
    new AppError(409, 'REFUND_DEADLINE_PASSED', 'Refund deadline passed', 'Refunds for this concert closed before the show'),
};

/**
 * Refunds a paid reservation to points (issue 13): by its owner (`userId`, less the concert's fee,
 * before its cut-off) or by an admin (`userId` null: any reservation, no fee, any time). Anyone
 * else's reservation is 404, as for reads. Refunding again answers with the same refund.
 */
export async function refundPaidReservation(
  deps: { sql: Sql; roomFor: (concertId: string) => RoomStub },
  userId: string | null,
  reservationId: string,
): Promise<{ reservationId: string; status: 'refunded'; refunded: number; fee: number; balance: number; refundedAt: string }> {
  const reservation = await findReservation(deps.sql, reservationId);
  if (!reservation || (userId !== null && reservation.userId !== userId)) throw reservationNotFound(reservationId);
  if (reservation.status !== 'confirmed' && reservation.status !== 'refunded') throw refundRefused.RESERVATION_NOT_PAID();
  const result = await deps.roomFor(reservation.concertId).refund({ reservationId, userId, byAdmin: userId === null });
  if (result.ok) {
    const { refunded, fee, balance, refundedAt } = result;
    return { reservationId, status: 'refunded', refunded, fee, balance, refundedAt };
  }
  switch (result.reason) {
    case 'RESERVATION_NOT_PAID':
    case 'REFUND_DEADLINE_PASSED':
      throw refundRefused[result.reason]();
    case 'BALANCE_LIMIT':
      throw new AppError(422, 'BALANCE_LIMIT', 'Balance limit', 'The refund would take the balance past its cap of 1,000,000,000');
    case 'REQUEST_IN_PROGRESS':
      throw requestInProgress('The reservation is still being written; retry shortly');
    case 'DEPENDENCY_UNAVAILABLE':
      throw dependencyUnavailable('Postgres');
    case 'CONCERT_NOT_FOUND':
    case 'RESERVATION_NOT_FOUND':
      throw reservationNotFound(reservationId);
  }
}

export async function cancelReservation(deps: { sql: Sql; roomFor: (concertId: string) => RoomStub }, userId: string, reservationId: string) {
  const reservation = await findReservation(deps.sql, reservationId);
  if (!reservation || reservation.userId !== userId) throw reservationNotFound(reservationId);
  if (reservation.status === 'cancelled' || reservation.status === 'refunded') return;
  if (reservation.status === 'confirmed') throw alreadyPaid();
  if (reservation.status === 'expired') throw reservationExpired();
  const result = await deps.roomFor(reservation.concertId).cancel(userId, reservationId);
  if (result.ok) return;
  switch (result.reason) {
    case 'ALREADY_PAID':
      throw alreadyPaid();
    case 'RESERVATION_EXPIRED':
      throw reservationExpired();
    case 'REQUEST_IN_PROGRESS':
      throw requestInProgress('The hold is still being written; retry shortly');
    case 'CONCERT_NOT_FOUND':
    case 'RESERVATION_NOT_FOUND':
      throw reservationNotFound(reservationId);
  }
}
