import { and, asc, eq, gte, lte, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { HttpDb } from './http.ts';
import { concerts } from './schema.ts';
import type * as schema from './schema.ts';

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
  refundFee: number;
  refundCutoffHours: number;
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
      refundFee: input.refundFee,
      refundCutoffHours: input.refundCutoffHours,
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
