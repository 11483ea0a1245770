import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { authed, balanceOf, charge, pay } from '../helpers/balance.ts';
import { admittedUser, hold, openConcert, stats, tokenFor, type AdmittedUser } from '../helpers/concerts.ts';
import { checkInvariantsAfterEach, expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery, openDirectClient } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

/*
 * Refunds to points (issue 13): POST /reservations/:id/refund by the owner before the concert's
 * cut-off, less its fee; by an admin at any time without the fee. The points go back through the
 * ledger (kind refund), the seats become available again, a repeat changes nothing, and every
 * invariant (conservation counting refunds) holds after each test.
 */
checkInvariantsAfterEach();

const refund = (token: string, reservationId: string) => api(`/reservations/${reservationId}/refund`, { method: 'POST', headers: authed(token) });

interface RefundBody {
  reservationId: string;
  status: string;
  refunded: number;
  fee: number;
  balance: number;
  refundedAt: string;
}

/** An admitted user who held `seats` and paid for them; their balance is 0 afterwards. */
async function paidReservation(concertId: string, seats: number[], price: number): Promise<{ user: AdmittedUser; reservationId: string }> {
  const user = await admittedUser(concertId, 'refund');
  expect((await charge(user.userToken, price * seats.length)).status).toBe(200);
  const held = await hold(concertId, user, seats);
  expect(held.status).toBe(201);
  const { reservationId } = await held.json<{ reservationId: string }>();
  expect((await pay(user.userToken, reservationId)).status).toBe(201);
  return { user, reservationId };
}

const seatStatuses = async (concertId: string, seats: number[]) =>
  (
    await directQuery<{ seat_number: number; status: string }>(
      `SELECT seat_number, status FROM seats WHERE concert_id = $1 AND seat_number = ANY($2::int[]) ORDER BY seat_number`,
      [concertId, seats],
    )
  ).map((row) => row.status);

/** Sessions waiting, directly or behind another waiter, on a lock held by session `blockerPid`. */
async function waitingBehind(blockerPid: number): Promise<number> {
  const [row] = await directQuery<{ n: string }>(
    `WITH direct AS (SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid)))
     SELECT count(*) AS n FROM pg_stat_activity
      WHERE pid IN (SELECT pid FROM direct) OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM direct)`,
    [blockerPid],
  );
  return Number(row?.n ?? 0);
}

