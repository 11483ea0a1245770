import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api, uniqueId } from '../helpers/api.ts';
import { admittedUser, hold, openConcert, room, seatMap } from '../helpers/concerts.ts';
import { clearFault, setFault, type FaultOptions } from '../helpers/faults.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance, expectSeatInvariants } from '../helpers/invariants.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { directQuery } from '../helpers/postgres.ts';

checkInvariantsAfterEach();

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
    const response = await withRepliesCut(() => hold(concert.id, fan, [4, 5]), { match: 'INSERT INTO reservation_seats' });
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

/** A fan of a warm room holding seat 3, with points to pay for it. */
async function fanWithHold() {
  const concert = await warmConcert();
  const fan = await admittedUser(concert.id);
  expect((await charge(fan.userToken, 10_000)).status).toBe(200);
  const held = await hold(concert.id, fan, [3]);
  expect(held.status).toBe(201);
  const { reservationId } = await held.json<{ reservationId: string }>();
  return { concert, fan, reservationId };
}

const paymentsOf = (reservationId: string) => directQuery(`SELECT id FROM payments WHERE reservation_id = $1`, [reservationId]);

/**
 * Waits for the room's map to show `seat` as `status`: the room learns of a lost commit in the
 * background. No deadline of its own; the test's timeout ends a wait that never ends.
 */
async function eventually(concertId: string, seat: number, status: string) {
  while ((await seatMap(concertId)).find((s) => s.seatNumber === seat)?.status !== status) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a payment whose reply is lost after it committed', () => {
  it('is read back and answered 201, the seats sold', async () => {
    const { concert, fan, reservationId } = await fanWithHold();
    const response = await withRepliesCut(() => pay(fan.userToken, reservationId), { match: 'INSERT INTO payments' });
    expect(response.status).toBe(201);
    const body = await response.json<{ reservationId: string; amount: number; balance: number; status: string }>();
    expect(body).toMatchObject({ reservationId, amount: 500, balance: 9_500, status: 'confirmed' });
    expect(await paymentsOf(reservationId)).toHaveLength(1);
    expect(await seatMap(concert.id, 'sold')).toHaveLength(1);
    expect(await expectLedgerMatchesBalance(fan.userId)).toBe(9_500);
    await expectSeatInvariants(concert.id);
  });

  it('has exactly one effect, and the retry with the same Idempotency-Key replays it', async () => {
    const { concert, fan, reservationId } = await fanWithHold();
    const key = uniqueId('pay-key');
    // The payment statement and the room's read-back both lose their replies.
    const first = await withRepliesCut(() => pay(fan.userToken, reservationId, { 'Idempotency-Key': key }), { match: 'payments' });
    expect(first.status).toBe(503);
    await first.arrayBuffer();

    const retry = await pay(fan.userToken, reservationId, { 'Idempotency-Key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('Idempotent-Replayed')).toBe('true');
    const replayed = await retry.text();
    expect(JSON.parse(replayed)).toMatchObject({ reservationId, amount: 500, balance: 9_500, status: 'confirmed' });
    expect(await (await pay(fan.userToken, reservationId, { 'Idempotency-Key': key })).text()).toBe(replayed);

    expect(await paymentsOf(reservationId)).toHaveLength(1);
    expect(await expectLedgerMatchesBalance(fan.userId)).toBe(9_500);
    await eventually(concert.id, 3, 'sold');
    await expectSeatInvariants(concert.id);
  });

  it('is answered ALREADY_PAID, not charged again, on a retry without a key', async () => {
    const { concert, fan, reservationId } = await fanWithHold();
    const first = await withRepliesCut(() => pay(fan.userToken, reservationId), { match: 'payments' });
    expect(first.status).toBe(503);
    await first.arrayBuffer();
    const retry = await pay(fan.userToken, reservationId);
    expect(retry.status).toBe(409);
    expect((await retry.json<{ code: string }>()).code).toBe('ALREADY_PAID');
    expect(await paymentsOf(reservationId)).toHaveLength(1);
    expect(await expectLedgerMatchesBalance(fan.userId)).toBe(9_500);
    await eventually(concert.id, 3, 'sold');
    await expectSeatInvariants(concert.id);
  });
});

/** The room's background resolution of a payment it could not confirm, run to its end (it first pauses 500 ms). */
const resolvePayment = (concertId: string, request: { userId: string; reservationId: string; fence: number | null }) =>
  runInDurableObject(room(concertId), (instance) =>
    (instance as unknown as { checkout: { resolvePaymentLater(r: typeof request): Promise<void> } }).checkout.resolvePaymentLater(request),
  );

describe('a refund racing a payment whose reply and read-back were lost', () => {
  it('leaves the seats available: the room follows Postgres (refunded), not the payment row', async () => {
    const { concert, fan, reservationId } = await fanWithHold();
    // Only statements that name payments lose their replies: the payment and the room's read-back of it.
    await setFault('neon', 'cut-replies', { match: 'payments' });
    try {
      const lost = await pay(fan.userToken, reservationId);
      expect(lost.status).toBe(503);
      await lost.arrayBuffer();
      // The fan looks, sees it paid, and refunds before the room has learnt of the payment.
      const read = await api(`/reservations/${reservationId}`, { headers: authed(fan.userToken) });
      expect(await read.json()).toMatchObject({ status: 'confirmed' });
      const refunded = await api(`/reservations/${reservationId}/refund`, { method: 'POST', headers: authed(fan.userToken) });
      expect(refunded.status).toBe(200);
      await refunded.arrayBuffer();
    } finally {
      await clearFault('neon');
    }
    // Postgres answers again: the room's resolution of the lost payment runs now.
    await resolvePayment(concert.id, { userId: fan.userId, reservationId, fence: null });

    expect(await reservationsOf(fan.userId)).toEqual([{ id: reservationId, status: 'refunded' }]);
    expect((await seatMap(concert.id)).find((s) => s.seatNumber === 3)?.status).toBe('available');
    await expectSeatInvariants(concert.id);
    // And anyone can have the seat again.
    const next = await admittedUser(concert.id);
    expect((await hold(concert.id, next, [3])).status).toBe(201);
    expect(await expectLedgerMatchesBalance(fan.userId)).toBe(10_000);
  });
});
