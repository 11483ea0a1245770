import type { Pool } from '@neondatabase/serverless';
import { withTransaction } from './transaction.ts';

export interface NewHold {
  reservationId: string;
  concertId: string;
  userId: string;
  amount: number;
  expiresAt: number;
  seatIds: readonly number[];
}

/** Postgres refused a hold the room allowed: another live reservation owns one of the seats. */
export class SeatConflictError extends Error {
  override name = 'SeatConflictError';
}

/**
 * Writes a hold: the reservation, its seats (the partial unique index allows one live reservation
 * per seat) and the seats' status, in one transaction. Throws SeatConflictError when Postgres
 * already has any of the seats taken.
 */
export async function insertHold(pool: Pool, hold: NewHold): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO reservations (id, concert_id, user_id, status, amount, expires_at) VALUES ($1, $2, $3, 'held', $4, $5)`,
      [hold.reservationId, hold.concertId, hold.userId, hold.amount, new Date(hold.expiresAt)],
    );
    const marked = await client.query(
      `UPDATE seats SET status = 'held' WHERE id = ANY($1::bigint[]) AND concert_id = $2 AND status = 'available'`,
      [hold.seatIds, hold.concertId],
    );
    if (marked.rowCount !== hold.seatIds.length) throw new SeatConflictError('a seat is not available in Postgres');
    try {
      await client.query(
        `INSERT INTO reservation_seats (reservation_id, seat_id, active) SELECT $1, unnest($2::bigint[]), true`,
        [hold.reservationId, hold.seatIds],
      );
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new SeatConflictError('a seat has a live reservation', { cause: error });
      throw error;
    }
  });
}

export type ReservationState = 'held' | 'confirmed' | 'expired' | 'cancelled';

/**
 * Ends the given holds that are still `held` (expiry or cancellation), frees their seats, and
 * reports every reservation's state afterwards so the room can follow Postgres exactly.
 */
export async function endHolds(
  pool: Pool,
  reservationIds: readonly string[],
  to: 'expired' | 'cancelled',
  onlyUserId?: string,
): Promise<Map<string, ReservationState>> {
  if (reservationIds.length === 0) return new Map();
  return withTransaction(pool, async (client) => {
    const ended = await client.query<{ id: string }>(
      `UPDATE reservations SET status = $2
        WHERE id = ANY($1::uuid[]) AND status = 'held' AND ($3::text IS NULL OR user_id = $3)
        RETURNING id`,
      [reservationIds, to, onlyUserId ?? null],
    );
    const endedIds = ended.rows.map((row) => row.id);
    if (endedIds.length) {
      const freed = await client.query<{ seat_id: string }>(
        `UPDATE reservation_seats SET active = false WHERE reservation_id = ANY($1::uuid[]) AND active RETURNING seat_id`,
        [endedIds],
      );
      await client.query(`UPDATE seats SET status = 'available' WHERE id = ANY($1::bigint[]) AND status = 'held'`, [
        freed.rows.map((row) => row.seat_id),
      ]);
    }
    const states = await client.query<{ id: string; status: ReservationState }>(
      `SELECT id, status FROM reservations WHERE id = ANY($1::uuid[])`,
      [reservationIds],
    );
    return new Map(states.rows.map((row) => [row.id, row.status]));
  });
}

export interface ReservationView {
  reservationId: string;
  concertId: string;
  userId: string;
  status: ReservationState;
  amount: number;
  expiresAt: string;
  createdAt: string;
  confirmedAt: string | null;
  seats: { seatNumber: number; section: string; price: number }[];
}

/** One reservation with its seats, or undefined. Ownership is the caller's check. */
export async function findReservation(pool: Pool, reservationId: string): Promise<ReservationView | undefined> {
  const result = await pool.query<{
    id: string;
    concert_id: string;
    user_id: string;
    status: ReservationState;
    amount: number;
    expires_at: Date;
    created_at: Date;
    confirmed_at: Date | null;
    seats: { seatNumber: number; section: string; price: number }[] | null;
  }>(
    `SELECT r.id, r.concert_id, r.user_id, r.status, r.amount, r.expires_at, r.created_at, r.confirmed_at,
            (SELECT json_agg(json_build_object('seatNumber', s.seat_number, 'section', s.section, 'price', s.price) ORDER BY s.seat_number)
               FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id WHERE rs.reservation_id = r.id) AS seats
       FROM reservations r WHERE r.id = $1`,
    [reservationId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    reservationId: row.id,
    concertId: row.concert_id,
    userId: row.user_id,
    status: row.status,
    amount: row.amount,
    expiresAt: row.expires_at.toISOString(),
    createdAt: row.created_at.toISOString(),
    confirmedAt: row.confirmed_at?.toISOString() ?? null,
    seats: row.seats ?? [],
  };
}
