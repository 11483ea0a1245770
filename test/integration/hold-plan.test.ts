import { describe, expect, it } from 'vitest';
import { holdStatement } from '../../src/db/reservations-repo.ts';
import { createConcert } from '../helpers/concerts.ts';
import { directQuery, openDirectClient } from '../helpers/postgres.ts';
import { planNodes, type PlanNode } from '../helpers/postgres-plan.ts';


/** Rows a node looked at: those it passed on and those it read and threw away. */
const rowsLookedAt = (node: PlanNode) =>
  node['Actual Rows'] * node['Actual Loops'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0);

describe('the hold statement in Postgres', () => {
  // A concert is created just before its on-sale, so Postgres has no statistics for its seats when
  // the rush of holds arrives; the plan must not depend on them.
  it('reads only the seats it holds, by primary key, on a concert Postgres has no statistics for', async () => {
    const concert = await createConcert({ seats: 5_000 });
    const seatIds = (
      await directQuery<{ id: string }>(`SELECT id FROM seats WHERE concert_id = $1 AND seat_number IN (4000, 4001) ORDER BY seat_number`, [concert.id])
    ).map((row) => Number(row.id));
    const { text, values } = holdStatement({
      reservationId: crypto.randomUUID(),
      concertId: concert.id,
      userId: 'plan-probe',
      amount: 1000,
      expiresAt: Date.now() + 60_000,
      seatIds,
    });
    const client = await openDirectClient();
    let plan: PlanNode;
    try {
      await client.query('BEGIN');
      const [row] = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
      plan = row!['QUERY PLAN'][0].Plan;
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.close();
    }
    const all = [...planNodes(plan)];
    expect(all.filter((node) => node['Relation Name'] === 'seats' && node['Node Type'] === 'Seq Scan')).toEqual([]);
    const seatIndexes = all.map((node) => node['Index Name']).filter((name) => name?.startsWith('seats_'));
    expect(seatIndexes.length).toBeGreaterThan(0);
    expect(new Set(seatIndexes)).toEqual(new Set(['seats_pkey']));
    const looked = all.reduce((sum, node) => sum + (node['Relation Name'] === 'seats' || node['Node Type'].includes('Join') ? rowsLookedAt(node) : 0), 0);
    expect(looked).toBeLessThanOrEqual(4 * seatIds.length);
  });
});
