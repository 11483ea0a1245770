import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { adminHeaders, admittedUser, dayFromNow, DEFAULT_CONCERT_DAYS_AHEAD, hold, openConcert, room, seatMap, stats, tokenFor, type AdmittedUser } from '../helpers/concerts.ts';
import { dueInPostgres } from '../helpers/expiry.ts';
import { checkInvariantsAfterEach } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { openQueueSocket } from '../helpers/queue-socket.ts';

/*
 * The waitlist for freed seats (issue 13): fans of a sold-out concert join with the number of seats
 * they want; seats that come back (expiry, cancel, refund) are offered in join order, first-fit, as
 * holds made for them, in the same room transaction that freed the seats. Every test ends with the
 * DESIGN.md §6 checker over everything it created.
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
  it('refuses bad bodies (400), unknown concerts (404), open concerts (409) and too many seats (422); re-joining returns the same entry (200)', async () => {
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
    expect(notOpen.detail).toMatch(/sold-out|sold out/);
    await expectProblem(await readEntry(concert.id, fan), 404, 'WAITLIST_ENTRY_NOT_FOUND');

    // Held to the last seat (not even sold): no seat available, so it opens.
    const [owner] = await holders(concert.id, [[1, 2, 3], [4, 5, 6]]);
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

    // The owner of 3 seats may wait for 1 more, not 2.
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
    await holders(concert.id, [[1]]);
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

describe('waitlist offers', () => {
  it('offers an expired hold’s seats to the first entry, which pays through POST /payment and is accepted', async () => {
    const concert = await openConcert({ seats: 4, price: 100 });
    const [first] = await holders(concert.id, [[1, 2], [3, 4]]);
    const a = await waiting(concert.id, 2);
    const b = await waiting(concert.id, 2);

    await expire(concert.id, first!.reservationId);
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

  it('passes an offer that expires unpaid to the next entry', async () => {
    const concert = await openConcert({ seats: 4, price: 100, queue: { waitlistOfferSeconds: 30 } });
    const [first] = await holders(concert.id, [[1, 2], [3, 4]]);
    const a = await waiting(concert.id, 2);
    const b = await waiting(concert.id, 1);

    await expire(concert.id, first!.reservationId);
    const offerA = (await entryOf(concert.id, a)).offer!;
    expect(Date.parse(offerA.expiresAt) - Date.now()).toBeLessThanOrEqual(30_000);
    await expire(concert.id, offerA.reservationId);

    expect(await entryOf(concert.id, a)).toMatchObject({ status: 'expired', reason: 'OFFER_EXPIRED' });
    const offerB = await entryOf(concert.id, b);
    expect(offerB).toMatchObject({ status: 'offered' });
    expect(seatNumbers(offerB)).toEqual([1]);
    // Seat 2 had nobody left to go to: anyone in the line may hold it now.
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([2]);
    expect((await charge(a.token, 200)).status).toBe(200);
    await expectProblem(await pay(a.token, offerA.reservationId), 409, 'RESERVATION_EXPIRED');
    expect((await stats(concert.id)).waitlist).toMatchObject({ offered: 1, expired: 1 });
  });

  it('gives a together entry adjacent seats of one section, or lets it wait while a later, smaller entry is served (first-fit)', async () => {
    const concert = await openConcert({ seats: 6, price: 50 });
    const [h1, h2, h3] = await holders(concert.id, [[1], [2], [3], [4, 5, 6]]);
    const pair = await waiting(concert.id, 2, true);
    const single = await waiting(concert.id, 1);
    const two = await waiting(concert.id, 2);

    await expire(concert.id, h1!.reservationId); // seat 1: not enough for the pair; the single takes it
    expect(await entryOf(concert.id, pair)).toMatchObject({ status: 'waiting', position: 1 });
    expect(seatNumbers(await entryOf(concert.id, single))).toEqual([1]);
    expect(await entryOf(concert.id, two)).toMatchObject({ status: 'waiting', position: 2 });

    await expire(concert.id, h3!.reservationId); // seat 3 alone: neither the pair nor two seats
    expect(await entryOf(concert.id, pair)).toMatchObject({ status: 'waiting' });
    expect(await entryOf(concert.id, two)).toMatchObject({ status: 'waiting' });
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([3]);

    await expire(concert.id, h2!.reservationId); // seats 2 and 3, side by side: the pair, first in line
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
    const [h2, h3] = await holders(concert.id, [[2], [3], [1, 4]]);
    const pair = await waiting(concert.id, 2, true);
    const two = await waiting(concert.id, 2);
    await expire(concert.id, h2!.reservationId);
    await expire(concert.id, h3!.reservationId);
    // Seats 2 (stalls) and 3 (circle) are numbered side by side but are not together.
    expect(await entryOf(concert.id, pair)).toMatchObject({ status: 'waiting', position: 1 });
    const offered = await entryOf(concert.id, two);
    expect(offered.offer).toMatchObject({ amount: 120, seats: [{ seatNumber: 2, section: 'stalls' }, { seatNumber: 3, section: 'circle' }] });
  });

  it('offers the seats of a refund and of a cancelled hold; a fan who leaves or declines releases the offer', async () => {
    const concert = await openConcert({ seats: 3, price: 100 });
    const buyer = await admittedUser(concert.id, 'buyer');
    expect((await charge(buyer.userToken, 100)).status).toBe(200);
    const bought = await (await hold(concert.id, buyer, [1])).json<{ reservationId: string }>();
    expect((await pay(buyer.userToken, bought.reservationId)).status).toBe(201);
    const [holder] = await holders(concert.id, [[2, 3]]);
    const a = await waiting(concert.id, 1);
    const b = await waiting(concert.id, 2, true);

    const refunded = await api(`/reservations/${bought.reservationId}/refund`, { method: 'POST', headers: authed(buyer.userToken) });
    expect(refunded.status).toBe(200);
    const offerA = await entryOf(concert.id, a);
    expect(seatNumbers(offerA)).toEqual([1]);

    expect((await api(`/reservations/${holder!.reservationId}`, { method: 'DELETE', headers: authed(holder!.user.userToken) })).status).toBe(204);
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

  it('ends an entry whose owner meanwhile got seats enough to pass the cap (HOLD_LIMIT) and serves the next', async () => {
    const concert = await openConcert({ seats: 6, price: 10 });
    const greedy = await admittedUser(concert.id, 'greedy');
    const [big, small] = await holders(concert.id, [[1, 2, 3, 4], [5, 6]]);
    const greedyFan = { userId: greedy.userId, token: greedy.userToken };
    expect((await joinWaitlist(concert.id, greedyFan, { seats: 4 })).status).toBe(201);
    const next = await waiting(concert.id, 1);

    // Two seats come back: not enough for 4; the 1-seat fan behind is served (first-fit).
    expect((await api(`/reservations/${small!.reservationId}`, { method: 'DELETE', headers: authed(small!.user.userToken) })).status).toBe(204);
    expect(await entryOf(concert.id, greedyFan)).toMatchObject({ status: 'waiting', position: 1 });
    const nextOffer = await entryOf(concert.id, next);
    expect(seatNumbers(nextOffer)).toEqual([5]);
    // Seat 6 is left to the line, where the greedy fan (admitted) holds it.
    expect((await hold(concert.id, greedy, [6])).status).toBe(201);

    await expire(concert.id, big!.reservationId);
    // 1 held + 4 wanted > 4: the entry ends; the seats stay with nobody waiting.
    expect(await entryOf(concert.id, greedyFan)).toMatchObject({ status: 'expired', reason: 'HOLD_LIMIT' });
    expect((await seatMap(concert.id, 'available')).map((seat) => seat.seatNumber)).toEqual([1, 2, 3, 4]);
  });

  it('puts an entry back in its place when Postgres refuses its offer, and offers again after the pause', async () => {
    const concert = await openConcert({ seats: 2, price: 10 });
    const [holder] = await holders(concert.id, [[1, 2]]);
    const refused = await waiting(concert.id, 2);
    const behind = await waiting(concert.id, 1);
    // Postgres refuses this one fan's reservations, as a seat conflict would.
    const fn = `refuse_${crypto.randomUUID().replaceAll('-', '')}`;
    await directQuery(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE unique_violation USING MESSAGE = 'refused by the test'; END $$`,
    );
    await directQuery(`CREATE TRIGGER ${fn} BEFORE INSERT ON reservations FOR EACH ROW WHEN (NEW.user_id = '${refused.userId}' AND NEW.status = 'held') EXECUTE FUNCTION ${fn}()`);
    try {
      await expire(concert.id, holder!.reservationId);
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

describe('waitlist offers racing new holds', () => {
  it('holds or sells each freed seat at most once and never offers more seats than were freed', async () => {
    const concert = await openConcert({ seats: 12, price: 10, queue: { sessionSeconds: 3600, holdSeconds: 3600 } });
    const held = await holders(concert.id, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]);
    const entries: { fan: Fan; seats: number }[] = [];
    for (const [seats, together] of [[2, true], [1, false], [3, false], [2, false], [1, true], [4, true]] as const) {
      entries.push({ fan: await waiting(concert.id, seats, together), seats });
    }
    const rivals = await Promise.all(Array.from({ length: 16 }, () => admittedUser(concert.id, 'rival')));

    // Five holds end at once (four cancelled, one expiring) while sixteen admitted fans try to hold
    // exactly those seats, each a pair, over and over.
    const freed = held.slice(0, 5);
    const freedSeats = 10;
    let running = true;
    const rivalHolds: string[] = [];
    const grab = async (rival: AdmittedUser, i: number) => {
      for (let attempt = 0; running && attempt < 60; attempt++) {
        const first = 1 + ((i + attempt) % 5) * 2;
        const response = await hold(concert.id, rival, [first, first + 1]);
        if (response.status === 201) {
          rivalHolds.push((await response.json<{ reservationId: string }>()).reservationId);
          return;
        }
        await response.arrayBuffer();
      }
    };
    const racing = Promise.all(rivals.map(grab));
    const releasing = Promise.all([
      ...freed.slice(0, 4).map(({ user, reservationId }) => api(`/reservations/${reservationId}`, { method: 'DELETE', headers: authed(user.userToken) })),
      expire(concert.id, freed[4]!.reservationId),
    ]);
    const released = await releasing;
    running = false;
    await racing;
    for (const response of released) if (response) expect(response.status).toBe(204);

    // Every live reservation of the concert, by Postgres: no seat twice, and the offers within the
    // freed seats (seats 11 and 12 stay with their holder).
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
    // Freed seats go to the waitlist first, in the transaction that frees them, before any rival can
    // hold them. Every freed hold is an adjacent pair, so whatever the order: the 1st pair goes to
    // "2 together", the 2nd to "1" and "1 together" (first-fit past "3" and "2"), the 3rd to "2".
    // Only then may seats be left over for rivals, or for "3" if a 5th pair comes back before they
    // take them; "4 together" can never be served.
    expect([0, 1, 3, 4].map((i) => states[i]!.entry.status)).toEqual(['offered', 'offered', 'offered', 'offered']);
    expect(states[5]!.entry.status).toBe('waiting');
    const rivalSeats = live.filter((reservation) => rivalHolds.includes(reservation.id)).flatMap((reservation) => reservation.seats);
    expect(offeredSeats.length + rivalSeats.length).toBeLessThanOrEqual(freedSeats);
    expect((await stats(concert.id)).seats).toMatchObject({ held: 2 + offeredSeats.length + rivalSeats.length });
  });
});
