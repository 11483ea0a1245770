import type { Redis } from '@upstash/redis/cloudflare';
import type { Deadline } from '../deadline.ts';

/**
 * Proof of holding a lock until `leaseMs` runs out.
 *
 * The lock orders work and stops duplicates early; it cannot stop a holder that stalls past its lease
 * from writing late. So every write the lock guards must also check the fence, e.g.
 * `UPDATE balances SET …, fence = $fence WHERE user_id = $u AND fence < $fence`: a late holder's
 * fence is lower than its successor's, so its write matches no row.
 */
export interface LockGrant {
  /** The lock's name, as passed to `acquire` / `tryAcquire`. */
  readonly key: string;
  /** Token naming this holder; only it can release the lock. */
  readonly owner: string;
  /** Fencing token: strictly greater than every earlier grant's on this key, for both lock kinds. */
  readonly fence: number;
  /**
   * Lease left when Redis granted the lock. It started before the reply arrived, so measure your own
   * deadline from before the call, and keep it well inside the request budget.
   */
  readonly leaseMs: number;
  /**
   * Compare-and-delete: frees the lock if this grant still holds it. Resolves `false` when the lease had
   * already run out (someone else may hold the lock now); rejects with 503 DEPENDENCY_UNAVAILABLE when
   * Redis cannot be reached, in which case the lease frees the lock. Safe to call more than once.
   */
  release(): Promise<boolean>;
  /**
   * For a guarded write refused because the store has already seen fence `seen` ≥ this grant's: when
   * this grant still holds the lock, that means Redis lost its fence counter (a flush, a failover to a
   * replica that missed writes, or the meta key expiring), so every new grant would be refused. Carries
   * the counter up to `seen` and resolves with a grant of the same lock and owner with a fence above
   * it; retry the write once with that. Resolves `null` when this grant no longer holds the lock: it is
   * genuinely stale and the refusal stands. Release either grant (same owner) when done.
   *
   * A holder from before the loss that has not written yet cannot be told from a live one (Redis
   * forgot it); its write is still checked against the store's fence, and every write stays
   * atomic on its own, so nothing is applied twice or lost.
   *
   * @throws AppError 503 DEPENDENCY_UNAVAILABLE when Redis cannot be reached.
   */
  refence(seen: number): Promise<LockGrant | null>;
}

/** Options shared by both lock kinds. */
export interface LockOptions {
  /**
   * The Upstash client, or a function giving a client whose commands abort at the deadline it is
   * passed: in a request, `(d) => redisUntil(env, d)` (src/lib/redis.ts) with `deadline`, so a call
   * past its time is cut rather than left running. A plain client should carry a per-command timeout
   * as a `signal` *function*, as `getRedis` does. (With a plain `AbortSignal`, @upstash/redis turns an
   * abort into the result "Aborted"; the locks treat such a reply as Redis being unreachable.)
   */
  redis: Redis | ((deadline: Deadline) => Redis);
  /**
   * The request's Redis deadline (src/lib/deadline.ts): every call that decides something (acquire,
   * each poll, re-fence) must be answered by then, a wait for the lock ends there, and a waiter keeps
   * its place in line until then however late its polls are read. Releases get at least
   * `redisBudgetMs` even past it. Without one, each call gets `redisBudgetMs` of its own.
   */
  deadline?: Deadline;
  /**
   * How long a grant lasts unless released. Keep it shorter than the request budget, so a holder that
   * dies frees the lock before its caller would have given up anyway.
   * @default 10_000
   */
  leaseMs?: number;
  /**
   * Without `deadline`: longest one call to Redis may take, the client's own retry included. Past it
   * the outcome is unknown, so the call fails closed with 503 DEPENDENCY_UNAVAILABLE. With one: the
   * least time a release gets, even after the deadline.
   * @default 1_000
   */
  redisBudgetMs?: number;
  /**
   * How long a lock's meta hash (fence and ticket counters) lives after its last grant or ticket. Every
   * key a lock creates expires; when this one does, fences restart and the first guarded write is
   * re-fenced (see {@link LockGrant.refence}).
   * @default 86_400_000 (24 h)
   */
  metaTtlMs?: number;
  /**
   * First part of every Redis key. A lock named `balance:u1` lives in `lock:{balance:u1}` and
   * `lock:{balance:u1}:queue|deadlines|meta`; the braces are a hash tag that keeps them in one
   * Redis Cluster slot, as Lua scripts require. Both lock kinds use the same layout, so one name used
   * with both excludes across them (but `tryAcquire` does not wait its turn in the line).
   * @default 'lock'
   */
  prefix?: string;
}
