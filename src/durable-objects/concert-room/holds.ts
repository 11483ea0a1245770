// Seat holds: synchronous decisions over the room's SQLite. A hold is decided and its seats marked
// in one transactionSync, before any await, so two requests for one seat can never both pass.
import type { LineRow } from './line.ts';

/** Seats one user may hold or own per concert (DESIGN.md §3). */
export const MAX_SEATS_PER_USER = 4;

export type HoldStatus = 'pending' | 'held' | 'confirmed' | 'expired' | 'cancelled' | 'refunded';

export interface HeldSeat {
  seatNumber: number;
  seatId: number;
  section: string;
  price: number;
}

export interface HoldRequest {
  userId: string;
  seq: number;
  jti: string;
  seatNumbers: readonly number[];
  holdSeconds: number;
  now: number;
  /** The line has sold out (the room's latch): seats that come back are the waitlist's, not the line's. */
  soldOut?: boolean;
}

export type HoldDecision =
  | { ok: true; reservationId: string; seats: HeldSeat[]; amount: number; expiresAt: number }
  | { ok: false; reason: 'NOT_ADMITTED'; detail: string }
  | { ok: false; reason: 'SEAT_NOT_FOUND' | 'SEAT_UNAVAILABLE'; seats: number[] }
  | { ok: false; reason: 'HOLD_LIMIT'; limit: number; owned: number };

/** Seats a user holds or owns here (pending, held or confirmed holds). */
export function seatsOwnedBy(sql: SqlStorage, userId: string): number {
  return sql.exec<{ n: number }>(
    `SELECT COUNT(*) AS n FROM seats s JOIN holds h ON h.reservation_id = s.reservation_id
      WHERE h.user_id = ? AND h.status IN ('pending', 'held', 'confirmed')`,
    userId,
  ).one().n;
}

/**
 * Decides a hold all-or-nothing and, when it passes, marks the seats held under a new reservation
 * id with a 'pending' hold (the Postgres write is still to come). Call inside transactionSync.
 */
export function decideHold(sql: SqlStorage, line: LineRow | undefined, request: HoldRequest): HoldDecision {
  const { now } = request;
  if (!line || line.user_id !== request.userId || line.jti !== request.jti) {
    return { ok: false, reason: 'NOT_ADMITTED', detail: 'This queue token has no place in this line' };
  }
  if (line.status === 'waiting') return { ok: false, reason: 'NOT_ADMITTED', detail: 'You have not been admitted yet' };
  if (line.status !== 'admitted' || line.session_expires_at === null || line.session_expires_at <= now) {
    return { ok: false, reason: 'NOT_ADMITTED', detail: 'Your shopping session has ended' };
  }
  if (request.soldOut) {
    return { ok: false, reason: 'NOT_ADMITTED', detail: 'Sold out: seats that come back are offered through the waitlist (POST /concerts/{id}/waitlist)' };
  }

  const placeholders = request.seatNumbers.map(() => '?').join(', ');
  const found = sql
    .exec<{ seat_number: number; seat_id: number; section: string; price: number; status: string }>(
      `SELECT seat_number, seat_id, section, price, status FROM seats WHERE seat_number IN (${placeholders})`,
      ...request.seatNumbers,
    )
    .toArray();
  const byNumber = new Map(found.map((seat) => [seat.seat_number, seat]));
  const missing = request.seatNumbers.filter((n) => !byNumber.has(n));
  if (missing.length) return { ok: false, reason: 'SEAT_NOT_FOUND', seats: missing };

  const owned = seatsOwnedBy(sql, request.userId);
  if (owned + request.seatNumbers.length > MAX_SEATS_PER_USER) {
    return { ok: false, reason: 'HOLD_LIMIT', limit: MAX_SEATS_PER_USER, owned };
  }

  const taken = found.filter((seat) => seat.status !== 'available').map((seat) => seat.seat_number);
  if (taken.length) return { ok: false, reason: 'SEAT_UNAVAILABLE', seats: taken.sort((a, b) => a - b) };

  const seats = request.seatNumbers.map((n) => {
    const seat = byNumber.get(n)!;
    return { seatNumber: n, seatId: seat.seat_id, section: seat.section, price: seat.price };
  });
  const expiresAt = Math.min(now + request.holdSeconds * 1000, line.session_expires_at);
  return { ok: true, ...placeHold(sql, { userId: request.userId, seq: request.seq, seats, expiresAt, now }) };
}

/** A hold the room has decided and marked: its seats, and the Postgres write still to come. */
export interface PlacedHold {
  reservationId: string;
  seats: HeldSeat[];
  amount: number;
  expiresAt: number;
}

/**
 * Marks `seats` held under a new reservation id with a 'pending' hold of `userId`'s, for a hold
 * already decided (every seat checked available in this same transaction). Shared by fans' own
 * holds and the waitlist's offers. Call inside transactionSync.
 */
