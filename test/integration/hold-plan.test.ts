import { describe, expect, it } from 'vitest';
import { holdsStatement, holdStatement } from '../../src/db/reservations-repo.ts';
import { createConcert } from '../helpers/concerts.ts';
import { directQuery, openDirectClient } from '../helpers/postgres.ts';
import { planNodes, type PlanNode } from '../helpers/postgres-plan.ts';


/** Rows a node looked at: those it passed on and those it read and threw away. */
const rowsLookedAt = (node: PlanNode) =>
  node['Actual Rows'] * node['Actual Loops'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0);

/** The plan of `statement` run (and rolled back) on a fresh concert's seats. */
async function planOf(text: string, values: unknown[]): Promise<PlanNode[]> {
  const client = await openDirectClient();
  try {
    await client.query('BEGIN');
    const [row] = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    return [...planNodes(row!['QUERY PLAN'][0].Plan)];
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.close();
  }
}

/** The seats a plan reached by primary key only, looking at no more rows than `4 × seats`. */
function expectSeatsByKeyOnly(all: PlanNode[], seats: number): void {
  expect(all.filter((node) => node['Relation Name'] === 'seats' && node['Node Type'] === 'Seq Scan')).toEqual([]);
  const seatIndexes = all.map((node) => node['Index Name']).filter((name) => name?.startsWith('seats_'));
  expect(seatIndexes.length).toBeGreaterThan(0);
  expect(new Set(seatIndexes)).toEqual(new Set(['seats_pkey']));
  const looked = all.reduce((sum, node) => sum + (node['Relation Name'] === 'seats' || node['Node Type'].includes('Join') ? rowsLookedAt(node) : 0), 0);
  expect(looked).toBeLessThanOrEqual(4 * seats);
}

const seatIdsOf = async (concertId: string, numbers: number[]) =>
  (await directQuery<{ id: string }>(`SELECT id FROM seats WHERE concert_id = $1 AND seat_number = ANY($2::int[]) ORDER BY seat_number`, [concertId, numbers])).map((row) =>
    Number(row.id),
  );

describe('the hold statement in Postgres', () => {
  // A concert is created just before its on-sale, so Postgres has no statistics for its seats when
  // the rush of holds arrives; the plan must not depend on them.
  it('reads only the seats it holds, by primary key, on a concert Postgres has no statistics for', async () => {
    const concert = await createConcert({ seats: 5_000 });
    const seatIds = await seatIdsOf(concert.id, [4000, 4001]);
    const { text, values } = holdStatement({
      reservationId: crypto.randomUUID(),
      concertId: concert.id,
      userId: 'plan-probe',
      amount: 1000,
      expiresAt: Date.now() + 60_000,
      seatIds,
    });
    expectSeatsByKeyOnly(await planOf(text, values), seatIds.length);
  });

  it('does the same for a group of holds written in one statement (group commit)', async () => {
    const concert = await createConcert({ seats: 5_000 });
    const groups = await Promise.all(Array.from({ length: 16 }, (_, i) => seatIdsOf(concert.id, [3000 + 2 * i, 3001 + 2 * i])));
    const { text, values } = holdsStatement(
      concert.id,
      groups.map((seatIds, i) => ({
        hold: { reservationId: crypto.randomUUID(), concertId: concert.id, userId: `plan-probe-${i}`, amount: 1000, expiresAt: Date.now() + 60_000, seatIds },
        record: { claim: { userId: `plan-probe-${i}`, key: `k-${i}`, requestHash: 'h' }, status: 201, body: '{}' },
      })),
    );
    expectSeatsByKeyOnly(await planOf(text, values), groups.flat().length);
  });
});
