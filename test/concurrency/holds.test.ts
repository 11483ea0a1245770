import { describe, expect, it } from 'vitest';
import { admittedUser, hold, openConcert } from '../helpers/concerts.ts';
import { expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';

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
      await Promise.all(responses.filter((r) => r.status === 201).map((r) => r.arrayBuffer()));
      await expectSeatInvariants(concert.id);
    });
  }

  it('gives 1,000 concurrent holds over 100 seats exactly 100 winners and no double booking', async () => {
    const concert = await openConcert({ seats: 100 });
    const users = [];
    for (let batch = 0; batch < 10; batch++) {
      users.push(...(await Promise.all(Array.from({ length: 100 }, () => admittedUser(concert.id)))));
    }
    const responses = await Promise.all(users.map((user, i) => hold(concert.id, user, [(i % 100) + 1])));
    const statuses = responses.map((r) => r.status);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(statuses.filter((s) => s === 201)).toHaveLength(100);
    expect(statuses.filter((s) => s === 409)).toHaveLength(900);
    const live = await directQuery<{ n: string }>(
      `SELECT COUNT(*) AS n FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id WHERE rs.active AND s.concert_id = $1`,
      [concert.id],
    );
    expect(Number(live[0]!.n)).toBe(100);
    await expectSeatInvariants(concert.id);
  });
});
