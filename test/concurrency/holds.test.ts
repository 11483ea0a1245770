import { describe, expect, it } from 'vitest';
import { admittedUser, hold, openConcert } from '../helpers/concerts.ts';
import { checkInvariantsAfterEach, expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';

checkInvariantsAfterEach();

/** Postgres's live owner of each seat of a concert: seat number → {reservation, user}. */
async function liveOwners(concertId: string): Promise<Map<number, { reservationId: string; userId: string }>> {
  const rows = await directQuery<{ seat_number: number; reservation_id: string; user_id: string }>(
    `SELECT s.seat_number, r.id AS reservation_id, r.user_id
       FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id JOIN reservations r ON r.id = rs.reservation_id
      WHERE rs.active AND s.concert_id = $1`,
    [concertId],
  );
  return new Map(rows.map((row) => [row.seat_number, { reservationId: row.reservation_id, userId: row.user_id }]));
}

interface HoldBody {
  reservationId: string;
  seats: { seatNumber: number }[];
}

describe('concurrent seat holds', () => {
  for (const contenders of [10, 50, 100]) {
    it(`lets exactly one of ${contenders} concurrent holds of one seat win`, async () => {
      const concert = await openConcert({ seats: 10 });
      const users = await Promise.all(Array.from({ length: contenders }, () => admittedUser(concert.id)));
      const responses = await Promise.all(users.map((user) => hold(concert.id, user, [7])));
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(contenders - 1);
      const losers = await Promise.all(responses.filter((r) => r.status === 409).map((r) => r.json<{ code: string; seats: number[] }>()));
      expect(losers.every((body) => body.code === 'SEAT_UNAVAILABLE' && body.seats.join() === '7')).toBe(true);
      // The winner holds seat 7, and only seat 7, under the reservation it was told of.
      const winnerIndex = statuses.indexOf(201);
      const won = await responses[winnerIndex]!.json<HoldBody>();
      expect(won.seats.map((s) => s.seatNumber)).toEqual([7]);
      expect([...(await liveOwners(concert.id))]).toEqual([[7, { reservationId: won.reservationId, userId: users[winnerIndex]!.userId }]]);
      await expectSeatInvariants(concert.id);
    });
  }

  it('gives 1,000 concurrent holds over 100 seats exactly 100 winners and no double booking', async () => {
    const concert = await openConcert({ seats: 100 });
    const users = [];
    for (let batch = 0; batch < 10; batch++) {
      users.push(...(await Promise.all(Array.from({ length: 100 }, () => admittedUser(concert.id)))));
    }
    const seatOf = (i: number) => (i % 100) + 1;
    const responses = await Promise.all(users.map((user, i) => hold(concert.id, user, [seatOf(i)])));
    const outcomes = await Promise.all(
      responses.map(async (r, i) => ({ i, status: r.status, body: await r.json<HoldBody & { code?: string; seats: number[] | { seatNumber: number }[] }>() })),
    );
    expect(outcomes.filter((o) => o.status === 201)).toHaveLength(100);
    expect(outcomes.filter((o) => o.status === 409)).toHaveLength(900);
    // Exactly one winner per seat, holding the seat it asked for; every loser was refused that seat.
    const winners = new Map<number, { reservationId: string; userId: string }>();
    for (const { i, status, body } of outcomes) {
      if (status === 201) {
        expect(body.seats.map((s) => (s).seatNumber)).toEqual([seatOf(i)]);
        expect(winners.has(seatOf(i))).toBe(false);
        winners.set(seatOf(i), { reservationId: body.reservationId, userId: users[i]!.userId });
      } else {
        expect({ code: body.code, seats: body.seats }).toEqual({ code: 'SEAT_UNAVAILABLE', seats: [seatOf(i)] });
      }
    }
    expect([...winners.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    // Postgres's live owner of every seat is the very winner the API named.
    const owners = await liveOwners(concert.id);
    expect(new Map([...owners].sort(([a], [b]) => a - b))).toEqual(new Map([...winners].sort(([a], [b]) => a - b)));
    await expectSeatInvariants(concert.id);
  });
});
