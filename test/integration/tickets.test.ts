import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { admittedUser, hold, join, openConcert, tokenFor, type AdmittedUser, type JoinBody } from '../helpers/concerts.ts';
import { checkInvariantsAfterEach } from '../helpers/invariants.ts';
import { expectProblem } from '../helpers/problem.ts';

/*
 * GET /reservations (issue 22): the fan page's My tickets. A fan's own reservations, newest first,
 * with the refund terms POST /reservations/:id/refund would apply (fee, cut-off, allowed now).
 */
checkInvariantsAfterEach();

interface Ticket {
  reservationId: string;
  concert: { id: string; title: string; startsAt: string };
  status: string;
  amount: number;
  seats: { seatNumber: number }[];
  refundedAt: string | null;
  refund: { fee: number; until: string; allowed: boolean };
}

const tickets = async (token: string) => {
  const response = await api('/reservations', { headers: authed(token) });
  expect(response.status).toBe(200);
  return (await response.json<{ reservations: Ticket[] }>()).reservations;
};

async function holdOk(concertId: string, user: AdmittedUser, seats: number[]): Promise<string> {
  const response = await hold(concertId, user, seats);
  expect(response.status).toBe(201);
  return (await response.json<{ reservationId: string }>()).reservationId;
}

const HOUR_MS = 3_600_000;

describe('GET /reservations', () => {
  it('lists the caller’s reservations newest first with concert, seats, amount and refund terms, and nobody else’s', async () => {
    const refundable = await openConcert({ seats: 10, price: 200, refunds: { fee: 30, cutoffHours: 24 } });
    // Its refunds closed a year before the show; its fee is more than the ticket, so the fee shown is the amount.
    const closed = await openConcert({ seats: 10, price: 100, refunds: { fee: 500, cutoffHours: 8760 } });
    const unpaid = await openConcert({ seats: 10, price: 200 });
    const fan = await admittedUser(refundable.id, 'tickets');
    // Admitted to each concert in turn (a payment ends that concert's session, so one hold per concert).
    const admitted = async (concertId: string) => ({ ...fan, queueToken: (await (await join(concertId, fan.userId, fan.userToken)).json<JoinBody>()).token });
    expect((await charge(fan.userToken, 1000)).status).toBe(200);
    const paid = await holdOk(refundable.id, fan, [1, 2]);
    expect((await pay(fan.userToken, paid)).status).toBe(201);
    const late = await holdOk(closed.id, await admitted(closed.id), [5]);
    expect((await pay(fan.userToken, late)).status).toBe(201);
    const held = await holdOk(unpaid.id, await admitted(unpaid.id), [3]);

    const list = await tickets(fan.userToken);
    expect(list.map((ticket) => ticket.reservationId)).toEqual([held, late, paid]);
    const [heldTicket, lateTicket, paidTicket] = list;
    expect(paidTicket).toMatchObject({ concert: { id: refundable.id, title: refundable.title }, status: 'confirmed', amount: 400, refundedAt: null });
    expect(paidTicket!.seats.map((seat) => seat.seatNumber)).toEqual([1, 2]);
    expect(paidTicket!.refund).toMatchObject({ fee: 30, allowed: true });
    expect(Date.parse(paidTicket!.refund.until)).toBe(Date.parse(paidTicket!.concert.startsAt) - 24 * HOUR_MS);
    expect(heldTicket).toMatchObject({ concert: { id: unpaid.id }, status: 'held', amount: 200, refund: { fee: 0, allowed: false } });
    expect(lateTicket).toMatchObject({ concert: { id: closed.id }, status: 'confirmed', amount: 100, refund: { fee: 100, allowed: false } });
    expect(Date.parse(lateTicket!.refund.until)).toBe(Date.parse(lateTicket!.concert.startsAt) - 8760 * HOUR_MS);
    const refused = await api(`/reservations/${late}/refund`, { method: 'POST', headers: authed(fan.userToken) });
    await expectProblem(refused, 409, 'REFUND_DEADLINE_PASSED');

    // The terms are the refund's: it credits the amount less the fee shown, then the ticket says refunded, seats and all.
    const refund = await api(`/reservations/${paid}/refund`, { method: 'POST', headers: authed(fan.userToken) });
    expect(await refund.json()).toMatchObject({ refunded: 400 - paidTicket!.refund.fee, fee: paidTicket!.refund.fee });
    const after = (await tickets(fan.userToken)).find((ticket) => ticket.reservationId === paid);
    expect(after).toMatchObject({ status: 'refunded', refundedAt: expect.any(String), refund: { allowed: false } });
    expect(after!.seats.map((seat) => seat.seatNumber)).toEqual([1, 2]);

    expect(await tickets(await tokenFor(`stranger-${crypto.randomUUID()}`))).toEqual([]);
  });

  it('needs a user token, and keeps limit within 1–200', async () => {
    await expectProblem(await api('/reservations'), 401, 'UNAUTHENTICATED');
    const token = await tokenFor(`tickets-${crypto.randomUUID()}`);
    await expectProblem(await api('/reservations?limit=0', { headers: authed(token) }), 400, 'VALIDATION_FAILED');
    await expectProblem(await api('/reservations?limit=201', { headers: authed(token) }), 400, 'VALIDATION_FAILED');
  });
});
