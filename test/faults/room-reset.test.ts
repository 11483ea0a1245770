// The room reset (ctx.abort(): a crash, a deploy) at the two worst moments: between its hold decision
// and the Postgres write, and between a commit and the room's own update. DESIGN.md §5: "If the room
// restarts mid-way, its reconciliation repairs it."
import { describe, expect, it } from 'vitest';
import { api, uniqueId } from '../helpers/api.ts';
import { charge, pay } from '../helpers/balance.ts';
import { admittedUser, hold, queueStatus, seatMap } from '../helpers/concerts.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { checkInvariantsAfterEach, expectLedgerMatchesBalance, expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { eventually, reservationsOf, resetRoom, roomHolds, warmConcert } from './helpers.ts';

checkInvariantsAfterEach();

/** What a client whose request was running in the room when it was reset is told: fail closed, retry. */
async function expectResetAnswer(response: Response) {
  await expectProblem(response, 503, 'DEPENDENCY_UNAVAILABLE');
  expect(Number(response.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
}

/** Waits for the user's (first) reservation to be in Postgres. */
const committedHoldOf = (userId: string) =>
  eventually('the hold committed in Postgres', async () => (await reservationsOf(userId))[0]);

const heldSeatsInRoom = async (concertId: string) => (await seatMap(concertId, 'held')).map((s) => s.seatNumber);

describe('a room reset between its hold decision and the Postgres write', () => {
  it('releases the hold once it restarts: nothing orphaned, the seats and the owner’s 4-seat allowance free again', async () => {
    const concert = await warmConcert();
    const fan = await admittedUser(concert.id);
    await setFault('neon', 'drop'); // the hold's statement never reaches Postgres
    let response: Response;
    try {
      const pending = hold(concert.id, fan, [1, 2, 3, 4]);
      await eventually('the hold pending in the room', async () =>
        (await roomHolds(concert.id)).some((h) => h.user_id === fan.userId && h.status === 'pending') || undefined,
      );
      await resetRoom(concert.id);
      response = await pending;
    } finally {
      await clearFault('neon');
    }
    await expectResetAnswer(response);
    // The restarted room settles the hold its predecessor left pending: never written, so released.
    await eventually('the seats released', async () => ((await heldSeatsInRoom(concert.id)).join() === '10' ? true : undefined));
    const left = await reservationsOf(fan.userId);
    expect(left.every((r) => r.status === 'cancelled' && r.seats === null)).toBe(true); // at most the placeholder that fences the write out
    expect((await roomHolds(concert.id)).filter((h) => h.user_id === fan.userId).map((h) => h.status)).toEqual(['cancelled']);
    // Nothing counts against the owner: all four seats can be held again, by them.
    const again = await hold(concert.id, fan, [1, 2, 3, 4]);
    expect(again.status).toBe(201);
    await again.arrayBuffer();
    await expectSeatInvariants(concert.id);
  });
});

describe('a room reset after the hold committed, before it heard so', () => {
  it('keeps the hold live and its owner’s: the keyed retry replays it, and it can be paid', async () => {
    const concert = await warmConcert();
    const fan = await admittedUser(concert.id);
    const key = uniqueId('hold-key');
    await setFault('neon', 'swallow-replies', { match: 'INSERT INTO reservation_seats' });
    let response: Response;
    let written: { id: string; status: string; seats: number[] | null };
    try {
      const pending = hold(concert.id, fan, [1, 2], { 'Idempotency-Key': key });
      written = await committedHoldOf(fan.userId);
      await resetRoom(concert.id);
      response = await pending;
    } finally {
      await clearFault('neon');
    }
    await expectResetAnswer(response);
    expect(written).toMatchObject({ status: 'held', seats: [1, 2] });
    // The restarted room adopts it as a live hold (not a pending one that nobody can pay or cancel).
    await eventually('the hold live in the room', async () =>
      (await roomHolds(concert.id)).some((h) => h.reservation_id === written.id && h.status === 'held') || undefined,
    );
    const retry = await hold(concert.id, fan, [1, 2], { 'Idempotency-Key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await retry.json()).toMatchObject({ reservationId: written.id, status: 'held' });
    const read = await api(`/reservations/${written.id}`, { headers: { Authorization: `Bearer ${fan.userToken}` } });
    expect(await read.json()).toMatchObject({ reservationId: written.id, status: 'held', seats: [{ seatNumber: 1 }, { seatNumber: 2 }] });
    // It counts once against the allowance: two more seats, not zero.
    await expectProblem(await hold(concert.id, fan, [3, 4, 5]), 422, 'HOLD_LIMIT');
    expect((await charge(fan.userToken, 1_000)).status).toBe(200);
    const paid = await pay(fan.userToken, written.id);
    expect(paid.status).toBe(201);
    await paid.arrayBuffer();
    expect((await seatMap(concert.id, 'sold')).map((s) => s.seatNumber)).toEqual([1, 2]);
    await expectSeatInvariants(concert.id);
  });

  it('lets the owner cancel it, which frees the seats and the allowance', async () => {
    const concert = await warmConcert();
    const fan = await admittedUser(concert.id);
    await setFault('neon', 'swallow-replies', { match: 'INSERT INTO reservation_seats' });
    let written: { id: string };
    try {
      const pending = hold(concert.id, fan, [5, 6, 7, 8]);
      written = await committedHoldOf(fan.userId);
      await resetRoom(concert.id);
      await (await pending).arrayBuffer();
    } finally {
      await clearFault('neon');
    }
    await eventually('the hold live in the room', async () =>
      (await roomHolds(concert.id)).some((h) => h.reservation_id === written.id && h.status === 'held') || undefined,
    );
    const cancelled = await api(`/reservations/${written.id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${fan.userToken}` } });
    expect(cancelled.status).toBe(204);
    const again = await hold(concert.id, fan, [1, 2, 3, 4]);
    expect(again.status).toBe(201);
    await again.arrayBuffer();
    await expectSeatInvariants(concert.id);
  });
});

describe('a room reset between a payment’s commit and the seat update', () => {
  it('sells the seats and ends the buyer’s session on reconciliation; retries replay or say ALREADY_PAID', async () => {
    const concert = await warmConcert();
    const fan = await admittedUser(concert.id);
    expect((await charge(fan.userToken, 10_000)).status).toBe(200);
    const held = await hold(concert.id, fan, [3]);
    expect(held.status).toBe(201);
    const { reservationId } = await held.json<{ reservationId: string }>();
    const key = uniqueId('pay-key');
    const paymentsOf = () => directQuery(`SELECT id FROM payments WHERE reservation_id = $1`, [reservationId]);
    await setFault('neon', 'swallow-replies', { match: 'INSERT INTO payments' });
    let response: Response;
    try {
      const pending = pay(fan.userToken, reservationId, { 'Idempotency-Key': key });
      await eventually('the payment committed', async () => ((await paymentsOf()).length === 1 ? true : undefined));
      await resetRoom(concert.id);
      response = await pending;
    } finally {
      await clearFault('neon');
    }
    await expectResetAnswer(response);
    // The restarted room reconciles: the seat is sold and, as a payment does, the session ends.
    await eventually('the seat sold in the room', async () => ((await seatMap(concert.id, 'sold')).some((s) => s.seatNumber === 3) ? true : undefined));
    expect(await (await queueStatus(fan.queueToken)).json()).toMatchObject({ status: 'completed' });
    await expectProblem(await hold(concert.id, fan, [4]), 403, 'NOT_ADMITTED');
    const retry = await pay(fan.userToken, reservationId, { 'Idempotency-Key': key });
    expect(retry.status).toBe(201);
    expect(await retry.json()).toMatchObject({ reservationId, amount: 500, balance: 9_500, status: 'confirmed' });
    await expectProblem(await pay(fan.userToken, reservationId), 409, 'ALREADY_PAID');
    expect(await paymentsOf()).toHaveLength(1);
    expect(await expectLedgerMatchesBalance(fan.userId)).toBe(9_500);
    await expectSeatInvariants(concert.id);
  });
});
