import { lockTimeout } from './errors.ts';
import {
  DEFAULT_LEASE_MS,
  DEFAULT_PREFIX,
  callScript,
  createGrant,
  decisionDeadline,
  lockKeys,
  lockRedis,
  pairedLockKeys,
  ownerToken,
  parseGranted,
  positiveInteger,
  releaseLock,
} from './internal.ts';
import type { LockKeys, LockRedis } from './internal.ts';
import { PAIRED_POLL_SCRIPT, POLL_SCRIPT } from './scripts.ts';
import type { LockGrant, LockOptions } from './types.ts';

/** Options of a {@link WaitLock}. */
export interface WaitLockOptions extends LockOptions {
  /**
   * How long `acquire` waits for its turn before giving up with 503 LOCK_TIMEOUT (plus at most one
   * Redis command already in flight). With a `deadline`, the wait ends there at the latest, and this
   * applies only when given.
   * @default 5_000 (without a deadline)
   */
  timeoutMs?: number;
  /**
   * Shortest pause between polls.
   * @default 10
   */
  pollIntervalMs?: number;
  /**
   * Longest pause between polls (waiters far back in line).
   * @default 250
   */
  maxPollIntervalMs?: number;
  /**
   * Longest pause of the waiter first in line; the n-th in line pauses about n times this. A waiter
   * learns that its turn has come only by polling, so on a contended lock the pauses near the head of
   * the line, not the holders, set the hand-over time; waiters further back keep backing off.
   * @default 10
   */
  headPollIntervalMs?: number;
  /**
   * Without a `deadline`: how long a waiter keeps its place without polling. Each poll pushes its
   * deadline this far ahead; a waiter that dies is dropped from the line once it passes, and the next
   * one can be granted. Must exceed `maxPollIntervalMs` plus a slow Redis round trip. With a
   * `deadline`, each poll keeps the place until the wait would end anyway (plus `maxPollIntervalMs`),
   * so a reply read late never costs a live waiter its place, and a dead one frees it by then.
   * @default 2_000
   */
  waiterTtlMs?: number;
}

/** Per-call options of {@link WaitLock.acquire}. */
export interface AcquireOptions {
  /** Gives up (and leaves the line) when aborted; `acquire` then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Owner token to acquire as. Leave it out (a random one is made) unless resuming an acquisition whose
   * reply was lost: an owner that already holds the lock gets its existing grant back, one already in
   * line keeps its place. Two live callers must never share one.
   */
  owner?: string;
  /**
   * Called once, when the first poll has reached Redis: from then on the caller has its place in line.
   * `position` counts the waiters ahead plus one, or is 0 when the lock was granted at once.
   */
  onQueued?: (place: { position: number }) => void;
}

/** Outcome of one {@link WaitLock.poll}. */
export type PollResult =
  | { granted: true; fence: number; leaseMs: number }
  | { granted: false; ticket: number; position: number };

/** A random pause in [ceiling / 2, ceiling]. */
const jitter = (ceiling: number) => ceiling / 2 + (Math.random() * ceiling) / 2;

/** How long `acquire` waits without a deadline or timeout of its own. */
const DEFAULT_TIMEOUT_MS = 5_000;

/** Upper bound on abandoned waiters one poll removes, so a script never runs long. */
const PURGE_PER_POLL = 100;

/** What a poll with a companion answers when another owner holds the companion. */
const COMPANION_HELD = 'companion held';

