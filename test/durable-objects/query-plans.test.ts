import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ConcertRoom } from '../../src/durable-objects/concert-room/index.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { admittedUser, createConcert, hold, joinOk, openConcert, queueStatus, room, tokenFor } from '../helpers/concerts.ts';
import { dueInPostgres } from '../helpers/expiry.ts';
import { directQuery } from '../helpers/postgres.ts';
import { LIVE_RESERVATIONS_SQL } from '../../src/db/room-source.ts';
import { planNodes, type PlanNode } from '../helpers/postgres-plan.ts';

interface Statement {
  query: string;
  bindings: unknown[];
}

/**
 * Swaps the room's SqlStorage for one that records every statement, so a test can ask SQLite how
 * it ran each of them. Returns the list the recorder fills.
 */
async function recordStatements(concertId: string): Promise<Statement[]> {
  const recorded: Statement[] = [];
  await runInDurableObject(room(concertId), (instance: ConcertRoom, state) => {
    const real = state.storage.sql;
    const recorder = Object.create(real) as SqlStorage;
    recorder.exec = ((query: string, ...bindings: unknown[]) => {
      recorded.push({ query, bindings });
      return real.exec(query, ...bindings);
    }) as SqlStorage['exec'];
    (instance as unknown as { sql: SqlStorage }).sql = recorder;
  });
  return recorded;
}

/** Every plan step of the recorded statements that scans one of the big tables. */
async function scansIn(concertId: string, statements: Statement[]): Promise<string[]> {
  return runInDurableObject(room(concertId), (_instance, state) => {
    const scans: string[] = [];
    for (const { query, bindings } of statements) {
      for (const step of state.storage.sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, ...bindings).toArray()) {
        if (/^SCAN (line|seats|holds|waitlist)\b/.test(step.detail)) scans.push(`${step.detail}  ←  ${query.replace(/\s+/g, ' ').trim()}`);
      }
    }
    return scans;
  });
}

