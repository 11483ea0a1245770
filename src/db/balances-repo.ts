import type { PoolClient } from '@neondatabase/serverless';
import { isRecordConflict, LIVE_RECORD, toStoredResponse, type IdempotencyClaim, type StoredResponse } from '../lib/idempotency.ts';
import type { Sql } from './http.ts';

/** Highest balance a user may have (DESIGN.md §3); the column's CHECK says the same. */
export const BALANCE_CAP = 1_000_000_000;

export type BalanceChange =
  | { ok: true; balance: number }
  | { ok: false; reason: 'INSUFFICIENT_BALANCE' | 'BALANCE_LIMIT'; balance: number }
  /** `storedFence`: the fence Postgres holds, which the grant's did not exceed. */
  | { ok: false; reason: 'FENCED'; balance: number; storedFence: number };

export type LedgerKind = 'charge' | 'use' | 'payment' | 'refund';

export interface BalanceMove {
  userId: string;
  delta: number;
  kind: LedgerKind;
  reference: string | null;
  /** Fencing token of the lock grant; null only when a test switch bypasses the lock. */
  fence: number | null;
}

/**
 * Moves a balance and writes its ledger row in one statement (atomic on its own, and one round
 * trip inside the lock's critical section). The UPDATE's WHERE decides everything: the fence, the
 * floor of 0 and the cap, so concurrent or late writers can never overdraw or overfill.
 */
export async function applyBalanceChange(client: PoolClient, move: BalanceMove): Promise<BalanceChange> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const updated = await client.query<{ amount: string }>(
      `WITH moved AS (
         UPDATE balances SET amount = amount + $2, fence = COALESCE($3, fence)
          WHERE user_id = $1 AND ($3::bigint IS NULL OR fence < $3) AND amount + $2 BETWEEN 0 AND $4
          RETURNING amount
       ), ledger AS (
         INSERT INTO balance_ledger (user_id, delta, balance_after, kind, reference)
         SELECT $1, $2, amount, $5, $6 FROM moved WHERE $2 <> 0
       )
       SELECT amount FROM moved`,
      [move.userId, move.delta, move.fence, BALANCE_CAP, move.kind, move.reference],
    );
    const row = updated.rows[0];
    if (row) return { ok: true, balance: Number(row.amount) };
    const current = await client.query<{ amount: string; fence: string }>(`SELECT amount, fence FROM balances WHERE user_id = $1`, [move.userId]);
    const existing = current.rows[0];
    if (!existing) {
      // First movement of this user: create the zero balance, then try once more.
      await client.query(`INSERT INTO balances (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING`, [move.userId]);
      continue;
    }
    const balance = Number(existing.amount);
    const storedFence = Number(existing.fence);
    if (move.fence !== null && storedFence >= move.fence) return { ok: false, reason: 'FENCED', balance, storedFence };
    if (balance + move.delta < 0) return { ok: false, reason: 'INSUFFICIENT_BALANCE', balance };
    if (balance + move.delta > BALANCE_CAP) return { ok: false, reason: 'BALANCE_LIMIT', balance };
    // The row changed between the UPDATE and this read (only possible without the lock): the UPDATE
    // stays the judge, so ask it again.
  }
  throw new Error('balance update kept losing races; giving up');
}

/** Outcome of {@link moveBalanceOverHttp}. */
export type HttpBalanceChange =
  | BalanceChange
  /** The Idempotency-Key has a live record: nothing was done; replay it (it may be for another request). */
  | { ok: false; reason: 'STORED'; stored: StoredResponse };

/**
 * Charge or use as ONE statement over Neon's HTTP path (DESIGN.md §5 Charge / use), so the lock's
 * critical section is one round trip and everything in it commits together:
 *
 * - the movement: an upsert, so the first movement also creates the user's row (no interactive
 *   transaction for "insert the zero row, then update"); the DO UPDATE's WHERE decides everything:
 *   the fence, the floor of 0 and the cap, so concurrent or late writers never overdraw or overfill;
 * - its ledger row;
 * - with an Idempotency-Key: the lookup (a live record means nothing is done and the record comes
 *   back), and the record of the 200 `{"balance":N}` (byte for byte what the route sends:
 *   `JSON.stringify({ balance })`) with the effect. A plain INSERT, after deleting an expired record: if a
 *   duplicate slipped past the in-flight claim and recorded first, the unique violation undoes the
 *   whole statement and the retry replays its record;
 * - the row as it was (LEFT JOIN), to tell INSUFFICIENT_BALANCE, BALANCE_LIMIT and FENCED apart
 *   when nothing moved.
 */