function parsePoll(reply: unknown): PollResult | typeof COMPANION_HELD | undefined {
  if (Array.isArray(reply) && reply.length === 1 && reply[0] === 2) return COMPANION_HELD;
  if (Array.isArray(reply) && reply.length === 3 && reply[0] === 0) {
    const [, ticket, position] = reply as unknown[];
    if (typeof ticket !== 'number' || !Number.isSafeInteger(ticket) || ticket < 1) return undefined;
    if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 1) return undefined;
    return { granted: false, ticket, position };
  }
  const granted = parseGranted(reply);
  return granted && { granted: true, ...granted };
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new DOMException('Aborted', 'AbortError'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A fair (FIFO) lock: callers are granted it in the order they first reached Redis, each waiting up to
 * `timeoutMs`. Use it where every caller should eventually get its turn, e.g. `balance:{userId}`.
 *
 * Each poll is one Lua script that, atomically: drops waiters whose deadline passed, enqueues the
 * caller with a ticket from a server-side counter (or keeps its ticket), pushes its deadline ahead,
 * and grants the lock (with a new fence) if the caller is first in line and the lock is free.
 *
 * @example
 * ```ts
 * const locks = new WaitLock({ redis: getRedis(env) });
 * const grant = await locks.acquire(`balance:${userId}`);
 * try {
 *   await debit(db, userId, amount, grant.fence); // … WHERE fence < $fence
 * } finally {
 *   await grant.release();
 * }
 * ```
 */
export class WaitLock {
  private readonly redis: LockRedis;
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly timeoutMs: number | undefined;
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly headPollIntervalMs: number;
  private readonly waiterTtlMs: number;

  constructor(options: WaitLockOptions) {
    this.redis = lockRedis(options);
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.leaseMs = positiveInteger('leaseMs', options.leaseMs ?? DEFAULT_LEASE_MS);
    this.timeoutMs = options.timeoutMs === undefined ? (options.deadline ? undefined : DEFAULT_TIMEOUT_MS) : positiveInteger('timeoutMs', options.timeoutMs);
    this.pollIntervalMs = positiveInteger('pollIntervalMs', options.pollIntervalMs ?? 10);
    this.maxPollIntervalMs = positiveInteger('maxPollIntervalMs', options.maxPollIntervalMs ?? 250);
    this.headPollIntervalMs = positiveInteger('headPollIntervalMs', options.headPollIntervalMs ?? 10);
    this.waiterTtlMs = positiveInteger('waiterTtlMs', options.waiterTtlMs ?? 2_000);
    if (this.maxPollIntervalMs < this.pollIntervalMs) throw new RangeError('maxPollIntervalMs must be >= pollIntervalMs');
    // Pauses never exceed maxPollIntervalMs, so this keeps a live waiter's deadline ahead of its next poll.
    if (this.waiterTtlMs <= this.maxPollIntervalMs) throw new RangeError('waiterTtlMs must exceed maxPollIntervalMs');
  }

  /**
   * Waits for the lock `key` and resolves with a grant.
   *
   * @throws AppError 503 LOCK_TIMEOUT (with Retry-After) when the turn did not come within `timeoutMs`
   *   or by the deadline.
   * @throws AppError 503 DEPENDENCY_UNAVAILABLE (with Retry-After) as soon as one poll fails to reach
   *   Redis: fail closed, no grant is reported unless Redis confirmed it.
   * @throws the signal's reason when `options.signal` aborts.
   */
  async acquire(key: string, options: AcquireOptions = {}): Promise<LockGrant> {
    return (await this.wait(lockKeys(this.prefix, key), key, options))!;
  }

  /**
   * Like {@link acquire}, and holds the no-wait lock `companion` for the same owner from the first
   * poll on: each poll takes or keeps both in one atomic step (one Redis call), so a second attempt at
   * the same work (same `companion`) is refused at once while the first waits its turn. Resolves
   * `null`, holding nothing, when another owner holds the companion. The grant's `release` frees
   * both. The companion lives under this lock's hash tag and only excludes callers of the same `key`
   * (e.g. `payment:{reservationId}` under `balance:{ownerId}`: only its owner can pay a reservation).
   *
   * @throws as {@link acquire}.
   */
  async acquireWith(key: string, companion: string, options: AcquireOptions = {}): Promise<LockGrant | null> {
    return await this.wait(pairedLockKeys(this.prefix, key, companion), key, options);
  }

  /** The loop of `acquire` and `acquireWith`; null when the companion is held by another owner. */
  private async wait(keys: LockKeys, key: string, options: AcquireOptions): Promise<LockGrant | null> {
    const owner = ownerToken(options.owner);
    const { signal, onQueued } = options;
    signal?.throwIfAborted();
    const startedAt = Date.now();
    const giveUpAt = Math.min(this.redis.deadline?.at ?? Infinity, this.timeoutMs === undefined ? Infinity : startedAt + this.timeoutMs);
    let first = true;

    for (;;) {
      let result: PollResult | typeof COMPANION_HELD;
      const polledAt = Date.now();
      try {
        result = await this.pollKeys(keys, owner, giveUpAt);
      } catch (error) {
        // Fail closed now rather than spend the budget on cleanup against a Redis we cannot reach. The
        // poll may still have landed, so ask Redis to forget us without waiting; if that is lost too,
        // the waiter deadline (or the lease, had it been granted) cleans up.
        void releaseLock(this.redis, keys, owner).catch(() => false);
        throw error;
      }
      if (result === COMPANION_HELD) {
        // That poll changed nothing; an earlier one may have put this owner in line (and held the
        // companion until its lease lapsed and another took it), so leave.
        if (!first) await releaseLock(this.redis, keys, owner).catch(() => false);
        return null;
      }
      try {
        if (first) {
          first = false;
          onQueued?.({ position: result.granted ? 0 : result.position });
        }
        signal?.throwIfAborted();
        if (result.granted) return createGrant(this.redis, keys, key, owner, result);

        // The last poll to send is one whose answer can still come in time (taking as long as this
        // one did): a poll cut at the deadline would read as Redis being away, not as a busy lock.
        const lastPollAt = giveUpAt - (Date.now() - polledAt);
        const now = Date.now();
        if (now >= lastPollAt) throw lockTimeout(key, now - startedAt);
        await sleep(Math.min(this.pause(result.position), lastPollAt - now), signal);
        if (Date.now() >= lastPollAt) throw lockTimeout(key, Date.now() - startedAt);
      } catch (error) {
        // Leaving also releases the lock if this very poll granted it to a caller that has given up.
        await releaseLock(this.redis, keys, owner).catch(() => false);
        throw error;
      }
    }
  }

  /**
   * One atomic step of `acquire`: enqueue `owner` (or keep its place), push its deadline ahead, and
   * grant it the lock if it is first in line and the lock is free. Repeating it with the same owner is
   * safe, which is how a lost reply is recovered: a holder gets back the same fence. `acquire` loops
   * over this; calling it directly is for tests and callers that drive their own loop (who must then
   * keep polling within `waiterTtlMs`, or until the deadline, or lose their place).
   *
   * @throws AppError 503 DEPENDENCY_UNAVAILABLE when Redis cannot be reached.
   */
  async poll(key: string, owner: string): Promise<PollResult> {
    // async, so that a bad name or owner rejects like every other failure instead of throwing.
    return (await this.pollKeys(lockKeys(this.prefix, key), ownerToken(owner), this.redis.deadline?.at ?? Infinity)) as PollResult;
  }

  /**
   * Releases `key` if `owner` holds it (compare-and-delete) and takes `owner` out of the line either way.
   * Resolves whether the lock was released. Grants carry a bound `release()`; this is for callers that
   * only kept the owner token.
   *
   * @throws AppError 503 DEPENDENCY_UNAVAILABLE when Redis cannot be reached.
   */
  async release(key: string, owner: string): Promise<boolean> {
    return await releaseLock(this.redis, lockKeys(this.prefix, key), ownerToken(owner));
  }

  /** One poll by a waiter that gives up at `giveUpAt` (epoch ms). */
  private pollKeys(keys: LockKeys, owner: string, giveUpAt: number): Promise<PollResult | typeof COMPANION_HELD> {
    const args = [owner, String(this.leaseMs), String(this.waiterTtl(giveUpAt)), String(PURGE_PER_POLL), String(this.redis.metaTtlMs)];
    const lockKeyList = [keys.lock, keys.queue, keys.deadlines, keys.meta];
    if (keys.companion === undefined) return callScript(this.redis, decisionDeadline(this.redis), POLL_SCRIPT, lockKeyList, args, parsePoll);
    // The companion's lease is the lock's: it must outlast the wait and the work it guards.
    return callScript(this.redis, decisionDeadline(this.redis), PAIRED_POLL_SCRIPT, [...lockKeyList, keys.companion], [...args, String(this.leaseMs)], parsePoll);
  }

  /**
   * How long this poll keeps the waiter's place. With a deadline: until the waiter gives up, plus one
   * longest pause, so a poll read late (a slow Redis, a busy isolate) never costs it its place, which
   * a fixed TTL did (the waiter was purged and re-queued at the back); a waiter that died frees its
   * place by then. The TTL counts from when Redis runs the poll, later than now, so it errs long.
   */
  private waiterTtl(giveUpAt: number): number {
    if (!this.redis.deadline || giveUpAt === Infinity) return this.waiterTtlMs;
    return Math.max(1, Math.ceil(giveUpAt - Date.now())) + this.maxPollIntervalMs;
  }

  /**
   * How long to wait before polling again: in proportion to the place in line (the n-th waiter
   * cannot be served before n holders have come and gone), between `pollIntervalMs` and
   * `maxPollIntervalMs`, jittered so waiters spread out. Waiters far back poll rarely, which keeps a
   * long line from flooding Redis while the head hands over quickly.
   */
  private pause(position: number): number {
    return jitter(Math.min(this.maxPollIntervalMs, Math.max(this.pollIntervalMs, this.headPollIntervalMs * position)));
  }
}
