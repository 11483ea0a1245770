import type { Sql } from './http.ts';

/** Points taken by payments for one concert (one HTTP query). */
export async function concertRevenue(sql: Sql, concertId: string): Promise<number> {
  const rows = await sql.query(
    `SELECT COALESCE(SUM(p.amount), 0) AS revenue FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE r.concert_id = $1`,
    [concertId],
  );
  return Number((rows[0] as { revenue: string } | undefined)?.revenue ?? 0);
}
