import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { adminHeaders, admittedUser, createConcert, hold, joinOk, openConcert, queueStatus, room, seatMap, tokenFor, uniqueFutureDay, type AdmittedUser } from '../helpers/concerts.ts';
import { dueInPostgres } from '../helpers/expiry.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { expectSeatInvariants, postgresSeats } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { HOLD_EXPIRY_RETRY_MS } from '../../src/durable-objects/concert-room/index.ts';
import { payBehindTheRoom } from './behind-the-room.ts';

interface HoldBody {
  reservationId: string;
  concertId: string;
  seats: { seatNumber: number; price: number }[];
  amount: number;
  status: string;
  expiresAt: string;
}

async function holdOk(concertId: string, user: AdmittedUser, seats: number[]): Promise<HoldBody> {
  const response = await hold(concertId, user, seats);
  if (response.status !== 201) throw new Error(`hold failed: ${response.status} ${await response.text()}`);
  return response.json<HoldBody>();
}

const statusOfSeat = async (concertId: string, seatNumber: number) => (await seatMap(concertId)).find((s) => s.seatNumber === seatNumber)?.status;

const reservationStatus = async (id: string) =>
  (await directQuery<{ status: string }>(`SELECT status FROM reservations WHERE id = $1`, [id]))[0]?.status;

describe('POST /reservations', () => {
  it('holds seats and answers with the contract’s shape', async () => {
    const concert = await openConcert({ seats: 10, price: 700 });
    const user = await admittedUser(concert.id);
    const body = await holdOk(concert.id, user, [2, 3]);
    expect(body).toMatchObject({ concertId: concert.id, amount: 1400, status: 'held' });
    expect(body.seats.map((s) => [s.seatNumber, s.price])).toEqual([[2, 700], [3, 700]]);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now() + 290_000);
    expect(await reservationStatus(body.reservationId)).toBe('held');
    await expectSeatInvariants(concert.id);
  });

  it('accepts the single-seat form {seatNumber}', async () => {
    const concert = await openConcert({ seats: 5 });
    const user = await admittedUser(concert.id);
    const response = await api('/reservations', {
      method: 'POST',
      headers: { Authorization: `Bearer ${user.userToken}`, 'Queue-Token': user.queueToken },
      json: { concertId: concert.id, seatNumber: 4 },
    });
    expect(response.status).toBe(201);
    expect((await response.json<HoldBody>()).seats).toHaveLength(1);
  });

  it('answers a later, lone hold of a held seat with 409 naming it', async () => {
    const concert = await openConcert({ seats: 10 });
    await holdOk(concert.id, await admittedUser(concert.id), [5]);
    const problem = await expectProblem(await hold(concert.id, await admittedUser(concert.id), [5, 6]), 409, 'SEAT_UNAVAILABLE');
    expect(problem.seats).toEqual([5]);
    expect(await statusOfSeat(concert.id, 6)).toBe('available');
  });

  it('is all-or-nothing: B asking for [2, 3] while A holds [1, 2] gets 409 and seat 3 stays free', async () => {
    const concert = await openConcert({ seats: 10 });
    await holdOk(concert.id, await admittedUser(concert.id, 'a'), [1, 2]);
    const problem = await expectProblem(await hold(concert.id, await admittedUser(concert.id, 'b'), [2, 3]), 409, 'SEAT_UNAVAILABLE');
    expect(problem.seats).toEqual([2]);
    expect(await statusOfSeat(concert.id, 3)).toBe('available');
    expect((await postgresSeats(concert.id)).find((s) => s.seatNumber === 3)?.status).toBe('available');
    await expectSeatInvariants(concert.id);
  });

  it('enforces 4 seats per person across holds with 422 HOLD_LIMIT', async () => {
    const concert = await openConcert({ seats: 10 });
    const user = await admittedUser(concert.id);
    await holdOk(concert.id, user, [1, 2, 3]);
    const problem = await expectProblem(await hold(concert.id, user, [4, 5]), 422, 'HOLD_LIMIT');
    expect(problem).toMatchObject({ limit: 4, owned: 3 });
    await holdOk(concert.id, user, [4]);
    await expectProblem(await hold(concert.id, user, [5]), 422, 'HOLD_LIMIT');
  });

  it('rejects bad bodies with 400 and unknown seats with 404', async () => {
    const concert = await openConcert({ seats: 10 });
    const user = await admittedUser(concert.id);
    for (const seats of [[], [1, 1], [1, 2, 3, 4, 5], [0], [1.5]]) {
      await expectProblem(await hold(concert.id, user, seats), 400, 'VALIDATION_FAILED');
    }
    const problem = await expectProblem(await hold(concert.id, user, [9, 11]), 404, 'SEAT_NOT_FOUND');
    expect(problem.seats).toEqual([11]);
    expect(await statusOfSeat(concert.id, 9)).toBe('available');
  });

  it('refuses a user who is still waiting with 403 NOT_ADMITTED', async () => {
    const concert = await createConcert({ seats: 10 });
    const userId = `waiting-${crypto.randomUUID()}`;
    const { token } = await joinOk(concert.id, userId);
    const response = await hold(concert.id, { userId, userToken: await tokenFor(userId), queueToken: token }, [1]);
    await expectProblem(response, 403, 'NOT_ADMITTED');
  });

  it('refuses a user whose session has ended with 403 NOT_ADMITTED', async () => {
    const concert = await openConcert({ seats: 10, queue: { sessionSeconds: 30 } });
    const user = await admittedUser(concert.id);
    await runDurableObjectAlarm(room(concert.id)); // the session's end
    const problem = await expectProblem(await hold(concert.id, user, [1]), 403, 'NOT_ADMITTED');
    expect(problem.detail).toMatch(/ended/);
  });

  it('refuses another user’s or another concert’s queue token with 403 QUEUE_TOKEN_MISMATCH', async () => {
    const concert = await openConcert({ seats: 10 });
    const other = await openConcert({ seats: 10 });
    const alice = await admittedUser(concert.id, 'alice');
    const bob = await admittedUser(concert.id, 'bob');
    await expectProblem(await hold(concert.id, { ...bob, queueToken: alice.queueToken }, [1]), 403, 'QUEUE_TOKEN_MISMATCH');
    const elsewhere = await admittedUser(other.id);
    await expectProblem(await hold(concert.id, elsewhere, [1]), 403, 'QUEUE_TOKEN_MISMATCH');
    expect(await statusOfSeat(concert.id, 1)).toBe('available');
  });

  it('answers 503 and leaves no trace when the Neon adapter refuses mid-hold', async () => {
    const concert = await openConcert({ seats: 10 });
    const user = await admittedUser(concert.id);
    await setFault('neon', 'refuse');
    let response: Response;
    try {
      response = await hold(concert.id, user, [8]);
    } finally {
      await clearFault('neon');
    }
    await expectProblem(response, 503, 'DEPENDENCY_UNAVAILABLE');
    expect(response.headers.get('Retry-After')).toBeTruthy();
    expect(await statusOfSeat(concert.id, 8)).toBe('available');
    expect(await directQuery(`SELECT 1 FROM reservations WHERE user_id = $1`, [user.userId])).toEqual([]);
    await holdOk(concert.id, user, [8]); // and the room works again
    await expectSeatInvariants(concert.id);
  });
});

