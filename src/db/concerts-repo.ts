import { and, asc, eq, gte, lte, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { Pool } from '@neondatabase/serverless';
import type { HttpDb } from './http.ts';
import { concerts } from './schema.ts';
import type * as schema from './schema.ts';
import type { SeatSource } from '../durable-objects/concert-room/seats.ts';

export type ConcertRow = typeof concerts.$inferSelect;

/** Any drizzle client of the app's schema: neon-http in Worker routes, neon-serverless on a pool. */
export type ReadDb = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface NewConcert {
  title: string;
  venue: string;
  date: string;
  startsAt: Date;
  salesOpenAt: Date;
  queueConfig: Record<string, unknown>;
  sections: { name: string; count: number; price: number }[];
}

/**
 * Inserts a concert and all its seats in one transaction: one HTTP batch (neon-http has no
 * interactive transactions, so the concert's id is made here rather than read back before the seats
 * are written). Seat numbers run 1..N across sections in the order given.
 */
export async function insertConcert(db: HttpDb, input: NewConcert): Promise<ConcertRow> {
  const id = crypto.randomUUID();
  const seatCount = input.sections.reduce((sum, s) => sum + s.count, 0);
  const insert = db
    .insert(concerts)
    .values({
      id,
      title: input.title,
      venue: input.venue,
      date: input.date,
      startsAt: input.startsAt,
      salesOpenAt: input.salesOpenAt,
      seatCount,
      queueConfig: input.queueConfig,
    })
    .returning();
  // One set-based insert per section: a 100k-seat venue is a handful of statements, not 100k.
  let first = 1;
  const seatInserts = input.sections.map((section) => {
    const statement = db.execute(sql`
      INSERT INTO seats (concert_id, seat_number, section, price)
      SELECT ${id}::uuid, n, ${section.name}, ${section.price}
        FROM generate_series(${first}::int, ${first + section.count - 1}::int) AS n`);
    first += section.count;
    return statement;
  });
  const [[concert]] = await db.batch([insert, ...seatInserts]);
  if (!concert) throw new Error('concert insert returned no row');
  return concert;
}

export async function findConcert(db: ReadDb, id: string): Promise<ConcertRow | undefined> {
  const [row] = await db.select().from(concerts).where(eq(concerts.id, id));
  return row;
}

/** Concerts on `from`..`to` inclusive (dates as YYYY-MM-DD), by date then start; uses concerts_date_idx. */
export async function listConcertsByDate(db: ReadDb, from: string, to: string, limit: number): Promise<ConcertRow[]> {
  return db
    .select()
    .from(concerts)
    .where(and(gte(concerts.date, from), lte(concerts.date, to)))
    .orderBy(asc(concerts.date), asc(concerts.startsAt), asc(concerts.id))
    .limit(limit);
}

/** A reservation that still owns its seats (held or confirmed). */
export interface LiveReservation {
  id: string;
  userId: string;
  status: 'held' | 'confirmed';
  amount: number;
  expiresAt: number;
  createdAt: number;
}

export interface RoomSource {
  salesOpenAt: number;
  queueConfig: Record<string, unknown>;
  seats: SeatSource[];
  reservations: LiveReservation[];
}

/**
 * Everything a ConcertRoom starts from: the concert's opening time and settings, and each seat with
 * its live reservation, if any. Raw SQL over the pool: the room keeps its own long-lived pool.
 */
export async function loadRoomSource(pool: Pool, concertId: string): Promise<RoomSource | undefined> {
  const concert = await pool.query<{ sales_open_at: Date; queue_config: Record<string, unknown> }>(
    `SELECT sales_open_at, queue_config FROM concerts WHERE id = $1`,
    [concertId],
  );
  const row = concert.rows[0];
  if (!row) return undefined;
  const seatRows = await pool.query<{
    id: string;
    seat_number: number;
    section: string;
    price: number;
    status: SeatSource['status'];
    reservation_id: string | null;
  }>(
    `SELECT s.id, s.seat_number, s.section, s.price, s.status, rs.reservation_id
       FROM seats s
       LEFT JOIN reservation_seats rs ON rs.seat_id = s.id AND rs.active
      WHERE s.concert_id = $1
      ORDER BY s.seat_number`,
    [concertId],
  );
  const reservationRows = await pool.query<{
    id: string;
    user_id: string;
    status: 'held' | 'confirmed';
    amount: number;
    expires_at: Date;
    created_at: Date;
  }>(
    `SELECT id, user_id, status, amount, expires_at, created_at FROM reservations
      WHERE concert_id = $1 AND status IN ('held', 'confirmed')`,
    [concertId],
  );
  return {
    salesOpenAt: row.sales_open_at.getTime(),
    reservations: reservationRows.rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      status: r.status,
      amount: r.amount,
      expiresAt: r.expires_at.getTime(),
      createdAt: r.created_at.getTime(),
    })),
    queueConfig: row.queue_config,
    seats: seatRows.rows.map((s) => ({
      id: Number(s.id),
      seatNumber: s.seat_number,
      section: s.section,
      price: s.price,
      status: s.status,
      reservationId: s.reservation_id,
    })),
  };
}
