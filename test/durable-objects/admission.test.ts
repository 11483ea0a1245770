import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { admit, joinLine, readAdmission } from '../../src/durable-objects/concert-room/line.ts';
import { DEFAULT_QUEUE_CONFIG } from '../../src/durable-objects/concert-room/model.ts';
import { uniqueId } from '../helpers/api.ts';
import { charge, pay } from '../helpers/balance.ts';
import { openQueueSocket } from '../helpers/queue-socket.ts';
import { createConcert, hold, joinOk, openConcert, queueStatus, room, stats, tokenFor, type AdmittedUser } from '../helpers/concerts.ts';
import { advanceRoomClock } from '../helpers/room-time.ts';

async function statusBody(queueToken: string) {
  const response = await queueStatus(queueToken);
  expect(response.status).toBe(200);
  return response.json<{ status: string; position: number }>();
}

describe('admit (the pure line functions)', () => {
  it('returns exactly the rows it admitted and counts exactly those in the window', async () => {
    const concert = await createConcert();
    await runInDurableObject(room(concert.id), (_instance, state) => {
      const sql = state.storage.sql;
      const now = Date.now();
      for (let i = 0; i < 1_000; i++) joinLine(sql, `pure-${i}`, now);
      const config = { ...DEFAULT_QUEUE_CONFIG, admitPerWindow: 250, windowSeconds: 600 };
      const admittedRows = () => sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM line WHERE status = 'admitted'`).one().n;

      expect(admit(sql, config, now - 60_000, false, now)).toBe(250);
      expect(admittedRows()).toBe(250);
      expect(readAdmission(sql)).toMatchObject({ admittedInWindow: 250, watermark: 250 });

      // The window is spent: nobody else until the next one.
      expect(admit(sql, config, now - 60_000, false, now + 1_000)).toBe(0);
      expect(admittedRows()).toBe(250);

      expect(admit(sql, config, now - 60_000, false, now + 600_000)).toBe(250);
      expect(admittedRows()).toBe(500);
      expect(readAdmission(sql)).toMatchObject({ admittedInWindow: 250, watermark: 500 });
    });
  });

  it('admits up to maxActive live sessions and no further', async () => {
    const concert = await createConcert();
    await runInDurableObject(room(concert.id), (_instance, state) => {
      const sql = state.storage.sql;
      const now = Date.now();
      for (let i = 0; i < 10; i++) joinLine(sql, `cap-${i}`, now);
      const config = { ...DEFAULT_QUEUE_CONFIG, admitPerWindow: 250, maxActive: 3 };
      expect(admit(sql, config, now - 1, false, now)).toBe(3);
      expect(admit(sql, config, now - 1, false, now)).toBe(0);
      expect(readAdmission(sql).admittedInWindow).toBe(3);
    });
  });
});

describe('admission through the API', () => {
  it('admits exactly admitPerWindow (250) of 1,000 sequential joiners after opening', async () => {
    const concert = await createConcert({ salesOpenAt: new Date(Date.now() - 60_000), queue: { admitPerWindow: 250, windowSeconds: 600 } });
    const prefix = uniqueId('seq');
    const bodies = [];
    for (let i = 0; i < 1_000; i++) bodies.push(await joinOk(concert.id, `${prefix}-${i}`));
    expect(bodies.filter((b) => b.status === 'admitted')).toHaveLength(250);
    expect(bodies.slice(0, 250).every((b) => b.status === 'admitted')).toBe(true);
    expect(bodies[250]).toMatchObject({ status: 'waiting', position: 1 });
    expect(await stats(concert.id)).toMatchObject({ admitted: 250, waiting: 750 });
  });

  it('admits exactly the budget with small windows', async () => {
    const concert = await createConcert({ salesOpenAt: new Date(Date.now() - 60_000), queue: { admitPerWindow: 3, windowSeconds: 600 } });
    const prefix = uniqueId('small');
    const bodies = [];
    for (let i = 0; i < 10; i++) bodies.push(await joinOk(concert.id, `${prefix}-${i}`));
    expect(bodies.map((b) => b.status)).toEqual([...Array(3).fill('admitted'), ...Array(7).fill('waiting')]);
    expect(await stats(concert.id)).toMatchObject({ admitted: 3, active: 3, waiting: 7 });
  });

  it('lets the next in line in at once, and tells them, when a payment frees a slot', async () => {
    const concert = await openConcert({ seats: 10, price: 100, queue: { admitPerWindow: 250, maxActive: 2 } });
    const users: (AdmittedUser & { position: number; status: string })[] = [];
    for (let i = 0; i < 3; i++) {
      const userId = uniqueId(`slot${i}`);
      const userToken = await tokenFor(userId);
      const body = await joinOk(concert.id, userId);
      users.push({ userId, userToken, queueToken: body.token, position: body.position, status: body.status });
    }
    expect(users.map((u) => u.status)).toEqual(['admitted', 'admitted', 'waiting']);
    const third = await openQueueSocket(users[2]!.queueToken);

    const first = users[0]!;
    expect((await charge(first.userToken, 1_000)).status).toBe(200);
    const held = await hold(concert.id, first, [1]);
    expect(held.status).toBe(201);
    const { reservationId } = await held.json<{ reservationId: string }>();
    expect((await pay(first.userToken, reservationId)).status).toBe(201);

    expect(await stats(concert.id)).toMatchObject({ admitted: 3, active: 2, completed: 1, waiting: 0 });
    await third.waitFor('admitted');
    expect(await statusBody(users[2]!.queueToken)).toMatchObject({ status: 'admitted', position: 0 });
    third.ws.close(1000, 'done');
  });
});

describe('announcements', () => {
  it('pushes to, and publishes for, people a join lets in', async () => {
    const concert = await createConcert({
      salesOpenAt: new Date(Date.now() - 60_000),
      queue: { admitPerWindow: 250, maxActive: 1, sessionSeconds: 60 },
    });
    const first = await joinOk(concert.id, uniqueId('first'));
    expect(first.status).toBe('admitted');
    const second = await joinOk(concert.id, uniqueId('second'));
    expect(second.status).toBe('waiting');
    const socket = await openQueueSocket(second.token);
    expect(await statusBody(second.token)).toMatchObject({ status: 'waiting', position: 1 });

    // The alarm that would end the first session is held back: the next join must move the line.
    await runInDurableObject(room(concert.id), (_instance, state) => state.storage.deleteAlarm());
    await advanceRoomClock(61_000);
    const third = await joinOk(concert.id, uniqueId('third'));
    expect(third).toMatchObject({ status: 'waiting', position: 1 });

    await socket.waitFor('admitted');
    expect(await statusBody(second.token)).toMatchObject({ status: 'admitted', position: 0 });
    expect(await statusBody(first.token)).toMatchObject({ status: 'expired' });
    socket.ws.close(1000, 'done');
  });
});

describe('re-joining', () => {
  it('keeps the place and hands back a token valid now when the first one has expired', async () => {
    const concert = await createConcert();
    await joinOk(concert.id, uniqueId('ahead'));
    const userId = uniqueId('early-bird');
    const original = await joinOk(concert.id, userId);
    expect(original.position).toBe(2);

    // Joined 13 hours ago: the token (12 h) has run out.
    await runInDurableObject(room(concert.id), (_instance, state) => {
      state.storage.sql.exec(`UPDATE line SET issued_at = issued_at - 13 * 3600 WHERE user_id = ?`, userId);
    });
    const again = await joinOk(concert.id, userId);
    expect(again.position).toBe(2);
    expect(await statusBody(again.token)).toMatchObject({ status: 'waiting', position: 2 });
  });
});
