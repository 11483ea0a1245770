import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/client.ts';
import { isPostgresUnavailable, isUniqueViolation, sqlState } from '../../src/db/errors.ts';
import { createHttpDb, createSql } from '../../src/db/http.ts';
import { concerts } from '../../src/db/schema.ts';
import { inTransaction, withClient } from '../../src/db/transaction.ts';
import { uniqueId } from '../helpers/api.ts';
import { dayFromNow } from '../helpers/concerts.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { directQuery } from '../helpers/postgres.ts';

/** Resolves with what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

const balanceRow = (userId: string) => directQuery<{ amount: string }>('SELECT amount FROM balances WHERE user_id = $1', [userId]);

afterEach(async () => {
  await clearFault('neon');
});

describe('Neon HTTP endpoint (the real driver through the local adapter)', () => {
  it('parses int, text, bool, timestamptz and numeric with the driver’s own type parsers', async () => {
    const sql = createSql(env);
    const rows = await sql`SELECT 42::int AS i, ${'héllo'}::text AS t, true AS b,
                                  '2026-12-01T20:00:00Z'::timestamptz AS ts, 12.50::numeric AS n, 2.5::float8 AS f`;
    expect(rows).toEqual([{ i: 42, t: 'héllo', b: true, ts: new Date('2026-12-01T20:00:00Z'), n: '12.50', f: 2.5 }]);
  });

  it('returns nulls as null, in both directions', async () => {
    const sql = createSql(env);
    const rows = await sql`SELECT NULL::int AS a, ${null}::text AS b, ${null}::int IS NULL AS was_null`;
    expect(rows).toEqual([{ a: null, b: null, was_null: true }]);
  });

  it('keeps bigint exact as text and accepts it as a parameter', async () => {
    const sql = createSql(env);
    const rows = await sql`SELECT 9007199254740993::bigint AS big, ${'9007199254740993'}::bigint + 1 AS next`;
    expect(rows).toEqual([{ big: '9007199254740993', next: '9007199254740994' }]);
  });

  it('round-trips jsonb objects and arrays', async () => {
    const sql = createSql(env);
    const value = { a: 1, b: [true, null, 'x'], c: { d: 'é' } };
    const rows = await sql`SELECT ${JSON.stringify(value)}::jsonb AS j, '[1,2]'::jsonb AS k`;
    expect(rows).toEqual([{ j: value, k: [1, 2] }]);
  });

  it('parses Postgres arrays and takes JS arrays as parameters', async () => {
    const sql = createSql(env);
    const rows = await sql`SELECT ARRAY[1, 2, 3]::int[] AS ints, ARRAY['a', NULL, 'c, d']::text[] AS texts,
                                  ${[4, 5]}::int[] AS param, cardinality(${['x', 'y', 'z']}::text[]) AS n`;
    expect(rows).toEqual([{ ints: [1, 2, 3], texts: ['a', null, 'c, d'], param: [4, 5], n: 3 }]);
  });

  it('answers in array mode, and with full results (command, rowCount, fields)', async () => {
    const sql = createSql(env);
    expect(await sql.query('SELECT 1 AS a, $1::text AS a', ['two'], { arrayMode: true })).toEqual([[1, 'two']]);
    const full = await sql.query('SELECT n FROM generate_series(1, 3) AS n', [], { fullResults: true });
    expect(full.command).toBe('SELECT');
    expect(full.rowCount).toBe(3);
    expect(full.rows).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(full.fields.map((field) => [field.name, field.dataTypeID])).toEqual([['n', 23]]);
  });

  it('runs drizzle neon-http queries', async () => {
    const showDay = dayFromNow(30);
    const db = createHttpDb(env);
    const title = uniqueId('http');
    const [created] = await db
      .insert(concerts)
      .values({
        title,
        venue: 'HTTP Hall',
        date: showDay,
        startsAt: new Date(`${showDay}T20:00:00Z`),
        salesOpenAt: new Date(Date.now() - 60_000),
        seatCount: 3,
      })
      .returning();
    expect(created?.startsAt.toISOString()).toBe(`${showDay}T20:00:00.000Z`);
    const found = await db.query.concerts.findFirst({ where: (c, { eq }) => eq(c.title, title) });
    expect(found?.id).toBe(created?.id);
    expect(found?.date).toBe(showDay);
    expect(found?.startsAt).toEqual(new Date(`${showDay}T20:00:00Z`));
  });

  it('leaves the global type parsers alone: raw queries still get Dates after drizzle was made', async () => {
    createHttpDb(env);
    const sql = createSql(env);
    const [row] = await sql`SELECT '2026-12-01T20:00:00Z'::timestamptz AS ts`;
    expect(row?.ts).toEqual(new Date('2026-12-01T20:00:00Z'));
    const [batched] = await sql.transaction([sql`SELECT '2026-12-01T20:00:00Z'::timestamptz AS ts`]);
    expect(batched).toEqual([{ ts: new Date('2026-12-01T20:00:00Z') }]);
  });

  it('commits a batch together and returns one result per statement', async () => {
    const sql = createSql(env);
    const userId = uniqueId('batch');
    const [inserted, updated] = await sql.transaction([
      sql`INSERT INTO balances (user_id, amount) VALUES (${userId}, 5) RETURNING amount`,
      sql`UPDATE balances SET amount = amount + 1 WHERE user_id = ${userId} RETURNING amount`,
    ]);
    expect(inserted).toEqual([{ amount: '5' }]);
    expect(updated).toEqual([{ amount: '6' }]);
    expect(await balanceRow(userId)).toEqual([{ amount: '6' }]);
  });

  it('rolls a batch back whole when its last statement fails', async () => {
    const sql = createSql(env);
    const userId = uniqueId('rollback');
    const error = await rejection(
      sql.transaction([
        sql`INSERT INTO balances (user_id, amount) VALUES (${userId}, 5)`,
        sql`UPDATE balances SET amount = amount + 1 WHERE user_id = ${userId}`,
        sql`UPDATE balances SET amount = -1 WHERE user_id = ${userId}`, // violates the CHECK
      ]),
    );
    expect(sqlState(error)).toBe('23514');
    expect(await balanceRow(userId)).toEqual([]);
  });

  it('reports a unique violation with its SQLSTATE and the Postgres error fields, classified as such', async () => {
    const sql = createSql(env);
    const userId = uniqueId('unique');
    await sql`INSERT INTO balances (user_id) VALUES (${userId})`;
    const error = await rejection(sql`INSERT INTO balances (user_id) VALUES (${userId})`);
    expect(error).toMatchObject({ name: 'NeonDbError', code: '23505', constraint: 'balances_pkey', table: 'balances', severity: 'ERROR' });
    expect(isUniqueViolation(error)).toBe(true);
    expect(isPostgresUnavailable(error)).toBe(false);
    // Through drizzle too (it wraps the driver's error).
    const viaDrizzle = await rejection(createHttpDb(env).execute(`INSERT INTO balances (user_id) VALUES ('${userId}')`));
    expect(isUniqueViolation(viaDrizzle)).toBe(true);
  });

  it('applies the batch headers: a read-only batch refuses a write, isolation and deferrable are set', async () => {
    const sql = createSql(env);
    const userId = uniqueId('readonly');
    const error = await rejection(sql.transaction([sql`INSERT INTO balances (user_id) VALUES (${userId})`], { readOnly: true }));
    expect(sqlState(error)).toBe('25006');
    expect(await balanceRow(userId)).toEqual([]);
    const [isolation, readOnly, deferrable] = await sql.transaction(
      [sql`SHOW transaction_isolation`, sql`SHOW transaction_read_only`, sql`SHOW transaction_deferrable`],
      { isolationLevel: 'Serializable', readOnly: true, deferrable: true },
    );
    expect([isolation, readOnly, deferrable]).toEqual([
      [{ transaction_isolation: 'serializable' }],
      [{ transaction_read_only: 'on' }],
      [{ transaction_deferrable: 'on' }],
    ]);
    const [defaults] = await sql.transaction([sql`SHOW transaction_isolation`]);
    expect(defaults).toEqual([{ transaction_isolation: 'read committed' }]);
  });

  it('runs one statement per query, as Neon does', async () => {
    const sql = createSql(env);
    const error = await rejection(sql.query('SELECT 1; SELECT 2'));
    expect(sqlState(error)).toBe('42601');
  });
});

describe('Neon HTTP endpoint under faults', () => {
  it('refuse: the query fails at once and counts as Postgres unavailable', async () => {
    const sql = createSql(env);
    await setFault('neon', 'refuse');
    const error = await rejection(sql`SELECT 1`);
    expect(isPostgresUnavailable(error)).toBe(true);
  });

  it('drop: the query never gets an answer, times out, and counts as Postgres unavailable', async () => {
    const sql = createSql(env);
    await setFault('neon', 'drop');
    const startedAt = Date.now();
    const error = await rejection(sql.query('SELECT 1', [], { fetchOptions: { signal: AbortSignal.timeout(300) } }));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    expect(isPostgresUnavailable(error)).toBe(true);
  });

  it('drop: the driver’s own deadline ends a query that never gets an answer', async () => {
    const sql = createSql(env);
    await setFault('neon', 'drop');
    const error = await rejection(sql`SELECT 1`);
    expect(String((error as Error).message)).toMatch(/Error connecting to database/);
    expect(isPostgresUnavailable(error)).toBe(true);
  });

  it('counts the fetch deadline’s own TimeoutError as unavailable: the driver passes it on unwrapped when it fires during the body', async () => {
    const signal = AbortSignal.timeout(1);
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
    const deadline: unknown = signal.reason;
    expect(deadline).toMatchObject({ name: 'TimeoutError' });
    expect(isPostgresUnavailable(deadline)).toBe(true);
    expect(isPostgresUnavailable(new Error('room load failed', { cause: deadline }))).toBe(true);
    expect(isPostgresUnavailable(new Error('some other failure'))).toBe(false);
  });

  it('delay: the answer comes, late', async () => {
    const sql = createSql(env);
    await setFault('neon', 'delay', 300);
    const startedAt = Date.now();
    expect(await sql`SELECT 7 AS n`).toEqual([{ n: 7 }]);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
  });

  it('cut-replies: the INSERT commits though the caller only sees an error', async () => {
    const sql = createSql(env);
    const userId = uniqueId('cut');
    await setFault('neon', 'cut-replies');
    const error = await rejection(sql`INSERT INTO balances (user_id, amount) VALUES (${userId}, 9)`);
    expect(isPostgresUnavailable(error)).toBe(true);
    await clearFault('neon');
    expect(await balanceRow(userId)).toEqual([{ amount: '9' }]);
  });

  it('cut-replies with a match: only the matching request loses its reply', async () => {
    const sql = createSql(env);
    const userId = uniqueId('cut-match');
    await setFault('neon', 'cut-replies', { match: userId });
    expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    const error = await rejection(sql.transaction([sql`INSERT INTO balances (user_id, amount) VALUES (${userId}, 3)`]));
    expect(isPostgresUnavailable(error)).toBe(true);
    await clearFault('neon');
    expect(await balanceRow(userId)).toEqual([{ amount: '3' }]);
  });
});

describe('Neon WebSocket proxy under cut-replies', () => {
  it('commits a transaction whose COMMIT reply is lost; the caller sees a connection error', async () => {
    const pool = createPool(env, { max: 1 });
    const userId = uniqueId('ws-cut');
    try {
      const error = await rejection(
        withClient(pool, async (client) => {
          await setFault('neon', 'cut-replies', { match: 'COMMIT' });
          await inTransaction(client, async (tx) => {
            await tx.query('INSERT INTO balances (user_id, amount) VALUES ($1, 4)', [userId]);
          });
        }),
      );
      expect(isPostgresUnavailable(error)).toBe(true);
      await clearFault('neon');
      expect(await balanceRow(userId)).toEqual([{ amount: '4' }]);
    } finally {
      await clearFault('neon');
      await pool.end().catch(() => undefined);
    }
  });
});
