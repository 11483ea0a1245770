// DESIGN.md §6 as one checker. Every concurrency, fault and model test ends with it: Postgres's own
// facts (one statement, so one snapshot) and, for every room in scope, the room's SQLite against them.
import { runInDurableObject } from 'cloudflare:test';
import { afterAll, afterEach, beforeEach, expect } from 'vitest';
import { room, seatMap } from './concerts.ts';
import { directQuery } from './postgres.ts';
import { findViolationsWith, readRoomTables } from './invariant-rules.ts';
import type { InvariantScope, QueryFn, RoomView, Violation } from './invariant-rules.ts';

export type { InvariantScope, QueryFn, Violation } from './invariant-rules.ts';

/** Postgres's seat statuses of a concert, by seat number. */
export async function postgresSeats(concertId: string): Promise<{ seatNumber: number; status: string }[]> {
  return directQuery<{ seatNumber: number; status: string }>(
    `SELECT seat_number AS "seatNumber", status FROM seats WHERE concert_id = $1 ORDER BY seat_number`,
    [concertId],
  );
}

export interface InvariantOptions {
  /** Postgres reads, e.g. one DirectClient kept open for a long run. @default directQuery */
  query?: QueryFn;
  /**
   * How long the rooms may take to agree with Postgres ("after quiet", §6.7): a room finishes some
   * work in the background (a lost reply resolved, a start-up reconciliation). @default 5000
   */
  settleMs?: number;
}

/** How many checks ran in this file, and how many violations they found. */
export const invariantCounts = { checks: 0, violations: 0 };

/** Now, by Postgres's clock: the start of a scope for {@link expectInvariants}. */
export async function invariantMark(): Promise<string> {
  const [row] = await directQuery<{ now: string }>(`SELECT clock_timestamp()::text AS now`);
  return row!.now;
}

/** The room's own state, read inside workerd: its seat map through its RPC surface, the rest from its SQLite. */
async function readRoom(concertId: string): Promise<RoomView> {
  const seats = await seatMap(concertId);
  const inside = await runInDurableObject(room(concertId), (_instance, state) => readRoomTables(state.storage.sql));
  return { seats, ...inside };
}

/** {@link findViolationsWith} over Postgres (by default a connection per query) and the rooms as workerd sees them. */
export function findViolations(scope: InvariantScope, options: InvariantOptions = {}): Promise<Violation[]> {
  return findViolationsWith({ query: options.query ?? directQuery, readRoom }, scope, options.settleMs ?? 5_000);
}

/** {@link findViolations}, failing the test with every violation it found. */
export async function expectInvariants(scope: InvariantScope, options: InvariantOptions = {}): Promise<void> {
  const violations = await findViolations(scope, options);
  invariantCounts.checks++;
  invariantCounts.violations += violations.length;
  expect(violations, 'DESIGN.md §6 invariants').toEqual([]);
}

/**
 * Runs {@link expectInvariants} after every test of the file over everything the test created
 * (concerts, and users who moved points or held seats), and logs the file's count at the end.
 */
export function checkInvariantsAfterEach(options: InvariantOptions = {}): void {
  let mark: string | undefined;
  beforeEach(async () => {
    mark = await invariantMark();
  });
  afterEach(async () => {
    if (mark !== undefined) await expectInvariants({ since: mark }, options);
  });
  afterAll(() => {
    console.log(`[invariants] ${invariantCounts.checks} checks, ${invariantCounts.violations} violations`);
  });
}

/**
 * DESIGN.md §6 invariants 1 and 7 for one concert (every rule of {@link findViolations} over it):
 * no seat has more than one live reservation, every held/sold seat has exactly one and every
 * available seat none, and the room's map equals Postgres's.
 */
export async function expectSeatInvariants(concertId: string): Promise<void> {
  await expectInvariants({ concertIds: [concertId] });
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
