import type { Redis } from '@upstash/redis/cloudflare';
import { Deadline, redisFailure } from '../deadline.ts';
import { dependencyUnavailable } from '../errors.ts';
import { withTimeout } from '../time.ts';
import { REFENCE_SCRIPT, RELEASE_SCRIPT, runScript } from './scripts.ts';
import type { LockGrant } from './types.ts';

/** Defaults shared by both lock kinds. */
export const DEFAULT_LEASE_MS = 10_000;
export const DEFAULT_PREFIX = 'lock';
export const DEFAULT_REDIS_BUDGET_MS = 1_000;
export const DEFAULT_META_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * What every Redis call of a lock needs: a client bound to the call's deadline, the request's deadline
 * if there is one, the time one call may take without one (and the least a release gets), and how
 * long the lock's meta hash outlives its last use.
 */
export interface LockRedis {
  clientUntil: (deadline: Deadline) => Redis;
  deadline: Deadline | undefined;
  budgetMs: number;
  metaTtlMs: number;
}

/** Builds a lock's {@link LockRedis} from its options (validated). */
export function lockRedis(options: {
  redis: Redis | ((deadline: Deadline) => Redis);
  deadline?: Deadline | undefined;
  redisBudgetMs?: number | undefined;
  metaTtlMs?: number | undefined;
}): LockRedis {
  const { redis } = options;
  return {
    clientUntil: typeof redis === 'function' ? redis : () => redis,
    deadline: options.deadline,
    budgetMs: positiveInteger('redisBudgetMs', options.redisBudgetMs ?? DEFAULT_REDIS_BUDGET_MS),
    metaTtlMs: positiveInteger('metaTtlMs', options.metaTtlMs ?? DEFAULT_META_TTL_MS),
  };
}

/** The deadline of a call that decides something: the request's, else `budgetMs` from now. */
export const decisionDeadline = (redis: LockRedis): Deadline => redis.deadline ?? Deadline.after(redis.budgetMs);

/**
 * The deadline of a clean-up call (release): the request's, but at least `budgetMs` from now. It may
 * run after the request's deadline, and a lock or place left behind blocks others until it expires.
 */
export const cleanupDeadline = (redis: LockRedis): Deadline => (redis.deadline ?? new Deadline(0)).orAtLeast(redis.budgetMs);

/** The Redis keys of one lock; all carry the same `{name}` hash tag. */
export interface LockKeys {
  lock: string;
  queue: string;
  deadlines: string;
  meta: string;
  /** A companion no-wait lock held with this one (WaitLock.acquireWith), under the same hash tag. */
  companion?: string;
}

const MAX_NAME_LENGTH = 512;

/** Builds the keys of lock `name`. Braces would break the hash tag, so they are refused. */
export function lockKeys(prefix: string, name: string): LockKeys {
  if (name === '' || name.length > MAX_NAME_LENGTH || /[{}]/.test(name)) {
    throw new TypeError(`lock name must be 1..${MAX_NAME_LENGTH} characters without braces: ${JSON.stringify(name)}`);
  }
  const lock = `${prefix}:{${name}}`;
  return { lock, queue: `${lock}:queue`, deadlines: `${lock}:deadlines`, meta: `${lock}:meta` };
}

/** The keys of lock `name` with the companion lock `companion` (same rules for its name). */
export function pairedLockKeys(prefix: string, name: string, companion: string): LockKeys {
  if (companion === '' || companion.length > MAX_NAME_LENGTH || /[{}]/.test(companion)) {
    throw new TypeError(`companion lock name must be 1..${MAX_NAME_LENGTH} characters without braces: ${JSON.stringify(companion)}`);
  }
  const keys = lockKeys(prefix, name);
  return { ...keys, companion: `${keys.lock}:with:${companion}` };
}

/** Checks a caller-supplied owner token; a fresh random one is used when none is given. */
export function ownerToken(owner: string | undefined): string {
  if (owner === undefined) return crypto.randomUUID();
  if (owner === '' || owner.length > 256) throw new TypeError('lock owner must be 1..256 characters');
  return owner;
}

