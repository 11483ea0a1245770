import type { Sql } from './http.ts';
import type { ReservationState } from './reservations-repo.ts';

/** One of a fan's reservations with its concert and what a refund would cost (My tickets). */
export interface TicketView {
  reservationId: string;
  concert: { id: string; title: string; venue: string; date: string; startsAt: string };
  status: ReservationState;
  amount: number;
  seats: { seatNumber: number; section: string; price: number }[];
  createdAt: string;
  expiresAt: string;
  confirmedAt: string | null;
  refundedAt: string | null;
  /** The owner's refund terms: the fee kept, until when, and whether a refund is possible now (Postgres's clock). */
  refund: { fee: number; until: string; allowed: boolean };
}

type TicketRecord = {
  id: string;
  concert_id: string;
  title: string;
  venue: string;
  date: string;
  starts_at: Date;
  status: ReservationState;
  amount: number;
  seats: TicketView['seats'] | null;
  created_at: Date;
  expires_at: Date;
  confirmed_at: Date | null;
  refunded_at: Date | null;
  fee: number;
  refund_until: Date;
  refund_open: boolean;
};

/**
 * A user's reservations, newest first, over `reservations_user_created_idx`; each with its seats
 * (the links, active or not, so a refunded ticket still says which seats it was) and the refund
 * terms computed exactly as `refundReservation` applies them: fee `LEAST(refund_fee, amount)`, open
 * while `now() < starts_at - refund_cutoff_hours`.
 */
export async function listTicketsOf(sql: Sql, userId: string, limit: number): Promise<TicketView[]> {
  const rows = (await sql.query(
    `SELECT r.id, r.concert_id, c.title, c.venue, c.date::text AS date, c.starts_at, r.status, r.amount,
            r.created_at, r.expires_at, r.confirmed_at, r.refunded_at,
            LEAST(c.refund_fee, r.amount) AS fee,
            c.starts_at - make_interval(hours => c.refund_cutoff_hours) AS refund_until,
            now() < c.starts_at - make_interval(hours => c.refund_cutoff_hours) AS refund_open,
            (SELECT json_agg(json_build_object('seatNumber', s.seat_number, 'section', s.section, 'price', s.price) ORDER BY s.seat_number)
               FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id WHERE rs.reservation_id = r.id) AS seats
       FROM reservations r JOIN concerts c ON c.id = r.concert_id
      WHERE r.user_id = $1
      ORDER BY r.created_at DESC
      LIMIT $2`,
    [userId, limit],
  )) as TicketRecord[];
  return rows.map((row) => ({
    reservationId: row.id,
    concert: { id: row.concert_id, title: row.title, venue: row.venue, date: row.date, startsAt: row.starts_at.toISOString() },
    status: row.status,
    amount: row.amount,
    seats: row.seats ?? [],
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    confirmedAt: row.confirmed_at?.toISOString() ?? null,
    refundedAt: row.refunded_at?.toISOString() ?? null,
    refund: { fee: row.fee, until: row.refund_until.toISOString(), allowed: row.status === 'confirmed' && row.refund_open },
  }));
}