describe('ConcertRoom query plans', () => {
  it('scans no line, seat or hold table on join, status, hold, cancel, payment or an alarm tick', async () => {
    const concert = await openConcert({ seats: 2_000, price: 10, queue: { admitPerWindow: 100, maxActive: 100 } });
    // A line long enough that a scan would not hide behind the planner's small-table shortcuts.
    const prefix = uniqueId('crowd');
    const crowd = await Promise.all(Array.from({ length: 300 }, (_, i) => joinOk(concert.id, `${prefix}-${i}`)));
    const admitted = crowd.find((body) => body.status === 'admitted')!;

    const statements = await recordStatements(concert.id);
    const waiting = await joinOk(concert.id, uniqueId('late'));
    expect(waiting.status).toBe('waiting');
    expect((await queueStatus(waiting.token)).status).toBe(200);
    expect((await queueStatus(admitted.token)).status).toBe(200);
    expect(statements.length).toBeGreaterThan(0);
    expect(await scansIn(concert.id, statements)).toEqual([]);
  });

  it('scans nothing big on the hold, cancel, payment and expiry paths', async () => {
    const concert = await openConcert({ seats: 2_000, price: 10 });
    const fans = await Promise.all(Array.from({ length: 5 }, () => admittedUser(concert.id)));
    for (const [i, fan] of fans.entries()) expect((await hold(concert.id, fan, [i * 4 + 1, i * 4 + 2])).status).toBe(201);

    const statements = await recordStatements(concert.id);
    const [buyer, canceller] = fans as [(typeof fans)[0], (typeof fans)[0]];
    const held = await hold(concert.id, buyer, [100]);
    expect(held.status).toBe(201);
    const { reservationId } = await held.json<{ reservationId: string }>();
    expect((await charge(buyer.userToken, 1_000)).status).toBe(200);
    expect((await pay(buyer.userToken, reservationId)).status).toBe(201);

    const toCancel = await hold(concert.id, canceller, [200]);
    const cancelId = (await toCancel.json<{ reservationId: string }>()).reservationId;
    const cancelled = await api(`/reservations/${cancelId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${canceller.userToken}` } });
    expect(cancelled.status).toBe(204);

    await runDurableObjectAlarm(room(concert.id));
    expect(statements.length).toBeGreaterThan(10);
    expect(await scansIn(concert.id, statements)).toEqual([]);
  });

  it('scans no line, seat, hold or waitlist table on the waitlist paths: join (by place in line or not), read, leave, offers as seats come back', async () => {
    // Three admitted in a window that outlasts the test, who buy every seat; one more fan waits in line.
    const concert = await openConcert({ seats: 12, price: 10, queue: { admitPerWindow: 3, windowSeconds: 3600 } });
    const buyers = await Promise.all(Array.from({ length: 3 }, () => admittedUser(concert.id)));
    const lineUser = uniqueId('line');
    const inLine = await joinOk(concert.id, lineUser);
    const reservations: string[] = [];
    for (const [i, buyer] of buyers.entries()) {
      const held = await hold(concert.id, buyer, [i * 4 + 1, i * 4 + 2, i * 4 + 3, i * 4 + 4]);
      expect(held.status).toBe(201);
      reservations.push((await held.json<{ reservationId: string }>()).reservationId);
    }
    for (const [i, buyer] of buyers.entries()) {
      expect((await charge(buyer.userToken, 40)).status).toBe(200);
      expect((await pay(buyer.userToken, reservations[i]!)).status).toBe(201);
    }
    expect(inLine.status).toBe('waiting');
    // A waitlist long enough that a scan would not hide behind the planner's small-table shortcuts.
    const prefix = uniqueId('wl');
    const tokens = await Promise.all(Array.from({ length: 300 }, (_, i) => tokenFor(`${prefix}-${i}`)));
    for (let batch = 0; batch < 300; batch += 50) {
      await Promise.all(
        tokens.slice(batch, batch + 50).map(async (token, j) => {
          const i = batch + j;
          const joined = await api(`/concerts/${concert.id}/waitlist`, { method: 'POST', headers: authed(token), json: { seats: 1 + (i % 4), together: i % 2 === 0 } });
          expect(joined.status).toBe(201);
        }),
      );
    }

    const statements = await recordStatements(concert.id);
    const late = await tokenFor(uniqueId('late'));
    expect((await api(`/concerts/${concert.id}/waitlist`, { method: 'POST', headers: authed(late), json: { seats: 2 } })).status).toBe(201);
    const byPlace = await api(`/concerts/${concert.id}/waitlist`, { method: 'POST', headers: authed(await tokenFor(lineUser)), json: { seats: 1 } });
    expect(await byPlace.json()).toMatchObject({ status: 'waiting', position: 1 });
    expect((await api(`/concerts/${concert.id}/waitlist/me`, { headers: authed(late) })).status).toBe(200);
    expect((await api(`/concerts/${concert.id}/waitlist/me`, { headers: authed(tokens[150]!) })).status).toBe(200);
    expect((await api(`/concerts/${concert.id}/waitlist/me`, { method: 'DELETE', headers: authed(tokens[7]!) })).status).toBe(204);
    for (const [i, buyer] of buyers.slice(0, 2).entries()) {
      expect((await api(`/reservations/${reservations[i]}/refund`, { method: 'POST', headers: authed(buyer.userToken) })).status).toBe(200);
    }
    // An offer lapses: its seats go round again.
    const offer = await runInDurableObject(room(concert.id), (_instance, state) =>
      state.storage.sql.exec<{ id: string }>(`SELECT reservation_id AS id FROM waitlist WHERE status = 'offered' LIMIT 1`).one().id,
    );
    await dueInPostgres({ reservationId: offer });
    await runInDurableObject(room(concert.id), (_instance, state) => {
      state.storage.sql.exec(`UPDATE holds SET expires_at = ? WHERE reservation_id = ?`, Date.now() - 1, offer);
    });
    await runDurableObjectAlarm(room(concert.id));
    const offered = await runInDurableObject(room(concert.id), (_instance, state) => state.storage.sql.exec(`SELECT COUNT(*) AS n FROM waitlist WHERE status = 'offered'`).one().n);
    expect(offered).toBeGreaterThan(0);
    expect(await scansIn(concert.id, statements)).toEqual([]);

    await runInDurableObject(room(concert.id), (_instance, state) => {
      const sql = state.storage.sql;
      const counted = Object.fromEntries(sql.exec<{ name: string; n: number }>(`SELECT name, n FROM room_counts WHERE name LIKE 'waitlist:%'`).toArray().map((r) => [r.name, r.n]));
      const actual: Record<string, number> = {};
      for (const r of sql.exec<{ s: string; n: number }>(`SELECT status AS s, COUNT(*) AS n FROM waitlist GROUP BY status`).toArray()) actual[`waitlist:${r.s}`] = r.n;
      for (const [name, n] of Object.entries(counted)) expect([name, n]).toEqual([name, actual[name] ?? 0]);
    });
  });

  it('admits a window by primary key: the admission statement searches the line, never scans it', async () => {
    // Sales open in an hour: 300 fans wait in the pre-queue, then the opening alarm admits a window.
    const concert = await createConcert({ seats: 2_000, queue: { admitPerWindow: 100 } });
    const prefix = uniqueId('window');
    await Promise.all(Array.from({ length: 300 }, (_, i) => joinOk(concert.id, `${prefix}-${i}`)));
    const statements = await recordStatements(concert.id);
    await runInDurableObject(room(concert.id), (instance: ConcertRoom) => instance.alarm());
    const admission = statements.filter(({ query }) => /UPDATE line SET status = 'admitted'/.test(query));
    expect(admission.length).toBeGreaterThan(0);
    const plans = await runInDurableObject(room(concert.id), (_instance, state) =>
      admission.map(({ query, bindings }) =>
        state.storage.sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`, ...bindings).toArray().map((step) => step.detail),
      ),
    );
    for (const plan of plans) expect(plan.some((detail) => /^SEARCH line USING (INTEGER PRIMARY KEY|(COVERING )?INDEX)/.test(detail)), plan.join(' | ')).toBe(true);
    expect(await scansIn(concert.id, statements)).toEqual([]);
    const admitted = await runInDurableObject(room(concert.id), (_instance, state) => {
      return state.storage.sql.exec<{ n: number }>(`SELECT n FROM room_counts WHERE name = 'line:admitted'`).one().n;
    });
    expect(admitted).toBe(100);
  });

  it('runs every statement inside the room’s triggers without scanning a big table', async () => {
    const concert = await createConcert({ seats: 10 });
    await joinOk(concert.id, uniqueId('trigger'));
    const { triggers, scans, planned } = await runInDurableObject(room(concert.id), (_instance, state) => {
      const sql = state.storage.sql;
      const found = sql.exec<{ name: string; sql: string }>(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name`).toArray();
      const scanned: string[] = [];
      let planned = 0;
      for (const trigger of found) {
        const body = /\bBEGIN\b([\s\S]*)\bEND\s*$/i.exec(trigger.sql)?.[1] ?? '';
        // Each statement of the body on its own, with the row's values (new.x, old.x) as constants.
        for (const statement of body.split(';').map((part) => part.trim()).filter(Boolean)) {
          const query = statement.replace(/\b(new|old)\.\w+/gi, '1');
          planned++;
          for (const step of sql.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`).toArray()) {
            if (/^SCAN (line|seats|holds|waitlist|room_counts|waitlist_rank)\b/.test(step.detail)) scanned.push(`${trigger.name}: ${step.detail}  ←  ${query.replace(/\s+/g, ' ')}`);
          }
        }
      }
      return { triggers: found.map((t) => t.name), scans: scanned, planned };
    });
    // The counters and the waitlist's rank tree are kept by triggers: checking them is the point.
    expect(triggers.length).toBeGreaterThanOrEqual(6);
    expect(planned).toBeGreaterThan(triggers.length);
    expect(scans).toEqual([]);
  });

  it('keeps counters equal to the rows they count', async () => {
    const concert = await createConcert({ seats: 30 });
    const prefix = uniqueId('count');
    await Promise.all(Array.from({ length: 20 }, (_, i) => joinOk(concert.id, `${prefix}-${i}`)));
    await runDurableObjectAlarm(room(concert.id));
    await runInDurableObject(room(concert.id), (_instance, state) => {
      const sql = state.storage.sql;
      const counted = Object.fromEntries(sql.exec<{ name: string; n: number }>(`SELECT name, n FROM room_counts`).toArray().map((r) => [r.name, r.n]));
      const actual: Record<string, number> = {};
      for (const r of sql.exec<{ s: string; n: number }>(`SELECT status AS s, COUNT(*) AS n FROM line GROUP BY status`).toArray()) actual[`line:${r.s}`] = r.n;
      for (const r of sql.exec<{ s: string; n: number }>(`SELECT status AS s, COUNT(*) AS n FROM seats GROUP BY status`).toArray()) actual[`seat:${r.s}`] = r.n;
      for (const [name, n] of Object.entries(counted)) expect([name, n]).toEqual([name, actual[name] ?? 0]);
      expect(counted['line:admitted']).toBe(20);
      expect(counted['seat:available']).toBe(30);
    });
  });
});

describe('Postgres plan of the reconciliation read', () => {
  // A rush leaves many times more ended holds than live ones; every reconciliation reads the live.
  it('reads only the live reservations of the concert, not every reservation it ever had', async () => {
    const concert = await openConcert({ seats: 20 });
    const live = await Promise.all(Array.from({ length: 3 }, () => admittedUser(concert.id)));
    for (const [i, fan] of live.entries()) expect((await hold(concert.id, fan, [i + 1])).status).toBe(201);
    await directQuery(
      `INSERT INTO reservations (concert_id, user_id, status, amount, expires_at)
         SELECT $1, 'ended-' || g, CASE WHEN g % 2 = 0 THEN 'expired' ELSE 'cancelled' END, 500, now() FROM generate_series(1, 3000) g`,
      [concert.id],
    );
    const [row] = await directQuery<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${LIVE_RESERVATIONS_SQL}`, [concert.id]);
    const all = [...planNodes(row!['QUERY PLAN'][0].Plan)];
    expect(all.filter((node) => node['Relation Name'] === 'reservations' && node['Node Type'] === 'Seq Scan')).toEqual([]);
    const indexes = all.map((node) => node['Index Name']).filter((name) => name?.startsWith('reservations_'));
    expect(new Set(indexes)).toEqual(new Set(['reservations_concert_live_idx']));
    const rowsLookedAt = (node: PlanNode) => node['Actual Rows'] * node['Actual Loops'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0);
    const looked = all.reduce((sum, node) => sum + (node['Relation Name'] === 'reservations' || indexes.includes(node['Index Name']) ? rowsLookedAt(node) : 0), 0);
    expect(looked).toBeLessThanOrEqual(2 * live.length);
  });
});

