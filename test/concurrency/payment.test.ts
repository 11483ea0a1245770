import { runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { balanceOf, charge, pay, statusCounts } from '../helpers/balance.ts';
import { admittedUser, hold, joinOk, openConcert, queueStatus, room, seatMap, stats, type AdmittedUser } from '../helpers/concerts.ts';
import { openDirectClient, waitForLockWaiter } from '../helpers/direct-client.ts';
import { dueInPostgres } from '../helpers/expiry.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance, expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { redisCommand } from '../helpers/redis.ts';
import { eventually } from '../faults/helpers.ts';

checkInvariantsAfterEach();

async function heldReservation(concertId: string, user: AdmittedUser, seats: number[]): Promise<string> {
  const response = await hold(concertId, user, seats);
  if (response.status !== 201) throw new Error(`hold failed: ${response.status} ${await response.text()}`);
  return (await response.json<{ reservationId: string }>()).reservationId;
}

const paymentsOf = (reservationId: string) => directQuery(`SELECT id FROM payments WHERE reservation_id = $1`, [reservationId]);
const reservationStatus = async (id: string) =>
  (await directQuery<{ status: string }>(`SELECT status FROM reservations WHERE id = $1`, [id]))[0]?.status;

describe('POST /payment', () => {
  it('confirms a hold, debits the balance once, sells the seats and ends the session', async () => {
    const concert = await openConcert({ seats: 10, price: 300 });
    const user = await admittedUser(concert.id);
    await charge(user.userToken, 1000);
    const reservationId = await heldReservation(concert.id, user, [1, 2]);
    const response = await pay(user.userToken, reservationId);
    expect(response.status).toBe(201);
    const body = await response.json<Record<string, unknown>>();
    expect(body).toMatchObject({ reservationId, amount: 600, balance: 400, status: 'confirmed', paymentId: expect.any(String) });
    expect((await seatMap(concert.id)).filter((s) => s.status === 'sold').map((s) => s.seatNumber)).toEqual([1, 2]);
    expect(await (await queueStatus(user.queueToken)).json()).toMatchObject({ status: 'completed' });
    await expectProblem(await hold(concert.id, user, [3]), 403, 'NOT_ADMITTED');
    await expectProblem(await pay(user.userToken, reservationId), 409, 'ALREADY_PAID');
    expect(await expectLedgerMatchesBalance(user.userId)).toBe(400);
    expect(await stats(concert.id)).toMatchObject({ revenue: 600, completed: 1, seats: { sold: 2, held: 0, available: 8 } });
    await expectSeatInvariants(concert.id);
  });

  // 50, not 100: payments are limited to 60 per user per 10 s (wrangler.toml); past it the race is
  // between 429s, not payments.
  it('lets exactly one of 50 concurrent payments of one reservation through', async () => {
    const concert = await openConcert({ seats: 10, price: 500 });
    const user = await admittedUser(concert.id);
    await charge(user.userToken, 100_000);
    const reservationId = await heldReservation(concert.id, user, [4]);
    const responses = await Promise.all(Array.from({ length: 50 }, () => pay(user.userToken, reservationId)));
    const counts = await statusCounts(responses);
    expect(counts[201]).toBe(1);
    expect(counts[409]).toBe(49);
    expect(await paymentsOf(reservationId)).toHaveLength(1);
    expect(await balanceOf(user.userToken)).toBe(99_500);
    const debits = await directQuery(`SELECT 1 FROM balance_ledger WHERE user_id = $1 AND kind = 'payment'`, [user.userId]);
    expect(debits).toHaveLength(1);
    expect(await expectLedgerMatchesBalance(user.userId)).toBe(99_500);
    await expectSeatInvariants(concert.id);
  });

  it('pays exactly 2 of 4 concurrent holds when the balance covers 2', async () => {
    const concert = await openConcert({ seats: 10, price: 500 });
    const user = await admittedUser(concert.id);
    await charge(user.userToken, 1000);
    const reservations = [];
    for (const seat of [1, 2, 3, 4]) reservations.push(await heldReservation(concert.id, user, [seat]));
    const counts = await statusCounts(await Promise.all(reservations.map((id) => pay(user.userToken, id))));
    expect(counts).toEqual({ 201: 2, 402: 2 });
    expect(await balanceOf(user.userToken)).toBe(0);
    expect(await expectLedgerMatchesBalance(user.userId)).toBe(0);
    const statuses = await Promise.all(reservations.map(reservationStatus));
    expect(statuses.filter((s) => s === 'confirmed')).toHaveLength(2);
    expect(statuses.filter((s) => s === 'held')).toHaveLength(2);
    await expectSeatInvariants(concert.id);
  });

  it('refuses payment after expiry with 409 and debits nothing', async () => {
    const concert = await openConcert({ seats: 10, price: 500 });
    const user = await admittedUser(concert.id);
    await charge(user.userToken, 1000);
    const reservationId = await heldReservation(concert.id, user, [5]);
    await dueInPostgres({ reservationId });
    await runDurableObjectAlarm(room(concert.id));
    await expectProblem(await pay(user.userToken, reservationId), 409, 'RESERVATION_EXPIRED');
    expect(await balanceOf(user.userToken)).toBe(1000);
    expect(await paymentsOf(reservationId)).toEqual([]);
    await expectSeatInvariants(concert.id);
  });

  it('answers another user paying, cancelling or reading my reservation with 404 and changes nothing', async () => {
    const concert = await openConcert({ seats: 10, price: 500 });
    const alice = await admittedUser(concert.id, 'alice');
    const bob = await admittedUser(concert.id, 'bob');
    await charge(alice.userToken, 1000);
    await charge(bob.userToken, 1000);
    const reservationId = await heldReservation(concert.id, alice, [7]);
    const asBob = { Authorization: `Bearer ${bob.userToken}` };
    await expectProblem(await pay(bob.userToken, reservationId), 404, 'RESERVATION_NOT_FOUND');
    await expectProblem(await api(`/reservations/${reservationId}`, { method: 'DELETE', headers: asBob }), 404, 'RESERVATION_NOT_FOUND');
    await expectProblem(await api(`/reservations/${reservationId}`, { headers: asBob }), 404, 'RESERVATION_NOT_FOUND');
    await expectProblem(await api(`/balance/${alice.userId}`, { headers: asBob }), 403, 'FORBIDDEN');
    expect(await reservationStatus(reservationId)).toBe('held');
    expect(await balanceOf(alice.userToken)).toBe(1000);
    expect(await balanceOf(bob.userToken)).toBe(1000);
  });

  it('leaves no lock in Redis after a 404 for a made-up or someone else’s reservation, and never stands in the owner’s way', async () => {
    const concert = await openConcert({ seats: 10, price: 500 });
    const alice = await admittedUser(concert.id, 'alice');
    const bob = await admittedUser(concert.id, 'bob');
    await charge(alice.userToken, 1000);
    const reservationId = await heldReservation(concert.id, alice, [3]);
    const madeUp = crypto.randomUUID();
    // Both answers come from the read that runs beside the locks; the locks taken meanwhile are
    // released right after the response.
    await expectProblem(await pay(bob.userToken, madeUp), 404, 'RESERVATION_NOT_FOUND');
    await expectProblem(await pay(bob.userToken, reservationId), 404, 'RESERVATION_NOT_FOUND');
    const bobsKeys = [`lock:{balance:${bob.userId}}`, `lock:{balance:${bob.userId}}:with:payment:${madeUp}`, `lock:{balance:${bob.userId}}:with:payment:${reservationId}`];
    await eventually('the locks of the 404s released', async () => ((await redisCommand('EXISTS', ...bobsKeys)) === 0 ? true : undefined));
    expect(await redisCommand('EXISTS', `lock:{balance:${alice.userId}}:with:payment:${reservationId}`)).toBe(0);
    const paid = await pay(alice.userToken, reservationId);
    expect(paid.status).toBe(201);
    await paid.arrayBuffer();
    expect(await balanceOf(alice.userToken)).toBe(500);
  });

  it('tells waiting users sold_out once the last seat is paid', async () => {
    const concert = await openConcert({ seats: 1, price: 100, queue: { admitPerWindow: 1 } });
    const buyer = await admittedUser(concert.id);
    const waiting = await joinOk(concert.id, `late-${crypto.randomUUID()}`);
    expect(waiting.status).toBe('waiting');
    await charge(buyer.userToken, 100);
    expect((await pay(buyer.userToken, await heldReservation(concert.id, buyer, [1]))).status).toBe(201);
    expect(await (await queueStatus(waiting.token)).json()).toMatchObject({ status: 'sold_out' });
    expect(await stats(concert.id)).toMatchObject({ soldOut: true, seats: { sold: 1, available: 0, held: 0 } });
  });

  it('accepts POST /payments as an alias', async () => {
    const concert = await openConcert({ seats: 10, price: 100 });
    const user = await admittedUser(concert.id);
    await charge(user.userToken, 100);
    const reservationId = await heldReservation(concert.id, user, [9]);
    expect((await pay(user.userToken, reservationId, {}, '/payments')).status).toBe(201);
  });
});

/**
 * A payment and the expiry alarm race for one hold whose `expires_at` falls due (by Postgres's clock)
 * between the two statements' starts, so both are entitled to it when they start. A second connection
 * holds the reservation's row lock while both queue behind it in the order the test chooses; the
 * row lock, not chance, then decides which one wins.
 */
async function raceForTheRowLock(first: 'payment' | 'expiry') {
  const concert = await openConcert({ seats: 5, price: 500 });
  const user = await admittedUser(concert.id);
  await charge(user.userToken, 500);
  const reservationId = await heldReservation(concert.id, user, [1]);
  const blocker = await openDirectClient();
  let payment: Promise<Response> | undefined;
  let alarm: Promise<boolean> | undefined;
  try {
    // Committed first: a statement only queues for the lock of a row its WHERE matches as committed.
    await blocker.query(`UPDATE reservations SET expires_at = clock_timestamp() + interval '1 second' WHERE id = $1`, [reservationId]);
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE`, [reservationId]);
    const startPayment = async () => {
      payment = pay(user.userToken, reservationId);
      await waitForLockWaiter('INSERT INTO payments');
    };
    const startExpiry = async () => {
      // By now the hold is due by Postgres's clock; the room runs its alarm early, so it is due there too.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      alarm = runDurableObjectAlarm(room(concert.id));
      await waitForLockWaiter(`UPDATE reservations SET status = $2`);
    };
    if (first === 'payment') {
      await startPayment();
      await startExpiry();
    } else {
      await startExpiry();
      await startPayment();
    }
    await blocker.query('COMMIT');
  } finally {
    await blocker.close();
  }
  const response = await payment!;
  expect(await alarm!).toBe(true);
  return { concert, user, reservationId, response };
}

describe('a payment racing the expiry alarm, each ordering forced', () => {
  it('confirms the payment, sells the seat and ends the session when the payment locks the row first', async () => {
    const { concert, user, reservationId, response } = await raceForTheRowLock('payment');
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ reservationId, amount: 500, balance: 0, status: 'confirmed' });
    expect(await reservationStatus(reservationId)).toBe('confirmed');
    expect(await paymentsOf(reservationId)).toHaveLength(1);
    expect(await balanceOf(user.userToken)).toBe(0);
    // The alarm found it paid: the seat is sold, not released.
    expect((await seatMap(concert.id)).find((s) => s.seatNumber === 1)?.status).toBe('sold');
    expect(await (await queueStatus(user.queueToken)).json()).toMatchObject({ status: 'completed' });
    await expectSeatInvariants(concert.id);
  });

  it('expires the hold, frees the seat and refuses the payment with nothing charged when expiry locks the row first', async () => {
    const { concert, user, reservationId, response } = await raceForTheRowLock('expiry');
    await expectProblem(response, 409, 'RESERVATION_EXPIRED');
    expect(await reservationStatus(reservationId)).toBe('expired');
    expect(await paymentsOf(reservationId)).toEqual([]);
    expect(await balanceOf(user.userToken)).toBe(500);
    expect((await seatMap(concert.id)).find((s) => s.seatNumber === 1)?.status).toBe('available');
    expect(await (await queueStatus(user.queueToken)).json()).toMatchObject({ status: 'admitted' });
    await expectSeatInvariants(concert.id);
  });
});

describe('Idempotency-Key', () => {
  // 25 + 25 stays under the per-user payment limit (60 per 10 s), which would answer 429 instead.
  it('gives one effect for the same key sent 25 times at once and 25 times after, with identical replays', async () => {
    const concert = await openConcert({ seats: 10, price: 500 });
    const user = await admittedUser(concert.id);
    await charge(user.userToken, 2000);
    const reservationId = await heldReservation(concert.id, user, [3]);
    const key = { 'Idempotency-Key': `pay-${crypto.randomUUID()}` };
    const concurrent = await Promise.all(Array.from({ length: 25 }, () => pay(user.userToken, reservationId, key)));
    const concurrentBodies = await Promise.all(concurrent.map(async (r) => ({ status: r.status, body: await r.text() })));
    // Duplicates that arrive after the first finished get its stored response replayed, so there
    // may be several 201s, but they must be one and the same response.
    const winners = concurrentBodies.filter((r) => r.status === 201);
    expect(winners.length).toBeGreaterThanOrEqual(1);
    expect(new Set(winners.map((r) => r.body)).size).toBe(1);
    const conflictCodes = new Set(concurrentBodies.filter((r) => r.status === 409).map((r) => (JSON.parse(r.body) as { code: string }).code));
    expect([...conflictCodes].every((code) => code === 'REQUEST_IN_PROGRESS' || code === 'PAYMENT_IN_PROGRESS')).toBe(true);
    expect(concurrentBodies.filter((r) => r.status !== 201 && r.status !== 409)).toEqual([]);
    const later = await Promise.all(Array.from({ length: 25 }, () => pay(user.userToken, reservationId, key)));
    const laterBodies = await Promise.all(later.map(async (r) => ({ status: r.status, body: await r.text(), replayed: r.headers.get('Idempotent-Replayed') })));
    expect(new Set(laterBodies.map((r) => `${r.status} ${r.body}`))).toEqual(new Set([`201 ${winners[0]!.body}`]));
    expect(laterBodies.every((r) => r.replayed === 'true')).toBe(true);
    expect(await paymentsOf(reservationId)).toHaveLength(1);
    expect(await balanceOf(user.userToken)).toBe(1500);
  });

  it('replays charges, refuses a reused key with another body (422) and an over-long key (400)', async () => {
    const concert = await openConcert({ seats: 1 });
    const user = await admittedUser(concert.id);
    const key = { 'Idempotency-Key': `charge-${crypto.randomUUID()}` };
    const first = await charge(user.userToken, 70, key);
    const again = await charge(user.userToken, 70, key);
    expect(await again.text()).toBe(await first.text());
    expect(await balanceOf(user.userToken)).toBe(70);
    await expectProblem(await charge(user.userToken, 71, key), 422, 'IDEMPOTENCY_KEY_REUSED');
    await expectProblem(await charge(user.userToken, 1, { 'Idempotency-Key': 'k'.repeat(256) }), 400, 'VALIDATION_FAILED');
    expect(await balanceOf(user.userToken)).toBe(70);
  });

  it('replays a hold instead of holding twice', async () => {
    const concert = await openConcert({ seats: 10 });
    const user = await admittedUser(concert.id);
    const key = { 'Idempotency-Key': `hold-${crypto.randomUUID()}` };
    const first = await hold(concert.id, user, [2], key);
    const second = await hold(concert.id, user, [2], key);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(await second.text()).toBe(await first.text());
    expect(await directQuery(`SELECT 1 FROM reservations WHERE user_id = $1`, [user.userId])).toHaveLength(1);
  });
});
