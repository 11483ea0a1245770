// Loads the seed's data: 30 concerts on consecutive days from today, 50 seats each at 500 points,
// sales open now. `npm run db:seed`; also run by `npm run dev`.
import pg from 'pg';

/** Shape of the seed data. @default 30 concerts × 50 seats at 500 */
export interface SeedOptions {
  concerts?: number;
  seatsPerConcert?: number;
  price?: number;
}

/**
 * Inserts the seed concerts and their seats. Re-runnable: ids derive from the concert's date, so a
 * second run on the same day adds nothing. An id is the MD5 of the date with the version nibble set to
 * 8 (RFC 9562 "custom") and the variant bits to 10: a bare md5(...)::uuid is not an RFC UUID, and the
 * API's id validation answered 400 for every seeded concert. One transaction: a failure leaves no
 * half-seeded concert.
 * @returns how many concerts were inserted.
 */
export async function seed(databaseUrl: string, options: SeedOptions = {}): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await seedWith(async (text, values) => (await client.query<pg.QueryResultRow>(text, values)).rows, options);
  } finally {
    await client.end();
  }
}

/** {@link seed} over a connection the caller owns (`query` runs one statement on it). */
export async function seedWith(query: (text: string, values?: unknown[]) => Promise<pg.QueryResultRow[]>, options: SeedOptions = {}): Promise<number> {
  const concerts = options.concerts ?? 30;
  const seatsPerConcert = options.seatsPerConcert ?? 50;
  const price = options.price ?? 500;
  await query('BEGIN');
  try {
    const inserted = await query(
      `INSERT INTO concerts (id, title, venue, date, starts_at, sales_open_at, seat_count)
       SELECT overlay(overlay(h placing '8' from 13 for 1)
                      placing translate(substr(h, 17, 1), '0123456789abcdef', '89ab89ab89ab89ab') from 17 for 1)::uuid,
              'Frontrow Live #' || (n + 1),
              'Frontrow Hall',
              d::date,
              d::date + time '20:00' AT TIME ZONE 'UTC',
              now(),
              $2
         FROM generate_series(0, $1 - 1) AS n,
              LATERAL (SELECT current_date + n AS d) AS day,
              LATERAL (SELECT md5('frontrow-seed:' || d::date) AS h) AS hash
       ON CONFLICT (id) DO NOTHING
       RETURNING id`,
      [concerts, seatsPerConcert],
    );
    const ids = inserted.map((row) => row.id as string);
    if (ids.length > 0) {
      await query(
        `INSERT INTO seats (concert_id, seat_number, section, price)
         SELECT c.id, s, 'general', $3
           FROM unnest($1::uuid[]) AS c(id), generate_series(1, $2) AS s`,
        [ids, seatsPerConcert, price],
      );
    }
    await query('COMMIT');
    return ids.length;
  } catch (error) {
    await query('ROLLBACK');
    throw error;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error('db:seed: set DATABASE_URL (npm run dev sets it for its own throwaway database)');
    process.exit(2);
  }
  const count = await seed(databaseUrl);
  console.log(`db:seed: ${count} concerts inserted`);
}
