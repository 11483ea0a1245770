import type { Redis } from '@upstash/redis/cloudflare';
import { dependencyUnavailable } from '../errors.ts';
import { budgetUnderLoad } from '../in-flight.ts';
import { withTimeout } from '../time.ts';
import { REFENCE_SCRIPT, RELEASE_SCRIPT, runScript } from './scripts.ts';
import type { LockGrant } from './types.ts';

/** Defaults shared by both lock kinds. */
export const DEFAULT_LEASE_MS = 10_000;
export const DEFAULT_PREFIX = 'lock';
export const DEFAULT_REDIS_BUDGET_MS = 1_000;
export const DEFAULT_META_TTL_MS = 24 * 60 * 60 * 1000;

/** What every Redis call of a lock needs: the client, the time one call may take in all, and how long the lock's meta hash outlives its last use. */
export interface LockRedis {
  redis: Redis;
  budgetMs: number;
  metaTtlMs: number;
}

/** The Redis keys of one lock; all carry the same `{name}` hash tag. */
export interface LockKeys {
  lock: string;
  queue: string;
  deadlines: string;
  meta: string;
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
  { redis, budgetMs }: LockRedis,
  source: string,
  keys: string[],
  args: string[],
  parse: (reply: unknown) => T | undefined,
): Promise<T> {
  let reply: unknown;
  try {
    // The client's own timeout and retry bound each attempt; this bounds them all together, so the
    // fail-closed time does not depend on how the client was configured.
    reply = await withTimeout(runScript(redis, source, keys, args), budgetUnderLoad(budgetMs), 'lock call to Redis');
  } catch (error) {
    throw dependencyUnavailable('Redis', error);
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
  return callScript(redis, RELEASE_SCRIPT, [keys.lock, keys.queue, keys.deadlines], [owner], (reply) =>
    reply === 1 ? true : reply === 0 ? false : undefined,
  );
}

/** Re-fences `owner` above `seen` if it still holds the lock (REFENCE_SCRIPT); null when it does not. */
export function refenceLock(redis: LockRedis, keys: LockKeys, owner: string, seen: number): Promise<{ fence: number; leaseMs: number } | null> {
  if (!Number.isSafeInteger(seen) || seen < 0) return Promise.reject(new RangeError(`seen must be a fence, got ${seen}`));
  return callScript(redis, REFENCE_SCRIPT, [keys.lock, keys.meta], [owner, String(seen), String(redis.metaTtlMs)], (reply) =>
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
