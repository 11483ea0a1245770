import { runInDurableObject } from 'cloudflare:test';
import { expect } from 'vitest';
import { admittedUser, hold, openConcert, room } from '../helpers/concerts.ts';
import { directQuery } from '../helpers/postgres.ts';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every 50 ms until it returns something other than undefined. No deadline of its own
 * by default: a busy box may take long, and the test's timeout ends a wait that never ends.
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = Infinity): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * Resets a room the hard way, as the runtime does on a crash or a code update: `ctx.abort()` drops the
 * instance with every call still running in it (their callers get an error); storage stays.
 */
export async function resetRoom(concertId: string): Promise<void> {
  await runInDurableObject(room(concertId), (_instance, state) => state.abort('fault test: room reset')).catch(() => undefined);
}

/** An open concert whose room has warm Postgres connections (`warm` concurrent holds' worth), so faults land on statements, not connects. */
export async function warmConcert(options: { seats?: number; price?: number; warm?: number } = {}) {
  const seats = options.seats ?? 10;
  const warm = options.warm ?? 1;
  const concert = await openConcert({ seats, price: options.price ?? 500 });
  const fans = await Promise.all(Array.from({ length: warm }, () => admittedUser(concert.id, 'warm')));
  const responses = await Promise.all(fans.map((fan, i) => hold(concert.id, fan, [seats - i])));
  for (const response of responses) expect(response.status).toBe(201);
  await Promise.all(responses.map((r) => r.arrayBuffer()));
  return concert;
}

/** The room's holds as its SQLite has them. */
export function roomHolds(concertId: string): Promise<{ reservation_id: string; user_id: string; status: string }[]> {
  return runInDurableObject(room(concertId), (_instance, state) =>
    state.storage.sql.exec<{ reservation_id: string; user_id: string; status: string }>(`SELECT reservation_id, user_id, status FROM holds`).toArray(),
  );
}

/** A user's reservations in Postgres, with their live seats. */
export function reservationsOf(userId: string) {
  return directQuery<{ id: string; status: string; seats: number[] | null }>(
    `SELECT r.id, r.status,
            (SELECT array_agg(s.seat_number ORDER BY s.seat_number) FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
              WHERE rs.reservation_id = r.id AND rs.active) AS seats
       FROM reservations r WHERE r.user_id = $1 ORDER BY r.created_at`,
    [userId],
  );
}
