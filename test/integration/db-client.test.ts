import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/client.ts';
import { sqlState } from '../../src/db/errors.ts';
import { concerts } from '../../src/db/schema.ts';
import { dayFromNow } from '../helpers/concerts.ts';
import { directQuery } from '../helpers/postgres.ts';

const showDay = dayFromNow(30);

describe('db client (Neon driver through the WebSocket adapter)', () => {
  it('writes a row that a direct Postgres connection reads back', async () => {
    const pool = createPool(env);
    try {
      const db = createDb(pool);
      const title = `Round trip ${crypto.randomUUID()}`;
      const [created] = await db
        .insert(concerts)
        .values({
          title,
          venue: 'Test Hall',
          date: showDay,
          startsAt: new Date(`${showDay}T20:00:00Z`),
          salesOpenAt: new Date(Date.now() - 60_000),
          seatCount: 10,
        })
        .returning();
      expect(created?.id).toMatch(/^[0-9a-f-]{36}$/);

      const rows = await directQuery<{ title: string; date: string; seat_count: number }>(
        `SELECT title, to_char(date, 'YYYY-MM-DD') AS date, seat_count FROM concerts WHERE id = $1`,
        [created!.id],
      );
      expect(rows).toEqual([{ title, date: showDay, seat_count: 10 }]);

      const [readBack] = await db.select().from(concerts).where(eq(concerts.id, created!.id));
      expect(readBack?.startsAt.toISOString()).toBe(`${showDay}T20:00:00.000Z`);
    } finally {
      await pool.end();
    }
  });

  it('rolls a failed transaction back completely', async () => {
    const pool = createPool(env);
    const title = `Rolled back ${crypto.randomUUID()}`;
    try {
      const db = createDb(pool);
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(concerts).values({
            title,
            venue: 'Test Hall',
            date: showDay,
            startsAt: new Date(`${showDay}T20:00:00Z`),
            salesOpenAt: new Date(Date.now() - 60_000),
            seatCount: 5,
          });
          // Violates seat_count's CHECK: the first insert must vanish with it.
          await tx.insert(concerts).values({
            title,
            venue: 'Test Hall',
            date: showDay,
            startsAt: new Date(`${showDay}T20:00:00Z`),
            salesOpenAt: new Date(Date.now() - 60_000),
            seatCount: 0,
          });
        }),
      ).rejects.toSatisfy((error: unknown) => sqlState(error) === '23514'); // check_violation, not just any error
    } finally {
      await pool.end();
    }
    expect(await directQuery('SELECT 1 FROM concerts WHERE title = $1', [title])).toEqual([]);
  });
});
