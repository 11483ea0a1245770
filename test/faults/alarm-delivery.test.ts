// Alarms are delivered at least once, and not always on time: twice at once, late, or (a stale
// delivery) while a later alarm is armed. The room's handler must do each due thing once, and never
// end a hold before its time by Postgres's clock.
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ConcertRoom } from '../../src/durable-objects/concert-room/index.ts';
import { api } from '../helpers/api.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { admittedUser, hold, joinOk, openConcert, room, seatMap } from '../helpers/concerts.ts';
import { checkInvariantsAfterEach } from '../helpers/invariants.ts';
import { dueInPostgres } from '../helpers/expiry.ts';
import { directQuery } from '../helpers/postgres.ts';
import { advanceRoomClock } from '../helpers/room-time.ts';
import { sleep } from './helpers.ts';

checkInvariantsAfterEach();

/** Stops the runtime from delivering the room's alarm by itself, so the test delivers it. */
const silenceAlarm = (concertId: string) => runInDurableObject(room(concertId), (_instance, state) => state.storage.deleteAlarm());

/** Delivers the room's alarm `times` times at once, as the runtime would on a duplicate delivery. */
const deliverAlarm = (concertId: string, times = 1) =>
  runInDurableObject(room(concertId), (instance: ConcertRoom) => Promise.all(Array.from({ length: times }, () => instance.alarm())));

const alarmAt = (concertId: string) => runInDurableObject(room(concertId), (_instance, state) => state.storage.getAlarm());

const lineCounts = (concertId: string) =>
  runInDurableObject(room(concertId), (_instance, state) =>
    Object.fromEntries(state.storage.sql.exec<{ status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM line GROUP BY status`).toArray().map((r) => [r.status, r.n])),
  );

const statusesOf = async (ids: string[]) =>
  (await directQuery<{ id: string; status: string }>(`SELECT id, status FROM reservations WHERE id = ANY($1::uuid[]) ORDER BY id`, [ids])).map((r) => r.status);

async function heldId(response: Promise<Response>): Promise<string> {
  const r = await response;
  expect(r.status).toBe(201);
  return (await r.json<{ reservationId: string }>()).reservationId;
}

describe('the room’s alarm', () => {
  it('does each due thing once when delivered twice at the same time', async () => {
    // A minute per window and hold: nothing falls due while the test sets up, however slow the box.
    const concert = await openConcert({ seats: 10, queue: { admitPerWindow: 2, windowSeconds: 60, holdSeconds: 60 } });
    const [a, b] = await Promise.all([admittedUser(concert.id), admittedUser(concert.id)]);
    const holds = [await heldId(hold(concert.id, a, [1])), await heldId(hold(concert.id, b, [2]))];
    for (let i = 0; i < 3; i++) expect((await joinOk(concert.id, `waiting-${crypto.randomUUID()}`)).status).toBe('waiting');
    await silenceAlarm(concert.id);
    // The holds fall due (by both clocks) and a new admission window opens.
    await advanceRoomClock(61_000);
    await dueInPostgres({ concertId: concert.id });
    await deliverAlarm(concert.id, 2);
    expect(await statusesOf(holds)).toEqual(['expired', 'expired']);
    expect((await seatMap(concert.id, 'held')).length).toBe(0);
    // One window's worth admitted (2), not one per delivery (3, all that wait).
    expect(await lineCounts(concert.id)).toMatchObject({ admitted: 4, waiting: 1 });
  });

  it('does what fell due once, and admits one window, when delivered late', async () => {
    const concert = await openConcert({ seats: 10, queue: { admitPerWindow: 1, windowSeconds: 60, holdSeconds: 60 } });
    const fan = await admittedUser(concert.id);
    const id = await heldId(hold(concert.id, fan, [5]));
    for (let i = 0; i < 4; i++) expect((await joinOk(concert.id, `waiting-${crypto.randomUUID()}`)).status).toBe('waiting');
    await silenceAlarm(concert.id);
    // Three windows and the hold's expiry pass with no alarm.
    await advanceRoomClock(210_000);
    await dueInPostgres({ concertId: concert.id });
    const deliveredAt = Date.now();
    await deliverAlarm(concert.id);
    expect(await statusesOf([id])).toEqual(['expired']);
    expect(await seatMap(concert.id, 'held')).toEqual([]);
    // Missed windows are not made up in a burst: one window opens now, for one place.
    expect(await lineCounts(concert.id)).toMatchObject({ admitted: 2, waiting: 3 });
    // The next window is a whole window after this delivery, not due at once to catch up.
    const next = await alarmAt(concert.id);
    expect(next).toBeGreaterThanOrEqual(deliveredAt + 60_000 - 100);
    expect(next).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it('leaves a later hold alone when a stale delivery arrives while the later alarm is armed', async () => {
    const concert = await openConcert({ seats: 10, price: 300 });
    const [early, later] = await Promise.all([admittedUser(concert.id), admittedUser(concert.id)]);
    const earlyId = await heldId(hold(concert.id, early, [1]));
    await sleep(20);
    const laterResponse = await hold(concert.id, later, [2]);
    expect(laterResponse.status).toBe(201);
    const { reservationId: laterId, expiresAt } = await laterResponse.json<{ reservationId: string; expiresAt: string }>();
    // The early hold is cancelled: the alarm moves on to the later hold's expiry.
    expect((await api(`/reservations/${earlyId}`, { method: 'DELETE', headers: authed(early.userToken) })).status).toBe(204);
    expect(await alarmAt(concert.id)).toBe(Date.parse(expiresAt));
    // A delivery meant for the early hold arrives now. The room takes the armed time (the later
    // hold's expiry) as "now", but Postgres's clock decides: the later hold is not due.
    await deliverAlarm(concert.id);
    expect(await statusesOf([laterId])).toEqual(['held']);
    expect((await seatMap(concert.id, 'held')).map((s) => s.seatNumber)).toEqual([2]);
    expect(await alarmAt(concert.id)).toBe(Date.parse(expiresAt));
    // Its owner can still pay it.
    expect((await charge(later.userToken, 300)).status).toBe(200);
    const paid = await pay(later.userToken, laterId);
    expect(paid.status).toBe(201);
    await paid.arrayBuffer();
  });
});