export async function moveBalanceOverHttp(sql: Sql, move: BalanceMove, claim: IdempotencyClaim | undefined): Promise<HttpBalanceChange> {
  for (let attempt = 0; attempt < 10; attempt++) {
    let rows: Record<string, unknown>[];
    try {
      rows = (await sql.query(
        `WITH existing AS (
           SELECT request_hash, status_code, body FROM idempotency_keys
            WHERE $7::text IS NOT NULL AND user_id = $1 AND key = $7 AND ${LIVE_RECORD}
         ), stale AS (
           DELETE FROM idempotency_keys
            WHERE $7::text IS NOT NULL AND user_id = $1 AND key = $7 AND NOT (${LIVE_RECORD})
           RETURNING 1
         ), moved AS (
           -- The proposed row only matters when the user has none yet (then 0 + delta); CHECKs run on
           -- it before the conflict is detected, so it is kept inside the column's range.
           INSERT INTO balances AS b (user_id, amount, fence)
           SELECT $1::text, LEAST(GREATEST($2::bigint, 0), $4::bigint), COALESCE($3::bigint, 0)
            WHERE NOT EXISTS (SELECT 1 FROM existing)
              AND ($2::bigint BETWEEN 0 AND $4::bigint OR EXISTS (SELECT 1 FROM balances WHERE user_id = $1))
           ON CONFLICT (user_id) DO UPDATE SET amount = b.amount + $2::bigint, fence = COALESCE($3::bigint, b.fence)
            WHERE ($3::bigint IS NULL OR b.fence < $3::bigint) AND b.amount + $2::bigint BETWEEN 0 AND $4::bigint
           RETURNING amount
         ), ledger AS (
           INSERT INTO balance_ledger (user_id, delta, balance_after, kind, reference)
           SELECT $1, $2::bigint, amount, $5::text, $6::text FROM moved
         ), record AS (
           -- Reading stale's count makes its DELETE run before this INSERT.
           INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body)
           SELECT $1, $7::text, $8::text, 200, to_jsonb('{"balance":' || amount || '}') FROM moved
            WHERE $7::text IS NOT NULL AND (SELECT count(*) FROM stale) >= 0
         )
         SELECT (SELECT amount FROM moved) AS moved, cur.amount, cur.fence, e.request_hash, e.status_code, e.body
           FROM (SELECT 1) AS one
           LEFT JOIN balances cur ON cur.user_id = $1
           LEFT JOIN existing e ON true`,
        [move.userId, move.delta, move.fence, BALANCE_CAP, move.kind, move.reference, claim?.key ?? null, claim?.requestHash ?? null],
      )) as Record<string, unknown>[];
    } catch (error) {
      // A duplicate recorded this key between our snapshot and our INSERT: nothing of ours
      // committed; the next round finds its record.
      if (claim && isRecordConflict(error)) continue;
      throw error;
    }
    const row = rows[0] as
      | { moved: string | null; amount: string | null; fence: string | null; request_hash: string | null; status_code: number | null; body: unknown }
      | undefined;
    if (!row) throw new Error('balance statement returned no row');
    if (row.request_hash !== null && row.status_code !== null) {
      return { ok: false, reason: 'STORED', stored: toStoredResponse({ request_hash: row.request_hash, status_code: row.status_code, body: row.body }) };
    }
    if (row.moved !== null) return { ok: true, balance: Number(row.moved) };
    const balance = Number(row.amount ?? 0);
    const storedFence = Number(row.fence ?? 0);
    if (move.fence !== null && storedFence >= move.fence) return { ok: false, reason: 'FENCED', balance, storedFence };
    if (balance + move.delta < 0) return { ok: false, reason: 'INSUFFICIENT_BALANCE', balance };
    if (balance + move.delta > BALANCE_CAP) return { ok: false, reason: 'BALANCE_LIMIT', balance };
    // The row changed between the statement's snapshot and its write (only possible without the
    // lock): the conditional write stays the judge, so ask it again.
  }
  throw new Error('balance update kept losing races; giving up');
}

/** A user's balance, 0 before their first movement (one HTTP query). */
export async function readBalance(sql: Sql, userId: string): Promise<number> {
  const rows = (await sql.query(`SELECT amount FROM balances WHERE user_id = $1`, [userId])) as { amount: string }[];
  return Number(rows[0]?.amount ?? 0);
}

export interface LedgerEntry {
  id: number;
  delta: number;
  balanceAfter: number;
  kind: LedgerKind;
  reference: string | null;
  createdAt: string;
}

/** Newest first, `limit` entries older than the `before` id (keyset pagination on the ledger index). */
export async function readLedger(sql: Sql, userId: string, limit: number, before?: number): Promise<LedgerEntry[]> {
  const rows = (await sql.query(
    `SELECT id, delta, balance_after, kind, reference, created_at FROM balance_ledger
      WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
      ORDER BY id DESC LIMIT $3`,
    [userId, before ?? null, limit],
  )) as { id: string; delta: string; balance_after: string; kind: LedgerKind; reference: string | null; created_at: Date }[];
  return rows.map((row) => ({
    id: Number(row.id),
    delta: Number(row.delta),
    balanceAfter: Number(row.balance_after),
    kind: row.kind,
    reference: row.reference,
    createdAt: row.created_at.toISOString(),
  }));
}
