import { expect } from 'vitest';
import { stats } from './concerts.ts';
import { directQuery } from './postgres.ts';

/**
 * Counts that any effect of a request moves: rows of every table a route writes, the money in
 * balances, and the seats sold. Taken before and after an attack or a fuzz batch, they show that a
 * refused request changed nothing. (Hold expiry, which alarms run in the background, moves a
 * reservation from held to expired: neither count here changes with it.)
 */
export interface DbFingerprint {
  reservations: number;
  confirmed: number;
  cancelled: number;
  payments: number;
  ledger: number;
  balances: number;
  balanceTotal: number;
  idempotencyKeys: number;
  concerts: number;
  seatsSold: number;
}

/** One query over a direct connection (see directQuery): the witness for what the app wrote. */
export async function dbFingerprint(): Promise<DbFingerprint> {
  const [row] = await directQuery<Record<keyof DbFingerprint, string>>(`
    SELECT (SELECT count(*) FROM reservations)::text AS reservations,
           (SELECT count(*) FROM reservations WHERE status = 'confirmed')::text AS confirmed,
           (SELECT count(*) FROM reservations WHERE status = 'cancelled')::text AS cancelled,
           (SELECT count(*) FROM payments)::text AS payments,
           (SELECT count(*) FROM balance_ledger)::text AS ledger,
           (SELECT count(*) FROM balances)::text AS balances,
           (SELECT coalesce(sum(amount), 0) FROM balances)::text AS "balanceTotal",
           (SELECT count(*) FROM idempotency_keys)::text AS "idempotencyKeys",
           (SELECT count(*) FROM concerts)::text AS concerts,
           (SELECT count(*) FROM seats WHERE status = 'sold')::text AS "seatsSold"`);
  return Object.fromEntries(Object.entries(row!).map(([key, value]) => [key, Number(value)])) as unknown as DbFingerprint;
}

/** The room's own counts for a concert: its line and its seat map (from the admin stats). */
export async function roomFingerprint(concertId: string) {
  const { waiting, admitted, active, completed, seats } = await stats(concertId);
  return { waiting, admitted, active, completed, seats };
}

/** Both fingerprints, for a set of concerts. */
export async function fingerprint(concertIds: readonly string[] = []) {
  return { db: await dbFingerprint(), rooms: await Promise.all(concertIds.map(roomFingerprint)) };
}

/** Runs `attack`, then asserts that neither Postgres nor the rooms of `concertIds` changed. */
export async function expectNoChange<T>(concertIds: readonly string[], attack: () => Promise<T>): Promise<T> {
  const before = await fingerprint(concertIds);
  const result = await attack();
  expect(await fingerprint(concertIds)).toEqual(before);
  return result;
}
