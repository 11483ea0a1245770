import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { decodeJwt } from 'jose';
import { rankOfPlace } from '../../src/lib/opening-shuffle.ts';
import {
  adminHeaders,
  admittedUser,
  createConcert,
  dayFromNow,
  DEFAULT_CONCERT_DAYS_AHEAD,
  hold,
  joinOk,
  openConcert,
  room,
  seatMap,
  stats,
  tokenFor,
  type AdmittedUser,
} from '../helpers/concerts.ts';
import { dueInPostgres } from '../helpers/expiry.ts';
import { checkInvariantsAfterEach } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { openQueueSocket } from '../helpers/queue-socket.ts';

/*
 * The waitlist for freed seats (issues 13 and 18): it opens only when the line has sold out (no seat
 * available or held); until then seats that come back are the line's. Once sold out the line stops
 * for good: fans it left without a seat rank ahead of newcomers, in line order, and every seat that
 * comes back (refund, cancel, lapsed offer) is offered in that order, first-fit, as a hold made for
 * the fan, in the same room transaction that freed it. Every test ends with the DESIGN.md §6 checker
 * over everything it created.
 */
checkInvariantsAfterEach();

interface Fan {
  userId: string;
  token: string;
}

interface Entry {
  concertId: string;
  seats: number;
  together: boolean;
  status: 'waiting' | 'offered' | 'accepted' | 'expired' | 'left';
  position: number;
  joinedAt: string;
  reason?: string;
  reservationId?: string;
  offer?: { reservationId: string; seats: { seatNumber: number; section: string; price: number }[]; amount: number; expiresAt: string };
}

async function newFan(prefix = 'wl'): Promise<Fan> {
  const userId = `${prefix}-${crypto.randomUUID()}`;
  return { userId, token: await tokenFor(userId) };
}

const joinWaitlist = (concertId: string, fan: Fan, body: unknown) =>
  api(`/concerts/${concertId}/waitlist`, { method: 'POST', headers: authed(fan.token), json: body });
const readEntry = (concertId: string, fan: Fan) => api(`/concerts/${concertId}/waitlist/me`, { headers: authed(fan.token) });
const leaveWaitlist = (concertId: string, fan: Fan) => api(`/concerts/${concertId}/waitlist/me`, { method: 'DELETE', headers: authed(fan.token) });

