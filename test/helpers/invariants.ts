import { expect } from 'vitest';
import { seatMap } from './concerts.ts';
import { directQuery } from './postgres.ts';

/** Postgres's seat statuses of a concert, by seat number. */
export async function postgresSeats(concertId: string): Promise<{ seatNumber: number; status: string }[]> {
  return directQuery<{ seatNumber: number; status: string }>(
    `SELECT seat_number AS "seatNumber", status FROM seats WHERE concert_id = $1 ORDER BY seat_number`,
    [concertId],
  );
}

/**
 * DESIGN.md §6 invariants 1 and 7 for one concert: no seat has more than one live reservation,
 * every held/sold seat has exactly one and every available seat none, and the room's map equals
 * Postgres's.
 */
export async function expectSeatInvariants(concertId: string): Promise<void> {
  const doubleBooked = await directQuery(
    `SELECT rs.seat_id, COUNT(*) AS n FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
      WHERE rs.active AND s.concert_id = $1 GROUP BY rs.seat_id HAVING COUNT(*) > 1`,
    [concertId],
  );
  expect(doubleBooked).toEqual([]);
  const mismatched = await directQuery(
    `SELECT s.seat_number, s.status, COUNT(rs.seat_id) AS live FROM seats s
       LEFT JOIN reservation_seats rs ON rs.seat_id = s.id AND rs.active
      WHERE s.concert_id = $1
      GROUP BY s.id HAVING (s.status = 'available') <> (COUNT(rs.seat_id) = 0)`,
    [concertId],
  );
  expect(mismatched).toEqual([]);
  const room = (await seatMap(concertId)).map(({ seatNumber, status }) => ({ seatNumber, status }));
  expect(room).toEqual(await postgresSeats(concertId));
}

/** DESIGN.md §6 invariant 3 for one user: balance ≥ 0 and equal to the sum of their ledger deltas. */
export async function expectLedgerMatchesBalance(userId: string): Promise<number> {
  const [row] = await directQuery<{ balance: string | null; ledger: string | null }>(
    `SELECT (SELECT amount FROM balances WHERE user_id = $1) AS balance,
            (SELECT SUM(delta) FROM balance_ledger WHERE user_id = $1) AS ledger`,
    [userId],
  );
  const balance = Number(row?.balance ?? 0);
  expect(balance).toBeGreaterThanOrEqual(0);
  expect(Number(row?.ledger ?? 0)).toBe(balance);
  return balance;
}
