import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ConcertRoom } from '../../src/durable-objects/concert-room/index.ts';
import { api } from '../helpers/api.ts';
import { admittedUser, hold, openConcert, room, seatMap } from '../helpers/concerts.ts';
import { directQuery } from '../helpers/postgres.ts';

async function holdIds(concertId: string, count: number): Promise<{ reservationId: string; userToken: string }[]> {
  const fans = await Promise.all(Array.from({ length: count }, () => admittedUser(concertId)));
  return Promise.all(
    fans.map(async (fan, i) => {
      const response = await hold(concertId, fan, [i + 1]);
      expect(response.status).toBe(201);
      return { reservationId: (await response.json<{ reservationId: string }>()).reservationId, userToken: fan.userToken };
    }),
  );
}

describe('ConcertRoom reconciliation', () => {
  it('runs once at a time when 20 triggers arrive together: they share at most one follow-up run', async () => {
    const concert = await openConcert({ seats: 300 });
    const stub = room(concert.id);
    const before = await stub.requestCounts();
    // All 20 within one turn of the room's event loop, as lost replies and an admin could at once.
    const reports = await runInDurableObject(stub, (instance: ConcertRoom) => Promise.all(Array.from({ length: 20 }, () => instance.reconcile())));
    const after = await stub.requestCounts();
    expect(reports.every((report) => report.ok)).toBe(true);
    expect(after.reconcile - before.reconcile).toBe(20);
    const runs = after.reconcileRuns - before.reconcileRuns;
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThanOrEqual(2);
  });

  it('answers a trigger that arrives during a run with a run that reads Postgres after it', async () => {
    const concert = await openConcert({ seats: 300 });
    const stub = room(concert.id);
    const first = stub.reconcile();
    // Postgres changes behind the room's back while the first run may already have read it.
    await directQuery(`UPDATE seats SET status = 'sold' WHERE concert_id = $1 AND seat_number = 7`, [concert.id]);
    const second = await stub.reconcile();
    expect((await first).ok).toBe(true);
    expect(second.ok).toBe(true);
    expect((await seatMap(concert.id)).find((seat) => seat.seatNumber === 7)?.status).toBe('sold');
  });

  it('reads only live holds from the room, and still repairs a hold that ended here but is live in Postgres', async () => {
    const concert = await openConcert({ seats: 300 });
    const holds = await holdIds(concert.id, 40);
    // 39 holds end (terminal everywhere); the last one ends in the room only.
    for (const { reservationId, userToken } of holds.slice(0, 39)) {
      const cancelled = await api(`/reservations/${reservationId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${userToken}` } });
      expect(cancelled.status).toBe(204);
    }
    const stray = holds[39]!.reservationId;
    const read: string[] = [];
    const statements: { query: string; bindings: unknown[] }[] = [];
    await runInDurableObject(room(concert.id), (instance: ConcertRoom, state) => {
      state.storage.sql.exec(`UPDATE holds SET status = 'expired' WHERE reservation_id = ?`, stray);
      const real = state.storage.sql;
      const recorder = Object.create(real) as SqlStorage;
      recorder.exec = ((query: string, ...bindings: unknown[]) => {
        const cursor = real.exec(query, ...bindings);
        if (/\bFROM holds\b/.test(query) && !/^\s*(UPDATE|INSERT)/.test(query)) {
          statements.push({ query, bindings });
          // Every row a read of holds returns, whatever the statement.
          const rows = cursor.toArray();
          for (const row of rows) read.push(JSON.stringify(row));
          return { toArray: () => rows, one: () => rows[0], [Symbol.iterator]: () => rows[Symbol.iterator]() } as unknown as ReturnType<SqlStorage['exec']>;
        }
        return cursor;
      }) as SqlStorage['exec'];
      (instance as unknown as { sql: SqlStorage }).sql = recorder;
    });

    const report = await room(concert.id).reconcile();
    expect(report.ok).toBe(true);
    const ended = new Set(holds.slice(0, 39).map((h) => h.reservationId));
    expect(read.filter((row) => [...ended].some((id) => row.includes(id)))).toEqual([]);
    await runInDurableObject(room(concert.id), (_instance, state) => {
      // Read by key or through a partial index of live holds (all, pending, held), never over every hold.
      const steps = statements.flatMap(({ query, bindings }) =>
        state.storage.sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, ...bindings).toArray().map((step) => step.detail),
      );
      expect(steps.filter((detail) => /\bholds\b/.test(detail) && !/^SEARCH holds\b/.test(detail) && !/INDEX holds_(live|pending|held_expiry)\b/.test(detail))).toEqual([]);
      expect(state.storage.sql.exec<{ status: string }>(`SELECT status FROM holds WHERE reservation_id = ?`, stray).one().status).toBe('held');
    });
  });
});