export function placeHold(
  sql: SqlStorage,
  hold: { userId: string; seq: number; seats: HeldSeat[]; expiresAt: number; now: number },
): PlacedHold {
  const reservationId = crypto.randomUUID();
  const numbers = hold.seats.map((seat) => seat.seatNumber);
  const amount = hold.seats.reduce((sum, seat) => sum + seat.price, 0);
  sql.exec(
    `UPDATE seats SET status = 'held', reservation_id = ? WHERE seat_number IN (${numbers.map(() => '?').join(', ')})`,
    reservationId,
    ...numbers,
  );
  sql.exec(
    `INSERT INTO holds (reservation_id, user_id, seq, amount, expires_at, status, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
    reservationId,
    hold.userId,
    hold.seq,
    amount,
    hold.expiresAt,
    hold.now,
  );
  return { reservationId, seats: hold.seats, amount, expiresAt: hold.expiresAt };
}

export function holdStatus(sql: SqlStorage, reservationId: string): { status: HoldStatus; userId: string } | undefined {
  const row = sql
    .exec<{ status: HoldStatus; user_id: string }>(`SELECT status, user_id FROM holds WHERE reservation_id = ?`, reservationId)
    .toArray()[0];
  return row ? { status: row.status, userId: row.user_id } : undefined;
}

/** The Postgres write landed: the hold is live and the alarm will expire it. */
export function activateHold(sql: SqlStorage, reservationId: string): void {
  sql.exec(`UPDATE holds SET status = 'held' WHERE reservation_id = ? AND status = 'pending'`, reservationId);
}

/**
 * Ends a hold without a sale: its seats return to the map, but only those still bound to it (a
 * seat is never freed out from under a later reservation).
 */
export function releaseHold(sql: SqlStorage, reservationId: string, status: 'expired' | 'cancelled'): number {
  sql.exec(`UPDATE holds SET status = ? WHERE reservation_id = ? AND status IN ('pending', 'held')`, status, reservationId);
  return sql
    .exec(`UPDATE seats SET status = 'available', reservation_id = NULL WHERE reservation_id = ? AND status = 'held' RETURNING seat_number`, reservationId)
    .toArray().length;
}

/** The hold was paid: its seats are sold for good. */
export function confirmHold(sql: SqlStorage, reservationId: string): boolean {
  // Only a live hold becomes sold: a late word of its payment must not undo a refund (or an end) since.
  const status = sql.exec<{ status: string }>(`SELECT status FROM holds WHERE reservation_id = ?`, reservationId).toArray()[0]?.status;
  if (status === 'confirmed') return true;
  if (status !== 'pending' && status !== 'held') return false;
  sql.exec(`UPDATE holds SET status = 'confirmed' WHERE reservation_id = ?`, reservationId);
  sql.exec(`UPDATE seats SET status = 'sold' WHERE reservation_id = ?`, reservationId);
  return true;
}

/**
 * Postgres refunded the paid hold: its seats return to the map (those still bound to it). The room
 * may still have it held, when the payment's reply was lost and the fan refunded before the room learnt
 * of the payment.
 */
export function refundHold(sql: SqlStorage, reservationId: string): void {
  sql.exec(`UPDATE holds SET status = 'refunded' WHERE reservation_id = ? AND status IN ('pending', 'held', 'confirmed')`, reservationId);
  sql.exec(`UPDATE seats SET status = 'available', reservation_id = NULL WHERE reservation_id = ? AND status IN ('held', 'sold')`, reservationId);
}

/** Live holds whose time is up at `now`. Pending ones are left to the request that made them. */
export function dueHolds(sql: SqlStorage, now: number): string[] {
  return sql
    .exec<{ reservation_id: string }>(`SELECT reservation_id FROM holds WHERE status = 'held' AND expires_at <= ? ORDER BY expires_at`, now)
    .toArray()
    .map((row) => row.reservation_id);
}

/** Whether any hold is pending (one step of the partial index holds_pending). */
export function hasPendingHolds(sql: SqlStorage): boolean {
  return sql.exec(`SELECT 1 FROM holds WHERE status = 'pending' LIMIT 1`).toArray().length > 0;
}

/** Holds whose Postgres write was started and not yet seen through (status 'pending'). */
export function pendingHolds(sql: SqlStorage): { reservationId: string; userId: string; amount: number; expiresAt: number }[] {
  return sql
    .exec<{ reservation_id: string; user_id: string; amount: number; expires_at: number }>(
      `SELECT reservation_id, user_id, amount, expires_at FROM holds WHERE status = 'pending'`,
    )
    .toArray()
    .map((row) => ({ reservationId: row.reservation_id, userId: row.user_id, amount: row.amount, expiresAt: row.expires_at }));
}

export function nextHoldExpiry(sql: SqlStorage): number | null {
  return sql.exec<{ t: number | null }>(`SELECT MIN(expires_at) AS t FROM holds WHERE status = 'held'`).one().t;
}

/** Holds of one user's session, for ending them with it. */
export function liveHoldsOf(sql: SqlStorage, userId: string): string[] {
  return sql
    .exec<{ reservation_id: string }>(`SELECT reservation_id FROM holds WHERE user_id = ? AND status IN ('pending', 'held')`, userId)
    .toArray()
    .map((row) => row.reservation_id);
}