describe('hold expiry', () => {
  it('frees an unpaid hold when the alarm runs, so the seat can be held again; three runs equal one', async () => {
    const concert = await openConcert({ seats: 10 });
    const first = await holdOk(concert.id, await admittedUser(concert.id), [4]);
    const stub = room(concert.id);
    await dueInPostgres({ reservationId: first.reservationId });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await reservationStatus(first.reservationId)).toBe('expired');
    expect(await statusOfSeat(concert.id, 4)).toBe('available');
    const afterOne = { seats: await seatMap(concert.id), pg: await postgresSeats(concert.id) };
    await runDurableObjectAlarm(stub);
    await runDurableObjectAlarm(stub);
    expect({ seats: await seatMap(concert.id), pg: await postgresSeats(concert.id) }).toEqual(afterOne);
    expect(await reservationStatus(first.reservationId)).toBe('expired');
    await holdOk(concert.id, await admittedUser(concert.id), [4]);
    await expectSeatInvariants(concert.id);
  });

  it('never frees a hold that Postgres shows paid: the seat becomes sold and the buyer’s session ends', async () => {
    const concert = await openConcert({ seats: 10 });
    const buyer = await admittedUser(concert.id);
    const held = await holdOk(concert.id, buyer, [6]);
    await payBehindTheRoom(held.reservationId); // the payment's reply was lost, the room never heard
    await dueInPostgres({ reservationId: held.reservationId }); // would be due, were it not paid
    await runDurableObjectAlarm(room(concert.id));
    expect(await reservationStatus(held.reservationId)).toBe('confirmed');
    expect(await statusOfSeat(concert.id, 6)).toBe('sold');
    expect(await (await queueStatus(buyer.queueToken)).json()).toMatchObject({ status: 'completed' });
    await expectSeatInvariants(concert.id);
  });

  it('never expires a hold before its expires_at by Postgres’s clock, however early the alarm runs', async () => {
    const concert = await openConcert({ seats: 10 });
    const held = await holdOk(concert.id, await admittedUser(concert.id), [3]);
    const stub = room(concert.id);
    // The room takes the armed time (the hold's expiry) as "now"; Postgres's clock says not yet.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await reservationStatus(held.reservationId)).toBe('held');
    expect(await statusOfSeat(concert.id, 3)).toBe('held');
    // ...so the alarm stays armed for it, and it is paid or expired in its own time.
    const alarmAt = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(alarmAt).toBe(Date.parse(held.expiresAt));
    await dueInPostgres({ reservationId: held.reservationId });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await reservationStatus(held.reservationId)).toBe('expired');
    expect(await statusOfSeat(concert.id, 3)).toBe('available');
    await expectSeatInvariants(concert.id);
  });

  it('keeps the seats held and arms a retry when Postgres is unreachable at expiry, and the retry expires them', async () => {
    const concert = await openConcert({ seats: 10, queue: { holdSeconds: 1 } });
    const held = await holdOk(concert.id, await admittedUser(concert.id), [2]);
    const stub = room(concert.id);
    const dueAt = Date.parse(held.expiresAt);
    const alarmAt = () => runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(await alarmAt()).toBe(dueAt);
    await setFault('neon', 'refuse');
    let retryAt: number | null = null;
    let failedAt: number;
    try {
      // The real alarm fires at the hold's expiry, finds Postgres unreachable and must not throw
      // (the runtime gives up on a throwing alarm after a few tries) but arm its own retry.
      for (;;) {
        retryAt = await alarmAt();
        if (retryAt !== null && retryAt > dueAt) break; // (null while the alarm is running)
        if (Date.now() > dueAt + 10_000) throw new Error('the alarm never ran');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      failedAt = Date.now();
      expect(await statusOfSeat(concert.id, 2)).toBe('held');
      expect(await reservationStatus(held.reservationId)).toBe('held');
    } finally {
      await clearFault('neon');
    }
    expect(retryAt).toBeGreaterThanOrEqual(failedAt + HOLD_EXPIRY_RETRY_MS - 1_000);
    expect(retryAt).toBeLessThanOrEqual(failedAt + HOLD_EXPIRY_RETRY_MS);
    // The retry fires by itself once Postgres is back and expires the hold.
    for (let i = 0; i < 100 && (await reservationStatus(held.reservationId)) !== 'expired'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await reservationStatus(held.reservationId)).toBe('expired');
    expect(await statusOfSeat(concert.id, 2)).toBe('available');
    await expectSeatInvariants(concert.id);
  });

  it('changes nothing when the room is evicted between hold and expiry', async () => {
    const concert = await openConcert({ seats: 10 });
    const held = await holdOk(concert.id, await admittedUser(concert.id), [9]);
    const stub = room(concert.id);
    await evictDurableObject(stub);
    expect(await statusOfSeat(concert.id, 9)).toBe('held');
    await dueInPostgres({ reservationId: held.reservationId });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await reservationStatus(held.reservationId)).toBe('expired');
    expect(await statusOfSeat(concert.id, 9)).toBe('available');
    await expectSeatInvariants(concert.id);
  });

  it('never lets a hold outlive its session', async () => {
    const concert = await openConcert({ seats: 10, queue: { sessionSeconds: 60, holdSeconds: 300 } });
    const user = await admittedUser(concert.id);
    const held = await holdOk(concert.id, user, [1]);
    const status = await (await api('/queue/status', { headers: { 'Queue-Token': user.queueToken } })).json<{ sessionExpiresAt: string }>();
    expect(Date.parse(held.expiresAt)).toBeLessThanOrEqual(Date.parse(status.sessionExpiresAt));
  });
});

