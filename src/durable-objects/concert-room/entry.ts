// The room's half of the proof of work at the entrance (issue 20): the set of spent challenges and the
// join rate the surge rule reads. The Worker has already checked the proof's signature, solution,
// expiry, user and concert (src/lib/entry-proof.ts); what only the room can say is whether the gate
// is on, whether this challenge was used before, and whether it is cheaper than the concert now asks.
// The set lives here because every join reaches the room anyway (straight or in a lobby's batch):
// rejecting a reuse costs one SQLite primary-key read, no Postgres or Redis call.
import { DEFAULT_SURGE_JOINS_PER_SECOND, MAX_ENTRY_POW_COST, type EntryConfig, type EntryProof } from '../../lib/entry-proof.ts';


/** Why the room turned a join away; nothing was written for it. */
export type EntryRefusal =
  | { ok: false; reason: 'POW_REQUIRED' }
  | { ok: false; reason: 'POW_REUSED' }
  | { ok: false; reason: 'POW_TOO_CHEAP'; cost: number };

/** Schema step: spent challenge ids, each kept until its challenge would be refused as expired anyway. */
export const ENTRY_SPENT_MIGRATION = `CREATE TABLE entry_spent (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX entry_spent_expiry ON entry_spent (expires_at);`;

/** Expired ids deleted per spend: more than one, so the set shrinks back after a rush. @default 4 */
const PRUNE_PER_SPEND = 4;

/**
 * Decides each join of a batch, in order, without writing: the refusal, or null to place the fan.
 * Two joins of one batch with the same challenge: the first may pass, the second is a reuse.
 * `retry`: the Worker re-sends a join whose lobby batch lost its reply; if that batch spent the proof
 * for this same user, the join passes (and gets the place the batch gave), since the fan never saw it.
 */
export function checkProofs(
  sql: SqlStorage,
  config: EntryConfig | undefined,
  joins: readonly { userId: string; proof: EntryProof | null | undefined }[],
  retry = false,
): (EntryRefusal | null)[] {
  const gate = config?.proofOfWork ?? null;
  const seen = new Set<string>();
  return joins.map(({ userId, proof }) => {
    // A proof sent to a concert without a gate is ignored (and not spent): the join is as before.
    if (!gate) return null;
    if (!proof) return { ok: false, reason: 'POW_REQUIRED' };
    if (proof.cost < gate.cost) return { ok: false, reason: 'POW_TOO_CHEAP', cost: gate.cost };
    // An expired one never gets here (the Worker refuses it); one that expired on its way is still
    // unused and was solved in time, so it passes, and is remembered as long as any clock might accept it.
    if (seen.has(proof.id)) return { ok: false, reason: 'POW_REUSED' };
    const spentBy = sql.exec<{ user_id: string }>(`SELECT user_id FROM entry_spent WHERE id = ?`, proof.id).toArray()[0]?.user_id;
    if (spentBy !== undefined && !(retry && spentBy === userId)) return { ok: false, reason: 'POW_REUSED' };
    seen.add(proof.id);
    return null;
  });
}

/** Marks accepted proofs spent (inside the join's transaction) and forgets a few expired ones. */
export function spendProofs(sql: SqlStorage, joins: readonly { userId: string; proof: EntryProof }[], now: number): void {
  for (const { userId, proof } of joins) {
    sql.exec(`INSERT OR IGNORE INTO entry_spent (id, user_id, expires_at) VALUES (?, ?, ?)`, proof.id, userId, Math.max(proof.expiresAt, now));
    sql.exec(
      `DELETE FROM entry_spent WHERE id IN (SELECT id FROM entry_spent WHERE expires_at < ? ORDER BY expires_at LIMIT ${PRUNE_PER_SPEND})`,
      now - 60_000,
    );
  }
}

/**
 * Joins placed per second, from two one-second buckets in memory (a restart forgets them, which only
 * delays a surge by a second). The rate is the larger of the last whole second and the current one.
 */
export class JoinRate {
  private second = 0;
  private current = 0;
  private previous = 0;

  record(count: number, now: number): void {
    this.roll(now);
    this.current += count;
  }

  perSecond(now: number): number {
    this.roll(now);
    return Math.max(this.current, this.previous);
  }

  private roll(now: number): void {
    const second = Math.floor(now / 1000);
    if (second === this.second) return;
    this.previous = second === this.second + 1 ? this.current : 0;
    this.current = 0;
    this.second = second;
  }
}

/** The entry settings from a stored or posted queue config, dropping anything malformed. */
export function pickEntryConfig(raw: unknown): EntryConfig | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const pow = (raw as { proofOfWork?: unknown }).proofOfWork;
  if (pow === null) return { proofOfWork: null };
  if (typeof pow !== 'object' || pow === undefined) return undefined;
  const { cost, surgeJoinsPerSecond } = pow as Record<string, unknown>;
  if (typeof cost !== 'number' || !Number.isInteger(cost) || cost < 1 || cost > MAX_ENTRY_POW_COST) return undefined;
  const surge = typeof surgeJoinsPerSecond === 'number' && Number.isInteger(surgeJoinsPerSecond) && surgeJoinsPerSecond > 0 ? surgeJoinsPerSecond : DEFAULT_SURGE_JOINS_PER_SECOND;
  return { proofOfWork: { cost, surgeJoinsPerSecond: surge } };
}
