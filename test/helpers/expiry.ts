import { directQuery } from './postgres.ts';

/**
 * Makes live holds due by Postgres's clock. Expiry is guarded by it (src/db/reservations-repo.ts
 * endHolds), so a test that runs a room's alarm early (`runDurableObjectAlarm`: the room takes the
 * armed time as "now") must first move the holds' `expires_at` past in Postgres too. Returns the ids.
 */
export async function dueInPostgres(which: { concertId: string } | { reservationId: string }): Promise<string[]> {
  const [column, value] = 'concertId' in which ? ['concert_id', which.concertId] : ['id', which.reservationId];
  const rows = await directQuery<{ id: string }>(
    `UPDATE reservations SET expires_at = now() - interval '1 millisecond' WHERE ${column} = $1 AND status = 'held' RETURNING id`,
    [value],
  );
  return rows.map((row) => row.id);
}