/** Rejects options that would make a lock misbehave silently. */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Runs a lock script and parses its reply. Anything short of a well-formed reply (network error,
 * timeout or abort, 5xx, a Redis error, an unexpected shape) means we cannot know what Redis decided,
 * so it becomes 503 DEPENDENCY_UNAVAILABLE and never a grant. "Held by someone else" is a normal reply.
 */
export async function callScript<T>(
  redis: LockRedis,
  deadline: Deadline,
  source: string,
  keys: string[],
  args: string[],
  parse: (reply: unknown) => T | undefined,
): Promise<T> {
  let reply: unknown;
  try {
    // Nothing is sent once the deadline has passed: its answer could not be waited for anyway.
    const leftMs = deadline.remainingMs();
    if (leftMs <= 0) throw new Error('the Redis deadline passed before the lock call');
    // The client aborts at the deadline when it was given as a function of it; this bounds the call
    // in any case, so the fail-closed time does not depend on how the client was configured.
    reply = await withTimeout(runScript(redis.clientUntil(deadline), source, keys, args), leftMs, 'lock call to Redis');
  } catch (error) {
    throw dependencyUnavailable('Redis', redisFailure(deadline, error));
  }
  const parsed = parse(reply);
  if (parsed === undefined) {
    throw dependencyUnavailable('Redis', new Error(`unexpected reply from a lock script: ${JSON.stringify(reply)}`));
  }
  return parsed;
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** A grant as both acquire scripts reply it: `{1, fence, lease ms left, re-asked}`. */
export function parseGranted(reply: unknown): { fence: number; leaseMs: number } | undefined {
  if (!Array.isArray(reply) || reply.length !== 4 || reply[0] !== 1) return undefined;
  const [, fence, leaseMs] = reply as unknown[];
  // PTTL can read 0 or -2 if a re-asked lease ran out inside the script's own millisecond; not a grant.
  if (!isCount(fence) || fence < 1 || !isCount(leaseMs) || leaseMs < 1) return undefined;
  return { fence, leaseMs };
}

/** Compare-and-delete of `owner`'s lock, which also takes it out of the line. */
export function releaseLock(redis: LockRedis, keys: LockKeys, owner: string): Promise<boolean> {
  const released = [keys.lock, keys.queue, keys.deadlines, ...(keys.companion === undefined ? [] : [keys.companion])];
  return callScript(redis, cleanupDeadline(redis), RELEASE_SCRIPT, released, [owner], (reply) =>
    reply === 1 ? true : reply === 0 ? false : undefined,
  );
}

/** Re-fences `owner` above `seen` if it still holds the lock (REFENCE_SCRIPT); null when it does not. */
export function refenceLock(redis: LockRedis, keys: LockKeys, owner: string, seen: number): Promise<{ fence: number; leaseMs: number } | null> {
  if (!Number.isSafeInteger(seen) || seen < 0) return Promise.reject(new RangeError(`seen must be a fence, got ${seen}`));
  // After the guarded write, perhaps past the deadline: a follow-up, bounded like a release.
  return callScript(redis, cleanupDeadline(redis), REFENCE_SCRIPT, [keys.lock, keys.meta], [owner, String(seen), String(redis.metaTtlMs)], (reply) =>
    Array.isArray(reply) && reply.length === 1 && reply[0] === 0 ? null : parseGranted(reply),
  );
}

/** The grant handed to callers; `release` and `refence` are bound to its owner. */
export function createGrant(
  redis: LockRedis,
  keys: LockKeys,
  key: string,
  owner: string,
  granted: { fence: number; leaseMs: number },
): LockGrant {
  return Object.freeze({
    key,
    owner,
    fence: granted.fence,
    leaseMs: granted.leaseMs,
    release: () => releaseLock(redis, keys, owner),
    refence: async (seen: number) => {
      const again = await refenceLock(redis, keys, owner, seen);
      return again && createGrant(redis, keys, key, owner, again);
    },
  });
}
