import type { PoolClient } from '@neondatabase/serverless';
import type { Sql } from './http.ts';

/** Highest balance a user may have (DESIGN.md §3); the column's CHECK says the same. */
export const BALANCE_CAP = 1_000_000_000;

export type BalanceChange =
  | { ok: true; balance: number }
  | { ok: false; reason: 'INSUFFICIENT_BALANCE' | 'BALANCE_LIMIT' | 'FENCED'; balance: number };

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
    if (move.fence !== null && Number(existing.fence) >= move.fence) return { ok: false, reason: 'FENCED', balance };
    if (balance + move.delta < 0) return { ok: false, reason: 'INSUFFICIENT_BALANCE', balance };
    if (balance + move.delta > BALANCE_CAP) return { ok: false, reason: 'BALANCE_LIMIT', balance };
    // The row changed between the UPDATE and this read (only possible without the lock): the UPDATE
    // stays the judge, so ask it again.
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