describe('POST /admin/concerts/:id/reconcile', () => {
  it('repairs the room from Postgres and reports each seat that differed', async () => {
    const concert = await openConcert({ seats: 5 });
    await holdOk(concert.id, await admittedUser(concert.id), [1]);
    // Postgres changes behind the room's back: seat 1's hold is gone, seat 4 was sold elsewhere.
    await directQuery(`UPDATE reservations SET status = 'cancelled' WHERE concert_id = $1`, [concert.id]);
    await directQuery(
      `UPDATE reservation_seats SET active = false WHERE seat_id IN (SELECT id FROM seats WHERE concert_id = $1)`,
      [concert.id],
    );
    await directQuery(`UPDATE seats SET status = CASE seat_number WHEN 4 THEN 'sold' ELSE 'available' END WHERE concert_id = $1`, [
      concert.id,
    ]);
    const response = await api(`/admin/concerts/${concert.id}/reconcile`, { method: 'POST', headers: adminHeaders() });
    expect(response.status).toBe(200);
    const report = await response.json<{ changed: number; differences: { seatNumber: number; room: { status: string }; postgres: { status: string } }[] }>();
    expect(report.changed).toBe(2);
    expect(report.differences.map((d) => [d.seatNumber, d.room.status, d.postgres.status])).toEqual([
      [1, 'held', 'available'],
      [4, 'available', 'sold'],
    ]);
    expect(await seatMap(concert.id)).toEqual((await postgresSeats(concert.id)).map((s) => ({ ...s, section: 'general', price: 500 })));
    const again = await api(`/admin/concerts/${concert.id}/reconcile`, { method: 'POST', headers: adminHeaders() });
    expect(await again.json()).toMatchObject({ changed: 0 });
  });
});

