import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api, uniqueId } from '../helpers/api.ts';
import { adminHeaders, admittedUser, createConcert, hold, openConcert, room, seatMap, uniqueFutureDay } from '../helpers/concerts.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Server processes Postgres has started so far (one per connection ever opened). */
async function postgresSessions(): Promise<number> {
  const [row] = await directQuery<{ sessions: string }>(`SELECT sessions FROM pg_stat_database WHERE datname = current_database()`);
  return Number(row?.sessions ?? 0);
}

describe('hot reads from the edge', () => {
  it('serves the seat map from the edge cache, at most about a second stale, with Age and Cache-Control', async () => {
    const concert = await openConcert({ seats: 20 });
    const first = await api(`/concerts/${concert.id}/seats`);
    expect(first.status).toBe(200);
    expect(first.headers.get('Cache-Control')).toBe('public, max-age=1');
    expect(first.headers.get('Age')).toBe('0');
    const body = await first.json<{ concertId: string; seats: { seatNumber: number; status: string }[] }>();
    expect(body.concertId).toBe(concert.id);
    expect(body.seats).toEqual(await seatMap(concert.id));

    const again = await api(`/concerts/${concert.id}/seats`);
    expect(again.headers.get('X-Cache')).toBe('HIT');
    expect(Number(again.headers.get('Age'))).toBeLessThanOrEqual(1);
    expect(await again.json()).toEqual(body);

    const fan = await admittedUser(concert.id);
    expect((await hold(concert.id, fan, [3])).status).toBe(201);
    await sleep(1_100);
    const fresh = await api(`/concerts/${concert.id}/seats?status=held`);
    expect(await fresh.json()).toEqual({ concertId: concert.id, seats: [{ seatNumber: 3, section: 'general', price: 500, status: 'held' }] });
  });

  it('answers the concert with live counts from the room, not Postgres', async () => {
    const concert = await openConcert({ seats: 10 });
    const fan = await admittedUser(concert.id);
    expect((await hold(concert.id, fan, [1, 2])).status).toBe(201);
    await sleep(1_100);
    const response = await api(`/concerts/${concert.id}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      id: concert.id,
      title: concert.title,
      venue: 'Test Hall',
      date: concert.date,
      startsAt: `${concert.date}T20:00:00.000Z`,
      salesOpenAt: concert.salesOpenAt,
      seatCount: 10,
      counts: { available: 8, held: 2, sold: 0 },
    });
  });

  it('answers the seed’s by-date call from the cached list and seat map', async () => {
    const date = uniqueFutureDay();
    const concert = await createConcert({ seats: 5, price: 700, date });
    const response = await api(`/reservations/${date}?concertId=${concert.id}`);
    expect(response.status).toBe(200);
    const body = await response.json<{ date: string; concertId: string; available: number; seats: unknown[] }>();
    expect(body).toMatchObject({ date, concertId: concert.id, available: 5 });
    expect(body.seats[0]).toEqual({ seatNumber: 1, section: 'general', price: 700 });
  });

  it('answers the opening draw of made-up concerts 404 with no Postgres session and no room storage each', async () => {
    const before = await postgresSessions();
    const ids = Array.from({ length: 200 }, () => crypto.randomUUID());
    const burst = await Promise.all(ids.map((id) => api(`/concerts/${id}/opening`)));
    expect(new Set(burst.map((r) => r.status))).toEqual(new Set([404]));
    await expectProblem(burst[0]!, 404, 'CONCERT_NOT_FOUND');
    await Promise.all(burst.slice(1).map((r) => r.arrayBuffer()));
    // Asked again, the same ids are answered from the missing-concert memo.
    const repeat = await Promise.all(ids.slice(0, 50).map((id) => api(`/concerts/${id}/opening`)));
    expect(new Set(repeat.map((r) => r.status))).toEqual(new Set([404]));
    await Promise.all(repeat.map((r) => r.arrayBuffer()));
    expect((await postgresSessions()) - before).toBeLessThan(30);

    // Not a table, not a row: an id that names no concert leaves its room's storage as it found it.
    const tables = await Promise.all(
      ids.map((id) =>
        runInDurableObject(room(id), (_instance, state) =>
          state.storage.sql
            .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE substr(name, 1, 4) <> '_cf_'`)
            .toArray()
            .map((row) => row.name),
        ),
      ),
    );
    expect(tables.filter((names) => names.length > 0)).toEqual([]);
  });

  it('keeps the opening draw out of every cache until it is made, then serves it from the edge', async () => {
    const concert = await createConcert({ seats: 5 });
    const before = await api(`/concerts/${concert.id}/opening`);
    expect(before.status).toBe(200);
    expect(before.headers.get('Cache-Control')).toBe('no-store');
    expect(await before.json()).toMatchObject({ seed: null, prequeueSize: null });
    const again = await api(`/concerts/${concert.id}/opening`);
    expect(again.headers.get('X-Cache')).toBe('MISS');
    await again.arrayBuffer();

    const opened = await openConcert({ seats: 5 });
    const drawn = await api(`/concerts/${opened.id}/opening`);
    expect(drawn.status).toBe(200);
    const body = await drawn.json<{ seed: string | null; prequeueSize: number | null }>();
    expect(body.seed).not.toBeNull();
    expect(body.prequeueSize).not.toBeNull();
    const cached = await api(`/concerts/${opened.id}/opening`);
    expect(cached.headers.get('X-Cache')).toBe('HIT');
    expect(cached.headers.get('Cache-Control')).toMatch(/^public, max-age=\d+$/);
    expect(await cached.json()).toEqual(body);
  });

  it('survives a burst of lookups of made-up concerts without a Postgres connection each, and others stay unaffected', async () => {
    const before = await postgresSessions();
    const ids = Array.from({ length: 300 }, () => crypto.randomUUID());
    const burst = await Promise.all(ids.map((id) => api(`/concerts/${id}/seats`)));
    const statuses = burst.map((r) => r.status);
    expect(new Set(statuses)).toEqual(new Set([404]));
    await expectProblem(burst[0]!, 404, 'CONCERT_NOT_FOUND');
    await Promise.all(burst.slice(1).map((r) => r.arrayBuffer()));

    // The same ids again are answered from memory.
    const repeat = await Promise.all(ids.slice(0, 50).map((id) => api(`/concerts/${id}`)));
    expect(new Set(repeat.map((r) => r.status))).toEqual(new Set([404]));
    await Promise.all(repeat.map((r) => r.arrayBuffer()));
    // A handful of connections for the adapter's warm pool at most, never one per request.
    expect((await postgresSessions()) - before).toBeLessThan(30);

    expect((await api('/health')).status).toBe(200);
    const date = uniqueFutureDay();
    const created = await api('/admin/concerts', {
      method: 'POST',
      headers: adminHeaders(),
      json: {
        title: uniqueId('after-burst'),
        venue: 'Hall',
        date,
        startsAt: `${date}T20:00:00Z`,
        salesOpenAt: new Date(Date.now() + 3_600_000).toISOString(),
        seats: { count: 5, price: 100 },
      },
    });
    expect(created.status).toBe(201);
  });
});
