import type { SeatSource } from '../durable-objects/concert-room/seats.ts';
import type { Sql } from './http.ts';

/** A reservation that still owns its seats (held or confirmed). */
export interface LiveReservation {
  id: string;
  userId: string;
  status: 'held' | 'confirmed';
  amount: number;
  expiresAt: number;
  createdAt: number;
}

/** What the API shows of a concert; the room keeps it so that reads never need Postgres. */
export interface ConcertSummary {
  id: string;
  title: string;
  venue: string;
  date: string;
  startsAt: string;
  salesOpenAt: string;
  seatCount: number;
}

export interface RoomSource {
  concert: ConcertSummary;
  salesOpenAt: number;
  queueConfig: Record<string, unknown>;
  seats: SeatSource[];
  reservations: LiveReservation[];
}

type ConcertRecord = {
  id: string;
  title: string;
  venue: string;
  date: string;
  starts_at: Date;
  sales_open_at: Date;
  seat_count: number;
  queue_config: Record<string, unknown>;
};
type SeatRecord = { id: string; seat_number: number; section: string; price: number; status: SeatSource['status']; reservation_id: string | null };
type ReservationRecord = { id: string; user_id: string; status: 'held' | 'confirmed'; amount: number; expires_at: Date; created_at: Date };

/**
 * A concert's live reservations ($1: its id). Served by reservations_concert_live_idx, which holds
 * only live ones: a rush leaves many times more expired and cancelled holds than seats, and every
 * reconciliation reads this.
 */
export const LIVE_RESERVATIONS_SQL = `SELECT id, user_id, status, amount, expires_at, created_at FROM reservations
  WHERE concert_id = $1 AND status IN ('held', 'confirmed')`;

/**
 * Everything a ConcertRoom starts from, in one read-only HTTP batch (one consistent snapshot, one
 * fetch, no connection of the room's own): the concert, each seat with its live reservation, and
 * the live reservations. Undefined when there is no such concert.
 */
export async function loadRoomSource(sql: Sql, concertId: string): Promise<RoomSource | undefined> {
  const [concerts, seats, reservations] = (await sql.transaction(
    [
      sql.query(
        `SELECT id, title, venue, date::text AS date, starts_at, sales_open_at, seat_count, queue_config FROM concerts WHERE id = $1`,
        [concertId],
      ),
      sql.query(
        `SELECT s.id, s.seat_number, s.section, s.price, s.status, rs.reservation_id
           FROM seats s
           LEFT JOIN reservation_seats rs ON rs.seat_id = s.id AND rs.active
          WHERE s.concert_id = $1
          ORDER BY s.seat_number`,
        [concertId],
      ),
      sql.query(LIVE_RESERVATIONS_SQL, [concertId]),
    ],
    { readOnly: true, isolationLevel: 'RepeatableRead' },
  )) as [ConcertRecord[], SeatRecord[], ReservationRecord[]];
  const row = concerts[0];
  if (!row) return undefined;
  return {
    concert: {
      id: row.id,
      title: row.title,
      venue: row.venue,
      date: row.date,
      startsAt: row.starts_at.toISOString(),
      salesOpenAt: row.sales_open_at.toISOString(),
      seatCount: row.seat_count,
    },
    salesOpenAt: row.sales_open_at.getTime(),
    queueConfig: row.queue_config,
    seats: seats.map((s) => ({
      id: Number(s.id),
      seatNumber: s.seat_number,
      section: s.section,
      price: s.price,
      status: s.status,
      reservationId: s.reservation_id,
    })),
    reservations: reservations.map((r) => ({
      id: r.id,
      userId: r.user_id,
      status: r.status,
      amount: r.amount,
      expiresAt: r.expires_at.getTime(),
      createdAt: r.created_at.getTime(),
    })),
  };
}