/** A new fan on the waitlist (201), in the order of the calls. */
async function waiting(concertId: string, seats: number, together = false, prefix = 'wl'): Promise<Fan> {
  const fan = await newFan(prefix);
  const response = await joinWaitlist(concertId, fan, { seats, together });
  if (response.status !== 201) throw new Error(`waitlist join failed: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
  return fan;
}

async function entryOf(concertId: string, fan: Fan): Promise<Entry> {
  const response = await readEntry(concertId, fan);
  expect(response.status).toBe(200);
  return response.json<Entry>();
}

/** Admitted fans, one per group, each holding that group's seats. */
async function holders(concertId: string, groups: number[][]): Promise<{ user: AdmittedUser; reservationId: string }[]> {
  return Promise.all(
    groups.map(async (seats) => {
      const user = await admittedUser(concertId, 'holder');
      const response = await hold(concertId, user, seats);
      if (response.status !== 201) throw new Error(`hold failed: ${response.status} ${await response.text()}`);
      return { user, reservationId: (await response.json<{ reservationId: string }>()).reservationId };
    }),
  );
}

/** Pays the holds, one after another: when they cover every seat, the last one sells the line out. */
async function payAll(held: { user: AdmittedUser; reservationId: string }[]): Promise<void> {
  for (const { user, reservationId } of held) {
    const amount = (await (await api(`/reservations/${reservationId}`, { headers: authed(user.userToken) })).json<{ amount: number }>()).amount;
    expect((await charge(user.userToken, amount)).status).toBe(200);
    const paid = await pay(user.userToken, reservationId);
    if (paid.status !== 201) throw new Error(`payment failed: ${paid.status} ${await paid.text()}`);
    await paid.arrayBuffer();
  }
}

/** Admitted fans, one per group, each buying that group's seats (covering every seat sells the line out). */
async function buyers(concertId: string, groups: number[][]): Promise<{ user: AdmittedUser; reservationId: string }[]> {
  const held = await holders(concertId, groups);
  await payAll(held);
  return held;
}

/** The owner refunds a paid reservation (its seats come back). */
async function refund(buyer: { user: AdmittedUser; reservationId: string }): Promise<void> {
  const response = await api(`/reservations/${buyer.reservationId}/refund`, { method: 'POST', headers: authed(buyer.user.userToken) });
  if (response.status !== 200) throw new Error(`refund failed: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
}

/** A fan placed in the line (not admitted), with their queue token. */
async function inLine(concertId: string, prefix = 'line'): Promise<Fan & { queueToken: string; position: number }> {
  const fan = await newFan(prefix);
  const response = await api('/queue/token', { method: 'POST', headers: authed(fan.token), json: { concertId } });
  expect(response.status).toBe(201);
  const body = await response.json<{ token: string; status: string; position: number }>();
  expect(body.status).toBe('waiting');
  return { ...fan, queueToken: body.token, position: body.position };
}

const lineStatus = async (queueToken: string) => (await api('/queue/status', { headers: { 'Queue-Token': queueToken } })).json<Record<string, unknown>>();

/**
 * Expires one live hold now: due by Postgres's clock and the room's, then the room's alarm runs
 * (which releases it, and so offers its seats).
 */
async function expire(concertId: string, reservationId: string): Promise<void> {
  expect(await dueInPostgres({ reservationId })).toEqual([reservationId]);
  await runInDurableObject(room(concertId), (_instance, state) => {
    state.storage.sql.exec(`UPDATE holds SET expires_at = ? WHERE reservation_id = ?`, Date.now() - 1, reservationId);
  });
  expect(await runDurableObjectAlarm(room(concertId))).toBe(true);
}

const seatNumbers = (entry: Entry) => entry.offer?.seats.map((seat) => seat.seatNumber);

/** Postgres's live reservation of a user for a concert, with its seat numbers. */
async function liveReservationsOf(concertId: string, userId: string) {
  return directQuery<{ id: string; status: string; seats: number[] }>(
    `SELECT r.id, r.status, array_agg(s.seat_number ORDER BY s.seat_number) AS seats
       FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id AND rs.active JOIN seats s ON s.id = rs.seat_id
      WHERE r.concert_id = $1 AND r.user_id = $2 AND r.status IN ('held', 'confirmed')
      GROUP BY r.id, r.status`,
    [concertId, userId],
  );
}

describe('POST /concerts/:id/waitlist', () => {
  it('refuses bad bodies (400), unknown concerts (404), concerts not sold out (409) and too many seats (422); re-joining returns the same entry (200)', async () => {
    const concert = await openConcert({ seats: 6, price: 100 });
    const fan = await newFan();
    for (const body of [{}, { seats: 0 }, { seats: 5 }, { seats: 1.5 }, { seats: '2' }, { seats: 2, together: 'yes' }, { seats: 2, extra: true }]) {
      await expectProblem(await joinWaitlist(concert.id, fan, body), 400, 'VALIDATION_FAILED');
    }
    expect((await api(`/concerts/${concert.id}/waitlist`, { method: 'POST', json: { seats: 1 } })).status).toBe(401);
    await expectProblem(await joinWaitlist(crypto.randomUUID(), fan, { seats: 1 }), 404, 'CONCERT_NOT_FOUND');
    await expectProblem(await readEntry(crypto.randomUUID(), fan), 404, 'CONCERT_NOT_FOUND');

    // Seats can be held: the waitlist is not open, and the problem says why.
    const notOpen = await expectProblem(await joinWaitlist(concert.id, fan, { seats: 1 }), 409, 'WAITLIST_NOT_OPEN');
    expect(notOpen.detail).toMatch(/sold out/);
    await expectProblem(await readEntry(concert.id, fan), 404, 'WAITLIST_ENTRY_NOT_FOUND');

    // Held to the last seat but not sold: a hold may still lapse, and its seats are the line's.
    const held = await holders(concert.id, [[1, 2, 3], [4, 5, 6]]);
    await expectProblem(await joinWaitlist(concert.id, fan, { seats: 1 }), 409, 'WAITLIST_NOT_OPEN');
    expect((await stats(concert.id)).waitlist).toEqual({ waiting: 0, offered: 0, accepted: 0, expired: 0, left: 0 });

    // Every seat paid: sold out, the waitlist opens.
    await payAll(held);
    const [owner] = held;
    const first = await joinWaitlist(concert.id, fan, { seats: 2 });
    expect(first.status).toBe(201);
    const entry = await first.json<Entry>();
    expect(entry).toMatchObject({ concertId: concert.id, seats: 2, together: false, status: 'waiting', position: 1 });
    const second = await waiting(concert.id, 1, true);
    expect(await entryOf(concert.id, second)).toMatchObject({ seats: 1, together: true, status: 'waiting', position: 2 });

    // Again, with another size: the entry as it is, 200.
    const again = await joinWaitlist(concert.id, fan, { seats: 4, together: true });
    expect(again.status).toBe(200);
    expect(await again.json<Entry>()).toEqual(entry);
    expect(await entryOf(concert.id, fan)).toEqual(entry);

    // The owner of 3 seats (bought through the line: no place to rank by) may wait for 1 more, not 2.
    const ownerFan = { userId: owner!.user.userId, token: owner!.user.userToken };
    const limit = await expectProblem(await joinWaitlist(concert.id, ownerFan, { seats: 2 }), 422, 'HOLD_LIMIT');
    expect(limit).toMatchObject({ limit: 4, owned: 3 });
    expect((await joinWaitlist(concert.id, ownerFan, { seats: 1 })).status).toBe(201);

    // Leaving: 204, the entry ends `left`, the one behind moves up; leaving again is 204 too.
    expect((await leaveWaitlist(concert.id, fan)).status).toBe(204);
    expect(await entryOf(concert.id, fan)).toMatchObject({ status: 'left', position: 0 });
    expect(await entryOf(concert.id, second)).toMatchObject({ status: 'waiting', position: 1 });
    expect((await leaveWaitlist(concert.id, fan)).status).toBe(204);
    await expectProblem(await leaveWaitlist(concert.id, await newFan()), 404, 'WAITLIST_ENTRY_NOT_FOUND');

    // Re-joining after leaving is a new entry, at the back.
    const rejoined = await joinWaitlist(concert.id, fan, { seats: 1 });
    expect(rejoined.status).toBe(201);
    expect(await rejoined.json<Entry>()).toMatchObject({ status: 'waiting', seats: 1, position: 3 });

    expect((await stats(concert.id)).waitlist).toEqual({ waiting: 3, offered: 0, accepted: 0, expired: 0, left: 0 });
  });

  it('keeps positions equal to the waiting entries ahead as entries leave out of order', async () => {
    const concert = await openConcert({ seats: 1 });
    await buyers(concert.id, [[1]]);
    const fans: Fan[] = [];
    for (let i = 0; i < 24; i++) fans.push(await waiting(concert.id, 1 + (i % 4), i % 3 === 0));
    const leaving = new Set([0, 3, 4, 9, 10, 11, 17, 23]);
    await Promise.all([...leaving].map((i) => leaveWaitlist(concert.id, fans[i]!)));
    let ahead = 0;
    for (const [i, fan] of fans.entries()) {
      const entry = await entryOf(concert.id, fan);
      if (leaving.has(i)) expect(entry).toMatchObject({ status: 'left', position: 0 });
      else expect(entry).toMatchObject({ status: 'waiting', position: ++ahead });
    }
  });
});

describe('the waitlist and the line', () => {
  it('keeps freed seats for admitted fans while seats are only held: a newcomer gets 409 and the line keeps admitting', async () => {
    const concert = await openConcert({ seats: 2, price: 10 });
    const [holder] = await holders(concert.id, [[1, 2]]);
    const newcomer = await newFan('newcomer');
    await expectProblem(await joinWaitlist(concert.id, newcomer, { seats: 2 }), 409, 'WAITLIST_NOT_OPEN');
    // Not sold out: someone joining the line now is admitted, not told sold_out.
    const late = await admittedUser(concert.id, 'late');

    await expire(concert.id, holder!.reservationId);
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([1, 2]);
    expect((await hold(concert.id, late, [1, 2])).status).toBe(201);
    await expectProblem(await joinWaitlist(concert.id, newcomer, { seats: 1 }), 409, 'WAITLIST_NOT_OPEN');
    expect((await stats(concert.id)).waitlist).toEqual({ waiting: 0, offered: 0, accepted: 0, expired: 0, left: 0 });
  });

  it('ranks fans the line left without a seat ahead of newcomers who joined earlier, in line order, once every seat is paid', async () => {
    // Three admitted in a window that outlasts the test; everyone after them waits in line.
    const concert = await openConcert({ seats: 2, price: 10, queue: { admitPerWindow: 3, windowSeconds: 3600 } });
    const held = await holders(concert.id, [[1], [2]]);
    const idle = await admittedUser(concert.id, 'idle');
    const line = [await inLine(concert.id), await inLine(concert.id), await inLine(concert.id)];
    expect(line.map((fan) => fan.position)).toEqual([1, 2, 3]);
    await expectProblem(await joinWaitlist(concert.id, line[0]!, { seats: 1 }), 409, 'WAITLIST_NOT_OPEN');

    await payAll(held);
    for (const fan of line) expect(await lineStatus(fan.queueToken)).toMatchObject({ status: 'sold_out', waitlist: 'open' });
    const newcomer = await waiting(concert.id, 1, false, 'newcomer');
    expect(await entryOf(concert.id, newcomer)).toMatchObject({ position: 1 });

    // Line fans join in reverse order, and the admitted fan who never held last: each ranks by its place.
    for (const fan of [line[2]!, line[1]!, line[0]!]) expect((await joinWaitlist(concert.id, fan, { seats: 1 })).status).toBe(201);
    const idleFan = { userId: idle.userId, token: idle.userToken };
    expect((await joinWaitlist(concert.id, idleFan, { seats: 2 })).status).toBe(201);
    const positions = await Promise.all([idleFan, ...line, newcomer].map(async (fan) => (await entryOf(concert.id, fan)).position));
    expect(positions).toEqual([1, 2, 3, 4, 5]);

    // A refund's seat goes to the first of them, not to the newcomer who joined first.
    await refund(held[0]!);
    expect(await entryOf(concert.id, idleFan)).toMatchObject({ status: 'waiting', position: 1 });
    expect(seatNumbers(await entryOf(concert.id, line[0]!))).toEqual([1]);
    expect(await entryOf(concert.id, newcomer)).toMatchObject({ status: 'waiting', position: 4 });
  });

  it('ranks the line’s fans by their drawn rank, not their arrival, when the concert had an opening draw', async () => {
    const concert = await createConcert({ seats: 2, price: 10, queue: { openingOrder: 'shuffle', admitPerWindow: 2, windowSeconds: 3600 } });
    const prefix = `draw-${crypto.randomUUID()}`;
    const early: { userId: string; token: string; seq: number }[] = [];
    for (let i = 0; i < 10; i++) {
      const body = await joinOk(concert.id, `${prefix}-${i}`);
      early.push({ userId: `${prefix}-${i}`, token: body.token, seq: decodeJwt(body.token).seq as number });
    }
    expect(await runDurableObjectAlarm(room(concert.id))).toBe(true); // sales open: the draw, then ranks 1 and 2 go in
    const { seed } = await (await api(`/concerts/${concert.id}/opening`)).json<{ seed: string }>();
    const rank = (seq: number) => rankOfPlace({ seed, prequeueSize: 10 }, seq);

    const [first, second] = [...early].sort((a, b) => rank(a.seq) - rank(b.seq));
    const held = await Promise.all(
      [first!, second!].map(async (fan, i) => {
        const user = { userId: fan.userId, userToken: await tokenFor(fan.userId), queueToken: fan.token };
        const response = await hold(concert.id, user, [i + 1]);
        expect(response.status).toBe(201);
        return { user, reservationId: (await response.json<{ reservationId: string }>()).reservationId };
      }),
    );
    await payAll(held);
    const newcomer = await waiting(concert.id, 1, false, 'newcomer');

    // The eight left in line join in arrival order; the waitlist orders them by their drawn rank.
    const left = early.filter((fan) => fan !== first && fan !== second);
    for (const fan of left) {
      expect((await joinWaitlist(concert.id, { userId: fan.userId, token: await tokenFor(fan.userId) }, { seats: 1 })).status).toBe(201);
    }
    const byRank = [...left].sort((a, b) => rank(a.seq) - rank(b.seq));
    expect(byRank.map((fan) => fan.seq)).not.toEqual(left.map((fan) => fan.seq));
    for (const [i, fan] of byRank.entries()) {
      expect(await entryOf(concert.id, { userId: fan.userId, token: await tokenFor(fan.userId) })).toMatchObject({ position: i + 1 });
    }
    expect(await entryOf(concert.id, newcomer)).toMatchObject({ position: 9 });
  });

  it('offers a seat freed after sell-out to the waitlist, never re-opening the line', async () => {
    const concert = await openConcert({ seats: 2, price: 10, queue: { admitPerWindow: 3, windowSeconds: 3600 } });
    const held = await holders(concert.id, [[1], [2]]);
    const idle = await admittedUser(concert.id, 'idle');
    const waitingFan = await inLine(concert.id);
    await payAll(held);
    const before = await stats(concert.id);
    expect(before).toMatchObject({ soldOut: true, waiting: 1 });

    // A refund with nobody on the waitlist: the seat stays free, but the line stays sold out.
    await refund(held[0]!);
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([1]);
    expect(await lineStatus(waitingFan.queueToken)).toMatchObject({ status: 'sold_out', waitlist: 'open' });
    expect(await (await api('/queue/token', { method: 'POST', headers: authed((await newFan()).token), json: { concertId: concert.id } })).json()).toMatchObject({
      status: 'sold_out',
      waitlist: 'open',
    });
    // An admitted fan whose session is still live cannot take it either.
    const refused = await expectProblem(await hold(concert.id, idle, [1]), 403, 'NOT_ADMITTED');
    expect(refused.detail).toMatch(/waitlist/);
    expect(await stats(concert.id)).toMatchObject({ soldOut: true, waiting: 2, admitted: before.admitted });

    // The first fan to join the waitlist is offered it at once.
    const newcomer = await newFan('newcomer');
    const joined = await joinWaitlist(concert.id, newcomer, { seats: 1 });
    expect(joined.status).toBe(201);
    expect(await joined.json<Entry>()).toMatchObject({ status: 'offered', offer: { seats: [{ seatNumber: 1 }] } });

    // The next refund goes to the line fan who joined after.
    expect((await joinWaitlist(concert.id, waitingFan, { seats: 1 })).status).toBe(201);
    await refund(held[1]!);
    expect(seatNumbers(await entryOf(concert.id, waitingFan))).toEqual([2]);
    expect(await lineStatus(waitingFan.queueToken)).toMatchObject({ status: 'sold_out' });
  });
});

describe('waitlist offers', () => {
  it('offers a refund’s seats to the first entry, which pays through POST /payment and is accepted', async () => {
    const concert = await openConcert({ seats: 4, price: 100 });
    const [first] = await buyers(concert.id, [[1, 2], [3, 4]]);
    const a = await waiting(concert.id, 2);
    const b = await waiting(concert.id, 2);

    await refund(first!);
    const offered = await entryOf(concert.id, a);
    expect(offered).toMatchObject({ status: 'offered', position: 0, seats: 2 });
    expect(seatNumbers(offered)).toEqual([1, 2]);
    expect(offered.offer).toMatchObject({ amount: 200, seats: [{ section: 'general', price: 100 }, { section: 'general', price: 100 }] });
    expect(Date.parse(offered.offer!.expiresAt)).toBeGreaterThan(Date.now());
    expect(await entryOf(concert.id, b)).toMatchObject({ status: 'waiting', position: 1 });
    // The offer is a hold of A's, in Postgres as in the room; the seats are held, not available.
    expect(await liveReservationsOf(concert.id, a.userId)).toEqual([{ id: offered.offer!.reservationId, status: 'held', seats: [1, 2] }]);
    expect((await seatMap(concert.id, 'available')).length).toBe(0);
    const read = await api(`/reservations/${offered.offer!.reservationId}`, { headers: authed(a.token) });
    expect(await read.json()).toMatchObject({ status: 'held', amount: 200 });

    // A was never in the line: paying needs no admission, only the hold to be A's.
    expect((await charge(a.token, 200)).status).toBe(200);
    await expectProblem(await pay(b.token, offered.offer!.reservationId), 404, 'RESERVATION_NOT_FOUND');
    expect((await pay(a.token, offered.offer!.reservationId)).status).toBe(201);
    expect(await entryOf(concert.id, a)).toMatchObject({ status: 'accepted', reservationId: offered.offer!.reservationId, position: 0 });
    expect(await liveReservationsOf(concert.id, a.userId)).toEqual([{ id: offered.offer!.reservationId, status: 'confirmed', seats: [1, 2] }]);
    expect((await stats(concert.id)).waitlist).toEqual({ waiting: 1, offered: 0, accepted: 1, expired: 0, left: 0 });
  });

  it('passes an offer that expires unpaid to the next entry, and a seat nobody waits for to the next fan who joins', async () => {
    const concert = await openConcert({ seats: 4, price: 100, queue: { waitlistOfferSeconds: 30 } });
    const idle = await admittedUser(concert.id, 'idle');
    const [first] = await buyers(concert.id, [[1, 2], [3, 4]]);
    const a = await waiting(concert.id, 2);
    const b = await waiting(concert.id, 1);

    await refund(first!);
    const offerA = (await entryOf(concert.id, a)).offer!;
    expect(Date.parse(offerA.expiresAt) - Date.now()).toBeLessThanOrEqual(30_000);
    await expire(concert.id, offerA.reservationId);

    expect(await entryOf(concert.id, a)).toMatchObject({ status: 'expired', reason: 'OFFER_EXPIRED' });
    const offerB = await entryOf(concert.id, b);
    expect(offerB).toMatchObject({ status: 'offered' });
    expect(seatNumbers(offerB)).toEqual([1]);
    // Seat 2 had nobody left to go to: it stays for the waitlist, not for the line.
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([2]);
    await expectProblem(await hold(concert.id, idle, [2]), 403, 'NOT_ADMITTED');
    expect((await charge(a.token, 200)).status).toBe(200);
    await expectProblem(await pay(a.token, offerA.reservationId), 409, 'RESERVATION_EXPIRED');
    expect((await stats(concert.id)).waitlist).toMatchObject({ offered: 1, expired: 1 });
    const c = await waiting(concert.id, 1);
    expect(seatNumbers(await entryOf(concert.id, c))).toEqual([2]);
  });

  it('gives a together entry adjacent seats of one section, or lets it wait while a later, smaller entry is served (first-fit)', async () => {
    const concert = await openConcert({ seats: 6, price: 50 });
    const [h1, h2, h3] = await buyers(concert.id, [[1], [2], [3], [4, 5, 6]]);
    const pair = await waiting(concert.id, 2, true);
    const single = await waiting(concert.id, 1);
    const two = await waiting(concert.id, 2);

    await refund(h1!); // seat 1: not enough for the pair; the single takes it
    expect(await entryOf(concert.id, pair)).toMatchObject({ status: 'waiting', position: 1 });
    expect(seatNumbers(await entryOf(concert.id, single))).toEqual([1]);
    expect(await entryOf(concert.id, two)).toMatchObject({ status: 'waiting', position: 2 });

    await refund(h3!); // seat 3 alone: neither the pair nor two seats
    expect(await entryOf(concert.id, pair)).toMatchObject({ status: 'waiting' });
    expect(await entryOf(concert.id, two)).toMatchObject({ status: 'waiting' });
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([3]);

    await refund(h2!); // seats 2 and 3, side by side: the pair, first in line
    expect(seatNumbers(await entryOf(concert.id, pair))).toEqual([2, 3]);
    expect(await entryOf(concert.id, two)).toMatchObject({ status: 'waiting', position: 1 });
  });

  it('never seats a together entry across a section boundary', async () => {
    const date = dayFromNow(DEFAULT_CONCERT_DAYS_AHEAD);
    const response = await api('/admin/concerts', {
      method: 'POST',
      headers: adminHeaders(),
      json: {
        title: `Sections ${crypto.randomUUID().slice(0, 8)}`,
        venue: 'Test Hall',
        date,
        startsAt: `${date}T20:00:00Z`,
        salesOpenAt: new Date(Date.now() - 60_000).toISOString(),
        sections: [
          { name: 'stalls', count: 2, price: 80 },
          { name: 'circle', count: 2, price: 40 },
        ],
        queue: { admitPerWindow: 5000 },
      },
    });
    expect(response.status).toBe(201);
    const concert = await response.json<{ id: string }>();
    const [h2, h3] = await buyers(concert.id, [[2], [3], [1, 4]]);
    const pair = await waiting(concert.id, 2, true);
    const two = await waiting(concert.id, 2);
    await refund(h2!);
    await refund(h3!);
    // Seats 2 (stalls) and 3 (circle) are numbered side by side but are not together.
    expect(await entryOf(concert.id, pair)).toMatchObject({ status: 'waiting', position: 1 });
    const offered = await entryOf(concert.id, two);
    expect(offered.offer).toMatchObject({ amount: 120, seats: [{ seatNumber: 2, section: 'stalls' }, { seatNumber: 3, section: 'circle' }] });
  });

  it('offers the seats of refunds; a fan who leaves or declines releases the offer', async () => {
    const concert = await openConcert({ seats: 3, price: 100 });
    const [first, second] = await buyers(concert.id, [[1], [2, 3]]);
    const a = await waiting(concert.id, 1);
    const b = await waiting(concert.id, 2, true);

    await refund(first!);
    const offerA = await entryOf(concert.id, a);
    expect(seatNumbers(offerA)).toEqual([1]);

    await refund(second!);
    const offerB = await entryOf(concert.id, b);
    expect(seatNumbers(offerB)).toEqual([2, 3]);

    // A leaves with the offer open: the hold is cancelled, seat 1 has nobody left to go to.
    expect((await leaveWaitlist(concert.id, a)).status).toBe(204);
    expect(await entryOf(concert.id, a)).toMatchObject({ status: 'left' });
    expect(await liveReservationsOf(concert.id, a.userId)).toEqual([]);
    // B declines through DELETE /reservations/:id: the entry ends `left` too.
    expect((await api(`/reservations/${offerB.offer!.reservationId}`, { method: 'DELETE', headers: authed(b.token) })).status).toBe(204);
    expect(await entryOf(concert.id, b)).toMatchObject({ status: 'left' });
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([1, 2, 3]);
    expect((await stats(concert.id)).waitlist).toEqual({ waiting: 0, offered: 0, accepted: 0, expired: 0, left: 2 });
  });

  it('puts an entry back in its place when Postgres refuses its offer, and offers again after the pause', async () => {
    const concert = await openConcert({ seats: 2, price: 10 });
    const [holder] = await buyers(concert.id, [[1, 2]]);
    const refused = await waiting(concert.id, 2);
    const behind = await waiting(concert.id, 1);
    // Postgres refuses this one fan's reservations, as a seat conflict would.
    const fn = `refuse_${crypto.randomUUID().replaceAll('-', '')}`;
    await directQuery(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE unique_violation USING MESSAGE = 'refused by the test'; END $$`,
    );
    await directQuery(`CREATE TRIGGER ${fn} BEFORE INSERT ON reservations FOR EACH ROW WHEN (NEW.user_id = '${refused.userId}' AND NEW.status = 'held') EXECUTE FUNCTION ${fn}()`);
    try {
      await refund(holder!);
      // The offer was made, refused, its seats released and its entry put back first in line; the
      // pause keeps the same seats from going round again at once (to the next fan either).
      expect(await entryOf(concert.id, refused)).toMatchObject({ status: 'waiting', position: 1 });
      expect(await entryOf(concert.id, behind)).toMatchObject({ status: 'waiting', position: 2 });
      expect(await liveReservationsOf(concert.id, refused.userId)).toEqual([]);
      expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([1, 2]);
    } finally {
      await directQuery(`DROP TRIGGER ${fn} ON reservations`);
      await directQuery(`DROP FUNCTION ${fn}()`);
    }
    // The alarm the pause armed offers again.
    expect(await runDurableObjectAlarm(room(concert.id))).toBe(true);
    expect(seatNumbers(await entryOf(concert.id, refused))).toEqual([1, 2]);
  });

  it('pushes the offer on the fan’s queue socket, who pays it without ever being admitted', async () => {
    const concert = await openConcert({ seats: 2, price: 100 });
    const buyer = await admittedUser(concert.id, 'buyer');
    expect((await charge(buyer.userToken, 200)).status).toBe(200);
    const bought = await (await hold(concert.id, buyer, [1, 2])).json<{ reservationId: string }>();
    expect((await pay(buyer.userToken, bought.reservationId)).status).toBe(201);

    // A fan who finds the line sold out, keeps its socket open and joins the waitlist.
    const fan = await newFan('ws');
    const joined = await api('/queue/token', { method: 'POST', headers: authed(fan.token), json: { concertId: concert.id } });
    const { token: queueToken, status } = await joined.json<{ token: string; status: string }>();
    expect(status).toBe('sold_out');
    const socket = await openQueueSocket(queueToken);
    try {
      await socket.waitFor('sold_out');
      expect(socket.messages.find((message) => message.status === 'sold_out')).toMatchObject({ waitlist: 'open' });
      expect((await joinWaitlist(concert.id, fan, { seats: 2, together: true })).status).toBe(201);

      expect((await api(`/reservations/${bought.reservationId}/refund`, { method: 'POST', headers: authed(buyer.userToken) })).status).toBe(200);
      await socket.waitForMessage((message) => message.type === 'waitlist_offer', 'waitlist_offer push');
      const pushed = socket.messages.find((message) => message.type === 'waitlist_offer') as unknown as Record<string, unknown>;
      const entry = await entryOf(concert.id, fan);
      expect(pushed).toEqual({
        type: 'waitlist_offer',
        reservationId: entry.offer!.reservationId,
        seats: entry.offer!.seats,
        amount: 200,
        expiresAt: entry.offer!.expiresAt,
      });

      expect((await charge(fan.token, 200)).status).toBe(200);
      expect((await pay(fan.token, entry.offer!.reservationId)).status).toBe(201);
      expect(await entryOf(concert.id, fan)).toMatchObject({ status: 'accepted' });
      // The place in line was never a session: it stays, sold out again.
      expect(await (await api('/queue/status', { headers: { 'Queue-Token': queueToken } })).json()).toMatchObject({ status: 'sold_out' });
    } finally {
      socket.ws.close();
    }
  });
});

describe('waitlist offers racing line fans', () => {
  it('offers each freed seat at most once, never more seats than were freed, and lets no line fan hold one', async () => {
    const concert = await openConcert({ seats: 12, price: 10, queue: { sessionSeconds: 3600, holdSeconds: 3600 } });
    const rivals = await Promise.all(Array.from({ length: 16 }, () => admittedUser(concert.id, 'rival')));
    const bought = await buyers(concert.id, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]);
    const entries: { fan: Fan; seats: number }[] = [];
    for (const [seats, together] of [[2, true], [1, false], [3, false], [2, false], [1, true], [4, true]] as const) {
      entries.push({ fan: await waiting(concert.id, seats, together), seats });
    }

    // Five purchases are refunded at once while sixteen fans the line admitted before the sell-out
    // (their sessions still live) try to hold exactly those seats, each a pair, over and over.
    const freed = bought.slice(0, 5);
    const freedSeats = 10;
    let running = true;
    const rivalAnswers: number[] = [];
    const grab = async (rival: AdmittedUser, i: number) => {
      for (let attempt = 0; running && attempt < 60; attempt++) {
        const first = 1 + ((i + attempt) % 5) * 2;
        const response = await hold(concert.id, rival, [first, first + 1]);
        rivalAnswers.push(response.status);
        await response.arrayBuffer();
      }
    };
    const racing = Promise.all(rivals.map(grab));
    await Promise.all(freed.map(refund));
    running = false;
    await racing;
    expect(rivalAnswers.length).toBeGreaterThan(0);
    expect(rivalAnswers.every((status) => status === 403)).toBe(true);

    // Every live reservation of the concert, by Postgres: no seat twice, and the offers within the
    // freed seats (seats 11 and 12 stay with their buyer).
    const live = await directQuery<{ id: string; user_id: string; seats: number[] }>(
      `SELECT r.id, r.user_id, array_agg(s.seat_number ORDER BY s.seat_number) AS seats
         FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id AND rs.active JOIN seats s ON s.id = rs.seat_id
        WHERE r.concert_id = $1 AND r.status IN ('held', 'confirmed') GROUP BY r.id, r.user_id`,
      [concert.id],
    );
    const all = live.flatMap((reservation) => reservation.seats);
    expect(new Set(all).size).toBe(all.length);
    const states = await Promise.all(entries.map(async ({ fan, seats }) => ({ seats, entry: await entryOf(concert.id, fan), fan })));
    const offeredSeats = states.flatMap(({ entry }) => entry.offer?.seats.map((seat) => seat.seatNumber) ?? []);
    expect(offeredSeats.length).toBeLessThanOrEqual(freedSeats);
    expect(offeredSeats.every((seat) => seat <= freedSeats)).toBe(true);
    for (const { seats, entry, fan } of states) {
      if (entry.status !== 'offered') continue;
      expect(entry.offer!.seats).toHaveLength(seats);
      expect(live.find((reservation) => reservation.id === entry.offer!.reservationId)).toMatchObject({ user_id: fan.userId });
    }
    // Every freed purchase is an adjacent pair, so whatever the order the refunds land in, the first
    // five entries are served ("4 together" never can be: no four adjacent seats come back).
    expect(states.map((state) => state.entry.status)).toEqual(['offered', 'offered', 'offered', 'offered', 'offered', 'waiting']);
    expect(offeredSeats).toHaveLength(9);
    expect((await stats(concert.id)).seats).toMatchObject({ held: 9, sold: 2, available: 1 });
  });
});
