/**
 * Distributed locks on Upstash Redis (DESIGN.md §1, §5): a fair wait lock and a no-wait lock. Both
 * issue fencing tokens and fail closed with 503 when Redis is unreachable. They order work and stop
 * duplicates early; Postgres, checking the fence, stays the final judge.
 */
export { WaitLock } from './wait-lock.ts';
export type { AcquireOptions, PollResult, WaitLockOptions } from './wait-lock.ts';
export { NoWaitLock } from './no-wait-lock.ts';
export type { NoWaitLockOptions, TryAcquireOptions } from './no-wait-lock.ts';
export { lockTimeout } from './errors.ts';
export type { LockGrant, LockOptions } from './types.ts';