describe('POST /reservations/:id/refund', () => {
  it('credits the owner the price less the fee through the ledger, frees the seats for others, and a repeat changes nothing', async () => {
    const concert = await openConcert({ seats: 10, price: 300, refunds: { fee: 50 } });
    const { user, reservationId } = await paidReservation(concert.id, [3, 4], 300);
    expect(await seatStatuses(concert.id, [3, 4])).toEqual(['sold', 'sold']);

    const first = await refund(user.userToken, reservationId);
    expect(first.status).toBe(200);
    const body = await first.json<RefundBody>();
    expect(body).toMatchObject({ reservationId, status: 'refunded', refunded: 550, fee: 50, balance: 550 });
    expect(await balanceOf(user.userToken)).toBe(550);
    const ledger = await directQuery<{ kind: string; delta: string }>(`SELECT kind, delta FROM balance_ledger WHERE reference = $1 ORDER BY id`, [reservationId]);
    expect(ledger.map((row) => [row.kind, Number(row.delta)])).toEqual([
      ['payment', -600],
      ['refund', 550],
    ]);
    expect(await seatStatuses(concert.id, [3, 4])).toEqual(['available', 'available']);
    await expectSeatInvariants(concert.id);

    // Again, and ten at once: the same refund, no second credit.
    const repeats = await Promise.all([refund(user.userToken, reservationId), ...Array.from({ length: 10 }, () => refund(user.userToken, reservationId))]);
    for (const repeat of repeats) {
      expect(repeat.status).toBe(200);
      expect(await repeat.json<RefundBody>()).toMatchObject({ reservationId, status: 'refunded', refunded: 550, fee: 50, balance: 550 });
    }
    expect(await balanceOf(user.userToken)).toBe(550);

    // The seats are anyone's again.
    const other = await admittedUser(concert.id, 'refund-next');
    expect((await hold(concert.id, other, [3, 4])).status).toBe(201);
    const read = await api(`/reservations/${reservationId}`, { headers: authed(user.userToken) });
    expect(await read.json()).toMatchObject({ status: 'refunded' });
  });

  it('reports the real credit and the balance after it in every answer of 6 concurrent refunds', async () => {
    const concert = await openConcert({ seats: 10, price: 300, refunds: { fee: 50 } });
    const { user, reservationId } = await paidReservation(concert.id, [5, 6], 300);
    // Points beside the ticket, so a balance read before the credit (1,000) differs from the one after (1,550).
    expect((await charge(user.userToken, 1_000)).status).toBe(200);
    // All six must reach the row lock before any takes it, so each starts from the snapshot before the
    // credit: hold the row from a connection of our own until all six wait on it.
    const blocker = await openDirectClient();
    let answers: Response[];
    try {
      const [{ pid }] = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')) as [{ pid: number }];
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE', [reservationId]);
      const pending = Promise.all(Array.from({ length: 6 }, () => refund(user.userToken, reservationId)));
      while ((await waitingBehind(pid)) < 6) await new Promise((resolve) => setTimeout(resolve, 20));
      await blocker.query('COMMIT');
      answers = await pending;
    } finally {
      await blocker.close();
    }
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(await answer.json<RefundBody>()).toMatchObject({ reservationId, status: 'refunded', refunded: 550, fee: 50, balance: 1_550 });
    }
    const credits = await directQuery<{ delta: string; balance_after: string }>(
      `SELECT delta, balance_after FROM balance_ledger WHERE reference = $1 AND kind = 'refund'`,
      [reservationId],
    );
    expect(credits.map((row) => [Number(row.delta), Number(row.balance_after)])).toEqual([[550, 1_550]]);
    expect(await balanceOf(user.userToken)).toBe(1_550);
  });

  it('refuses what is not the caller’s (404), not paid (409) or past the cut-off (409), changing nothing; an admin refunds it anyway, without the fee', async () => {
    // The cut-off is a year before a show about a year away: already passed for the owner.
    const concert = await openConcert({ seats: 10, price: 200, refunds: { fee: 20, cutoffHours: 8760 } });
    const { user, reservationId } = await paidReservation(concert.id, [1], 200);
    const stranger = await admittedUser(concert.id, 'refund-stranger');

    await expectProblem(await refund(stranger.userToken, reservationId), 404, 'RESERVATION_NOT_FOUND');
    await expectProblem(await refund(user.userToken, crypto.randomUUID()), 404, 'RESERVATION_NOT_FOUND');
    await expectProblem(await refund(user.userToken, reservationId), 409, 'REFUND_DEADLINE_PASSED');
    const unpaid = await hold(concert.id, stranger, [2]);
    const { reservationId: unpaidId } = await unpaid.json<{ reservationId: string }>();
    await expectProblem(await refund(stranger.userToken, unpaidId), 409, 'RESERVATION_NOT_PAID');
    expect(await seatStatuses(concert.id, [1, 2])).toEqual(['sold', 'held']);
    expect(await balanceOf(user.userToken)).toBe(0);
    expect((await api(`/reservations/${reservationId}/refund`, { method: 'POST' })).status).toBe(401);

    // A cancelled show: the admin refunds the whole price, past the cut-off.
    const byAdmin = await refund(env.ADMIN_TOKEN, reservationId);
    expect(byAdmin.status).toBe(200);
    expect(await byAdmin.json<RefundBody>()).toMatchObject({ refunded: 200, fee: 0, balance: 200 });
    expect(await balanceOf(user.userToken)).toBe(200);
    expect(await seatStatuses(concert.id, [1])).toEqual(['available']);
  });

  it('never reopens a sold-out line: the waiting fan stays sold_out and the seats go to the waitlist', async () => {
    const concert = await openConcert({ seats: 2, price: 100 });
    const { user, reservationId } = await paidReservation(concert.id, [1, 2], 100);
    const late = await tokenFor(`refund-late-${crypto.randomUUID()}`);
    const waiting = await api('/queue/token', { method: 'POST', headers: authed(late), json: { concertId: concert.id } });
    expect(waiting.status).toBe(201);
    const { token } = await waiting.json<{ token: string }>();
    const soldOut = await api('/queue/status', { headers: { 'Queue-Token': token } });
    expect(await soldOut.json()).toMatchObject({ status: 'sold_out', waitlist: 'open' });

    expect((await refund(user.userToken, reservationId)).status).toBe(200);
    expect(await (await api('/queue/status', { headers: { 'Queue-Token': token } })).json()).toMatchObject({ status: 'sold_out', waitlist: 'open' });
    expect(await stats(concert.id)).toMatchObject({ soldOut: true, waiting: 1, seats: { available: 2 } });
    // The late fan takes them through the waitlist instead: offered at once.
    const joined = await api(`/concerts/${concert.id}/waitlist`, { method: 'POST', headers: authed(late), json: { seats: 2 } });
    expect(joined.status).toBe(201);
    expect(await joined.json()).toMatchObject({ status: 'offered', offer: { seats: [{ seatNumber: 1 }, { seatNumber: 2 }] } });
  });

  it('races a refund against another fan’s holds and payment of the same seats: each seat sold at most once, every point accounted for', async () => {
    const concert = await openConcert({ seats: 4, price: 100 });
    const { user, reservationId } = await paidReservation(concert.id, [1, 2], 100);
    const rivals = await Promise.all(Array.from({ length: 8 }, () => admittedUser(concert.id, 'refund-rival')));
    await Promise.all(rivals.map((rival) => charge(rival.userToken, 200)));
    // The rivals try the refunded seats over and over while the refund runs; whoever holds pays.
    const tryToBuy = async (rival: AdmittedUser) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const held = await hold(concert.id, rival, [1, 2]);
        if (held.status === 201) {
          const { reservationId: theirs } = await held.json<{ reservationId: string }>();
          return (await pay(rival.userToken, theirs)).status;
        }
        await held.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return 0;
    };
    const [refunded, ...outcomes] = await Promise.all([refund(user.userToken, reservationId), ...rivals.map(tryToBuy)]);
    expect(refunded.status).toBe(200);
    expect(outcomes.filter((status) => status === 201)).toHaveLength(1);
    expect(await seatStatuses(concert.id, [1, 2])).toEqual(['sold', 'sold']);
    await expectSeatInvariants(concert.id);
  });
});
