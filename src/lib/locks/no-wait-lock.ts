import {
  DEFAULT_LEASE_MS,
  DEFAULT_PREFIX,
  callScript,
  createGrant,
  decisionDeadline,
  lockKeys,
  lockRedis,
  ownerToken,
  parseGranted,
  positiveInteger,
  releaseLock,
} from './internal.ts';
import type { LockRedis } from './internal.ts';
import { TRY_SCRIPT } from './scripts.ts';
import type { LockGrant, LockOptions } from './types.ts';

/** Options of a {@link NoWaitLock}. */
export type NoWaitLockOptions = LockOptions;

/** Per-call options of {@link NoWaitLock.tryAcquire}. */
export interface TryAcquireOptions {
  /**
   * Owner token to acquire as. Leave it out (a random one is made) unless resuming an acquisition whose
   * reply was lost: an owner that already holds the lock gets its existing grant back, with the same
   * fence. Two live callers must never share one.
   */
  owner?: string;
}

/**
 * A lock that never waits: the first caller gets it, everyone else is told at once that it is taken,
 * e.g. `payment:{reservationId}` so a double click answers 409 instead of queueing a second payment.
 * `SET lock owner NX PX lease` semantics, done in Lua so the fence is issued with the grant.
 *
 * @example
 * ```ts
 * const grant = await new NoWaitLock({ redis }).tryAcquire(`payment:${reservationId}`);
 * if (!grant) throw new AppError(409, 'PAYMENT_IN_PROGRESS', 'Payment in progress');
 * ```
 */
export class NoWaitLock {
  private readonly redis: LockRedis;
  private readonly prefix: string;
  private readonly leaseMs: number;

  constructor(options: NoWaitLockOptions) {
    this.redis = lockRedis(options);
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.leaseMs = positiveInteger('leaseMs', options.leaseMs ?? DEFAULT_LEASE_MS);
  }

  /**
   * Takes the lock `key` if it is free. Resolves `null` when someone else holds it (Redis said no).
   *
   * @throws AppError 503 DEPENDENCY_UNAVAILABLE (with Retry-After) when Redis cannot be reached: fail
   *   closed, no grant is reported unless Redis confirmed it.
   */
  async tryAcquire(key: string, options: TryAcquireOptions = {}): Promise<LockGrant | null> {
    const keys = lockKeys(this.prefix, key);
    const owner = ownerToken(options.owner);
    let granted: { fence: number; leaseMs: number } | null;
    try {
      granted = await callScript(this.redis, decisionDeadline(this.redis), TRY_SCRIPT, [keys.lock, keys.meta], [owner, String(this.leaseMs), String(this.redis.metaTtlMs)], (reply) =>
        Array.isArray(reply) && reply.length === 1 && reply[0] === 0 ? null : parseGranted(reply),
      );
    } catch (error) {
      // The call may still land and grant the lock to nobody who knows it; ask Redis to drop it without
      // holding up the 503. Should that be lost too, the lease frees the lock.
      void releaseLock(this.redis, keys, owner).catch(() => false);
      throw error;
    }
    return granted && createGrant(this.redis, keys, key, owner, granted);
  }

  /**
   * Releases `key` if `owner` holds it (compare-and-delete). Resolves whether it was released.
   *
   * @throws AppError 503 DEPENDENCY_UNAVAILABLE when Redis cannot be reached.
   */
  async release(key: string, owner: string): Promise<boolean> {
    return await releaseLock(this.redis, lockKeys(this.prefix, key), ownerToken(owner));
  }
}
