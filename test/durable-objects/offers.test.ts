import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { migrateRoomSchema, ROOM_MIGRATIONS } from '../../src/durable-objects/concert-room/schema.ts';
import { adjacentSeatsByScan, decideOffers, type WaitlistOffer } from '../../src/durable-objects/concert-room/waitlist.ts';
import { uniqueId } from '../helpers/api.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

/** Seeded draws: every case can be replayed from its seed. */
function random(seed: number) {
  const next = seededRandom(seed);
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

type Seat = { seat_number: number; section: string; status: 'available' | 'held' | 'sold'; reservation_id: string | null };
type Entry = { user_id: string; seq_order: number; seats: number; together: 0 | 1; status: string };
type Decided = { offers: { userId: string; seats: number[] }[]; ended: string[] };

/** A room nobody else uses, with its schema, for driving the room's functions directly. */
function scratchRoom() {
  return env.CONCERT_ROOM.getByName(uniqueId('offers-scratch'));
}

/** Runs of adjacent available seats (consecutive numbers, one section), straight from the seats. */
function runsOf(seats: readonly Seat[]): [number, number, string][] {
  const runs: [number, number, string][] = [];
  let previous: Seat | undefined;
  for (const seat of [...seats].sort((a, b) => a.seat_number - b.seat_number)) {
    if (seat.status !== 'available') {
      previous = undefined;
      continue;
    }
    const last = runs[runs.length - 1];
    if (previous && last && seat.seat_number === previous.seat_number + 1 && seat.section === previous.section) last[1] = seat.seat_number;
    else runs.push([seat.seat_number, seat.seat_number, seat.section]);
    previous = seat;
  }
  return runs;
}

/**
 * The offer rule said plainly, over arrays: waiting entries in join order, first-fit; the n lowest
 * available seats, or the first n of the lowest run of n or more adjacent ones; an owner past the
 * cap ends HOLD_LIMIT; a request that cannot be served drops every request at least as demanding;
 * stops when no seat is left.
 */
function reference(seats: readonly Seat[], entries: readonly Entry[], owned: ReadonlyMap<string, number>): Decided {
  const free = seats.filter((seat) => seat.status === 'available').map((seat) => ({ ...seat }));
  const dead = new Set<string>();
  const decided: Decided = { offers: [], ended: [] };
  for (const entry of [...entries].filter((e) => e.status === 'waiting').sort((a, b) => a.seq_order - b.seq_order)) {
    const available = free.filter((seat) => seat.status === 'available');
    if (available.length === 0) break;
    if (dead.has(`${entry.seats}:${entry.together}`)) continue;
    if ((owned.get(entry.user_id) ?? 0) + entry.seats > 4) {
      decided.ended.push(entry.user_id);
      continue;
    }
    let chosen: number[] | undefined;
    if (entry.together) {
      const run = runsOf(free).find(([first, last]) => last - first + 1 >= entry.seats);
      if (run) chosen = Array.from({ length: entry.seats }, (_, i) => run[0] + i);
    } else if (available.length >= entry.seats) {
      chosen = available.slice(0, entry.seats).map((seat) => seat.seat_number);
    }
    if (!chosen) {
      for (const n of [1, 2, 3, 4]) for (const t of [0, 1]) if (n >= entry.seats && (entry.together === 0 || t === 1)) dead.add(`${n}:${t}`);
      continue;
    }
    for (const seat of free) if (chosen.includes(seat.seat_number)) seat.status = 'held';
    decided.offers.push({ userId: entry.user_id, seats: chosen });
  }
  return decided;
}

/** Fills `sql` with a random seat map, holds and waitlist; returns what the reference needs. */
function randomState(sql: SqlStorage, seed: number): { seats: Seat[]; entries: Entry[]; owned: Map<string, number> } {
  const rng = random(seed);
  const seatCount = rng.int(1, 120);
  const sections = ['A', 'B', 'C'].slice(0, rng.int(1, 3));
  let section = rng.pick(sections);
  let number = 0;
  const users = Array.from({ length: rng.int(1, 40) }, (_, i) => `u${seed}-${i}`);
  // Seats are inserted in random states, then moved about, so the run triggers see every kind of change.
  for (let i = 0; i < seatCount; i++) {
    number += rng.next() < 0.05 ? 2 : 1;
    if (rng.next() < 0.15) section = rng.pick(sections);
    const status = rng.next() < 0.5 ? 'available' : rng.pick(['held', 'sold'] as const);
    sql.exec(`INSERT INTO seats (seat_number, seat_id, section, price, status) VALUES (?, ?, ?, ?, ?)`, number, number, section, 100 + (number % 7), status);
  }
  const numbers = sql.exec<{ n: number }>(`SELECT seat_number AS n FROM seats`).toArray().map((row) => row.n);
  for (let i = rng.int(0, seatCount); i > 0; i--) {
    const n = rng.pick(numbers);
    if (rng.next() < 0.1) sql.exec(`UPDATE seats SET section = ? WHERE seat_number = ?`, rng.pick(sections), n);
    else sql.exec(`UPDATE seats SET status = ? WHERE seat_number = ?`, rng.pick(['available', 'available', 'held', 'sold'] as const), n);
  }
  if (rng.next() < 0.3 && numbers.length > 1) sql.exec(`DELETE FROM seats WHERE seat_number = ?`, rng.pick(numbers));
  // Some fans already own seats here (live holds count, ended ones do not).
  const owned = new Map<string, number>();
  const taken = sql.exec<{ n: number }>(`SELECT seat_number AS n FROM seats WHERE status <> 'available' ORDER BY seat_number`).toArray();
  for (const { n } of taken) {
    if (rng.next() < 0.4) continue;
    const user = rng.pick(users);
    const status = rng.pick(['pending', 'held', 'confirmed', 'expired'] as const);
    const id = `r-${seed}-${n}`;
    sql.exec(`INSERT INTO holds (reservation_id, user_id, seq, amount, expires_at, status, created_at) VALUES (?, ?, 0, 0, 0, ?, 0)`, id, user, status);
    sql.exec(`UPDATE seats SET reservation_id = ? WHERE seat_number = ?`, id, n);
    if (status !== 'expired') owned.set(user, (owned.get(user) ?? 0) + 1);
  }
  let order = 0;
  for (const user of users) {
    if (rng.next() < 0.2) continue;
    order += rng.int(1, 3);
    const status = rng.next() < 0.85 ? 'waiting' : rng.pick(['left', 'expired', 'accepted'] as const);
    sql.exec(
      `INSERT INTO waitlist (user_id, seq_order, seats, together, status, created_at) VALUES (?, ?, ?, ?, ?, 0)`,
      user,
      order,
      rng.int(1, 4),
      rng.next() < 0.5 ? 1 : 0,
      status,
    );
  }
  const seats = sql.exec<Seat>(`SELECT seat_number, section, status, reservation_id FROM seats`).toArray();
  const entries = sql.exec<Entry>(`SELECT user_id, seq_order, seats, together, status FROM waitlist`).toArray();
  return { seats, entries, owned };
}

const summary = (offers: WaitlistOffer[], sql: SqlStorage): Decided => ({
  offers: offers.map((offer) => ({ userId: offer.userId, seats: offer.seats.map((seat) => seat.seatNumber) })),
  ended: sql
    .exec<{ user_id: string }>(`SELECT user_id FROM waitlist WHERE status = 'expired' AND reason = 'HOLD_LIMIT' ORDER BY seq_order`)
    .toArray()
    .map((row) => row.user_id),
});

const storedRuns = (sql: SqlStorage) =>
  sql
    .exec<{ first: number; last: number; section: string }>(`SELECT first, last, section FROM seat_runs ORDER BY first`)
    .toArray()
    .map((row) => [row.first, row.last, row.section]);

describe('waitlist offers (decideOffers)', () => {
  it('decides exactly the offers of the plain first-fit rule, and of the old search, on 300 random states', async () => {
    await runInDurableObject(scratchRoom(), (_instance, state) => {
      const sql = state.storage.sql;
      migrateRoomSchema(sql);
      const rollback = new Error('rollback');
      /** Builds the seed's state, runs `work` on it, and rolls it all back. */
      const onState = <T>(seed: number, work: (state: ReturnType<typeof randomState>) => T): T => {
        let result: T | undefined;
        try {
          state.storage.transactionSync(() => {
            result = work(randomState(sql, seed));
            throw rollback;
          });
        } catch (error) {
          if (error !== rollback) throw error;
        }
        return result!;
      };
      const seen = { offers: 0, together: 0, ended: 0, refused: 0 };
      for (let seed = 1; seed <= 300; seed++) {
        const old = onState(seed, () => summary(decideOffers(sql, { now: 1, offerSeconds: 60, adjacent: adjacentSeatsByScan }), sql));
        const { expected, decided, runsBefore, runsAfter } = onState(seed, ({ seats, entries, owned }) => {
          const runsBefore = [storedRuns(sql), runsOf(seats)];
          const decided = summary(decideOffers(sql, { now: 1, offerSeconds: 60 }), sql);
          const runsAfter = [storedRuns(sql), runsOf(sql.exec<Seat>(`SELECT seat_number, section, status, reservation_id FROM seats`).toArray())];
          return { expected: reference(seats, entries, owned), decided, runsBefore, runsAfter };
        });
        // The triggers kept the runs through random changes, and through the offers' holds.
        expect([seed, runsBefore[0]]).toEqual([seed, runsBefore[1]]);
        expect([seed, runsAfter[0]]).toEqual([seed, runsAfter[1]]);
        expect([seed, decided]).toEqual([seed, expected]);
        expect([seed, old]).toEqual([seed, expected]);
        seen.offers += decided.offers.length;
        seen.together += decided.offers.filter((offer) => offer.seats.length > 1 && offer.seats.every((n, i) => i === 0 || n === offer.seats[i - 1]! + 1)).length;
        seen.ended += decided.ended.length;
        if (decided.offers.length === 0) seen.refused++;
      }
      // The random states exercise every branch: offers, runs, the cap, and nothing to offer.
      expect(seen.offers).toBeGreaterThan(300);
      expect(seen.together).toBeGreaterThan(50);
      expect(seen.ended).toBeGreaterThan(10);
      expect(seen.refused).toBeGreaterThan(10);
    });
  });

  it('builds the runs of a room that had seats before seat_runs existed', async () => {
    await runInDurableObject(scratchRoom(), (_instance, state) => {
      const sql = state.storage.sql;
      migrateRoomSchema(sql);
      const step = ROOM_MIGRATIONS.findIndex((migration) => migration.includes('CREATE TABLE seat_runs'));
      expect(step).toBeGreaterThan(0);
      // The room as it was before the step: no table, no triggers, seats already there.
      sql.exec(`DROP TRIGGER seat_runs_update; DROP TRIGGER seat_runs_delete; DROP TRIGGER seat_runs_insert; DROP TABLE seat_runs`);
      const { seats } = randomState(sql, 4242);
      sql.exec(ROOM_MIGRATIONS[step]!);
      expect(storedRuns(sql)).toEqual(runsOf(seats));
      expect(storedRuns(sql).length).toBeGreaterThan(3);
    });
  });

  it('reads a bounded number of rows per offer, however many seats are free', async () => {
    await runInDurableObject(scratchRoom(), (_instance, state) => {
      const real = state.storage.sql;
      migrateRoomSchema(real);
      // 4,000 seats, every fourth sold: 3,000 free in runs of 3. 300 fans want 2 together.
      real.exec(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
         INSERT INTO seats (seat_number, seat_id, section, price, status) SELECT i, i, 'A', 100, CASE WHEN i % 4 = 0 THEN 'sold' ELSE 'available' END FROM n`,
      );
      real.exec(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO waitlist (user_id, seq_order, seats, together, status, created_at) SELECT 'fan-' || i, i, 2, 1, 'waiting', 0 FROM n`,
      );
      const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
      const counting = Object.create(real) as SqlStorage;
      counting.exec = ((query: string, ...bindings: unknown[]) => {
        const cursor = real.exec(query, ...bindings);
        cursors.push(cursor);
        return cursor;
      }) as SqlStorage['exec'];
      const offers = state.storage.transactionSync(() => decideOffers(counting, { now: 1, offerSeconds: 60 }));
      expect(offers).toHaveLength(300);
      expect(offers[299]!.seats.map((seat) => seat.seatNumber)).toEqual([1197, 1198]);
      const rowsRead = cursors.reduce((sum, cursor) => sum + cursor.rowsRead, 0);
      // A search over the free map reads ~3,000 rows per offer; index steps read a few dozen.
      expect(rowsRead / offers.length).toBeLessThan(300);
    });
  });
});