describe('reading and cancelling reservations', () => {
  it('shows a reservation to its owner only and lets only the owner cancel it', async () => {
    const concert = await openConcert({ seats: 10 });
    const alice = await admittedUser(concert.id, 'alice');
    const bob = await admittedUser(concert.id, 'bob');
    const held = await holdOk(concert.id, alice, [3, 4]);
    const read = (user: AdmittedUser) => api(`/reservations/${held.reservationId}`, { headers: { Authorization: `Bearer ${user.userToken}` } });
    const mine = await read(alice);
    expect(mine.status).toBe(200);
    expect(await mine.json()).toMatchObject({ reservationId: held.reservationId, status: 'held', amount: 1000, seats: [{ seatNumber: 3 }, { seatNumber: 4 }] });
    await expectProblem(await read(bob), 404, 'RESERVATION_NOT_FOUND');
    const cancel = (user: AdmittedUser) =>
      api(`/reservations/${held.reservationId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${user.userToken}` } });
    await expectProblem(await cancel(bob), 404, 'RESERVATION_NOT_FOUND');
    expect(await statusOfSeat(concert.id, 3)).toBe('held');
    expect((await cancel(alice)).status).toBe(204);
    expect((await cancel(alice)).status).toBe(204);
    expect(await reservationStatus(held.reservationId)).toBe('cancelled');
    expect(await statusOfSeat(concert.id, 3)).toBe('available');
    await expectSeatInvariants(concert.id);
  });

  it('lists only available seats for the seed’s GET /reservations/:date', async () => {
    const date = uniqueFutureDay();
    const concert = await openConcert({ seats: 6, date });
    await holdOk(concert.id, await admittedUser(concert.id), [1, 2]);
    const sold = await holdOk(concert.id, await admittedUser(concert.id), [5]);
    await directQuery(`UPDATE reservations SET status = 'confirmed', confirmed_at = now() WHERE id = $1`, [sold.reservationId]);
    await directQuery(`UPDATE seats SET status = 'sold' WHERE concert_id = $1 AND seat_number = 5`, [concert.id]);
    await room(concert.id).reconcile();
    const response = await api(`/reservations/${date}?concertId=${concert.id}`);
    expect(response.status).toBe(200);
    const body = await response.json<{ seats: { seatNumber: number }[]; available: number }>();
    expect(body.seats.map((s) => s.seatNumber)).toEqual([3, 4, 6]);
    expect(body.available).toBe(3);
  });

  it('answers 400 for a bad date and 404 for a date without concerts', async () => {
    await expectProblem(await api('/reservations/2026-02-30'), 400, 'VALIDATION_FAILED');
    await expectProblem(await api('/reservations/yesterday'), 400, 'VALIDATION_FAILED');
    await expectProblem(await api('/reservations/1999-01-01'), 404, 'CONCERT_NOT_FOUND');
  });
});
