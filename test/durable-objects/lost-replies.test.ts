import { describe, expect, it } from 'vitest';
import { uniqueId } from '../helpers/api.ts';
import { admittedUser, hold, openConcert, seatMap } from '../helpers/concerts.ts';
import { clearFault, setFault, type FaultOptions } from '../helpers/faults.ts';
import { expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';

/** Runs `work` with the Neon adapter cutting replies (the statement still runs and commits). */
async function withRepliesCut<T>(work: () => Promise<T>, options: FaultOptions = {}): Promise<T> {
  await setFault('neon', 'cut-replies', options);
  try {
    return await work();
  } finally {
    await clearFault('neon');
  }
}

/** An open concert whose room has a warm Postgres connection, so a cut lands on a statement, not a connect. */
async function warmConcert() {
  const concert = await openConcert({ seats: 10 });
  expect((await hold(concert.id, await admittedUser(concert.id), [10])).status).toBe(201);
  return concert;
}

const reservationsOf = (userId: string) => directQuery<{ id: string; status: string }>(`SELECT id, status FROM reservations WHERE user_id = $1`, [userId]);

describe('a hold whose reply is lost after it committed', () => {
  it('is read back and answered 201 when Postgres can still be asked', async () => {
    const concert = await warmConcert();
    const fan = await admittedUser(concert.id);
    const response = await withRepliesCut(() => hold(concert.id, fan, [4, 5]), { match: 'INSERT INTO reservations' });
    expect(response.status).toBe(201);
    const body = await response.json<{ reservationId: string; status: string }>();
    expect(await reservationsOf(fan.userId)).toEqual([{ id: body.reservationId, status: 'held' }]);
    expect((await seatMap(concert.id, 'held')).map((s) => s.seatNumber)).toEqual([4, 5, 10]);
    await expectSeatInvariants(concert.id);
  });

  it('has exactly one effect, and the retry with the same Idempotency-Key replays it', async () => {
    const concert = await warmConcert();
    const fan = await admittedUser(concert.id);
    const key = uniqueId('hold-key');
    // Every statement about reservations loses its reply: the hold's own, and the room's read-back.
    const first = await withRepliesCut(() => hold(concert.id, fan, [7], { 'Idempotency-Key': key }), { match: 'reservations' });
    expect(first.status).toBe(503);
    await first.arrayBuffer();

    const retry = await hold(concert.id, fan, [7], { 'Idempotency-Key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('Idempotent-Replayed')).toBe('true');
    const replayed = await retry.json<{ reservationId: string; seats: { seatNumber: number }[] }>();
    expect(replayed.seats.map((s) => s.seatNumber)).toEqual([7]);
    expect(await reservationsOf(fan.userId)).toEqual([{ id: replayed.reservationId, status: 'held' }]);

    // The room kept the seat under the hold it could not confirm, so the map agrees with Postgres.
    expect((await seatMap(concert.id, 'held')).map((s) => s.seatNumber)).toEqual([7, 10]);
    await expectSeatInvariants(concert.id);

    const again = await hold(concert.id, fan, [7], { 'Idempotency-Key': key });
    expect(await again.text()).toBe(JSON.stringify(replayed));
  });
});
