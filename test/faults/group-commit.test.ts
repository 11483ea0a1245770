// Group commit of holds (issue 19): holds a room decides while its hold statements are on their way
// go to Postgres together in the next statement. The Neon adapter slows every message so that many
// holds are decided while the first ones are still being written; each fan is answered only after
// their own row committed, with the body stored for their Idempotency-Key.
import { describe, expect, it } from 'vitest';
import { HOLD_STATEMENTS_IN_FLIGHT } from '../../src/durable-objects/concert-room/checkout.ts';
import { admittedUser, hold, room, seatMap } from '../helpers/concerts.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { expectSeatInvariants } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { eventually, warmConcert } from './helpers.ts';

const DELAY_MS = 1_000;
const FANS = 12;

/**
 * Holds seat i+1 for fan i with Postgres delayed: the first HOLD_STATEMENTS_IN_FLIGHT go out first and,
 * once the room has sent their statements (so every statement slot is busy), the rest at once.
 */
async function holdTogether(concertId: string, fans: Awaited<ReturnType<typeof admittedUser>>[]) {
  const before = await room(concertId).requestCounts();
  await setFault('neon', 'delay', DELAY_MS);
  const holdOne = async (i: number) => {
    const key = `group-${crypto.randomUUID()}`;
    const response = await hold(concertId, fans[i]!, [i + 1], { 'Idempotency-Key': key });
    return { status: response.status, body: await response.text(), key };
  };
  let answers: { status: number; body: string; key: string }[];
  try {
    const first = fans.slice(0, HOLD_STATEMENTS_IN_FLIGHT).map((_, i) => holdOne(i));
    await eventually('the first statements sent', async () =>
      (await room(concertId).requestCounts()).holdStatements - before.holdStatements >= HOLD_STATEMENTS_IN_FLIGHT ? true : undefined,
    );
    const rest = fans.slice(HOLD_STATEMENTS_IN_FLIGHT).map((_, i) => holdOne(HOLD_STATEMENTS_IN_FLIGHT + i));
    answers = await Promise.all([...first, ...rest]);
  } finally {
    await clearFault('neon');
  }
  const after = await room(concertId).requestCounts();
  return { answers, statements: after.holdStatements - before.holdStatements, holdsWritten: after.holdsWritten - before.holdsWritten };
}

describe('group commit of holds', () => {
  it('writes holds decided while earlier ones are on their way in one statement, each answered once its row committed', async () => {
    const concert = await warmConcert({ seats: 40, warm: 2 });
    const fans = await Promise.all(Array.from({ length: FANS }, () => admittedUser(concert.id)));
    const { answers, statements, holdsWritten } = await holdTogether(concert.id, fans);

    expect(answers.map((a) => a.status)).toEqual(fans.map(() => 201));
    expect(holdsWritten).toBe(FANS);
    // The first HOLD_STATEMENTS_IN_FLIGHT holds went alone; every one decided while they were on their
    // way waited for the next statement, so far fewer statements than holds.
    expect(statements).toBeGreaterThanOrEqual(2);
    expect(statements).toBeLessThanOrEqual(HOLD_STATEMENTS_IN_FLIGHT + Math.ceil((FANS - HOLD_STATEMENTS_IN_FLIGHT) / 2));

    // Every answered hold is in Postgres, held, with its seat.
    for (const [i, answer] of answers.entries()) {
      const { reservationId } = JSON.parse(answer.body) as { reservationId: string };
      const rows = await directQuery<{ status: string; seat_number: number }>(
        `SELECT r.status, s.seat_number FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id AND rs.active
           JOIN seats s ON s.id = rs.seat_id WHERE r.id = $1`,
        [reservationId],
      );
      expect(rows).toEqual([{ status: 'held', seat_number: i + 1 }]);
    }
    // Each fan's record was written with the group: a retry replays the very same bytes.
    for (const [i, answer] of answers.entries()) {
      const replay = await hold(concert.id, fans[i]!, [i + 1], { 'Idempotency-Key': answer.key });
      expect(replay.status).toBe(201);
      expect(replay.headers.get('Idempotent-Replayed')).toBe('true');
      expect(await replay.text()).toBe(answer.body);
    }
    await expectSeatInvariants(concert.id);
  });

  it('writes a group Postgres refuses hold by hold: only the hold whose seat Postgres has taken is refused', async () => {
    const concert = await warmConcert({ seats: 40, warm: 2 });
    const fans = await Promise.all(Array.from({ length: FANS }, () => admittedUser(concert.id)));
    // Seat 9 is sold behind the room's back: the room still offers it, Postgres refuses it.
    await directQuery(`UPDATE seats SET status = 'sold' WHERE concert_id = $1 AND seat_number = 9`, [concert.id]);
    const { answers, statements, holdsWritten } = await holdTogether(concert.id, fans);

    const refused = answers.flatMap((answer, i) => (answer.status === 201 ? [] : [{ seat: i + 1, status: answer.status, body: JSON.parse(answer.body) as { code: string } }]));
    expect(refused.map(({ seat, status, body }) => [seat, status, body.code])).toEqual([[9, 409, 'SEAT_UNAVAILABLE']]);
    // Seat 9 was in a group (it went after the first statements): that group was refused as a whole and
    // each of its holds written again alone, so some holds were carried twice.
    expect(holdsWritten).toBeGreaterThan(FANS);
    expect(statements).toBeGreaterThan(HOLD_STATEMENTS_IN_FLIGHT + 1);
    for (const [i, answer] of answers.entries()) {
      if (answer.status !== 201) continue;
      const { reservationId } = JSON.parse(answer.body) as { reservationId: string };
      const rows = await directQuery<{ seat_number: number }>(
        `SELECT s.seat_number FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id WHERE rs.reservation_id = $1 AND rs.active`,
        [reservationId],
      );
      expect(rows).toEqual([{ seat_number: i + 1 }]);
    }
    // The refused hold left nothing in Postgres, and the room caught up with Postgres (seat 9 sold).
    expect(await directQuery(`SELECT 1 FROM reservations WHERE concert_id = $1 AND user_id = $2`, [concert.id, fans[8]!.userId])).toEqual([]);
    await eventually('the room to learn seat 9 is sold', async () =>
      (await seatMap(concert.id)).find((seat) => seat.seatNumber === 9)?.status === 'sold' ? true : undefined,
    );
  });
});
