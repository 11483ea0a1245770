/**
 * Switches that only tests flip (they run in the Worker's own isolate and import this module).
 * Production never changes them; they exist to prove that Postgres alone keeps the invariants.
 */
export const testSwitches = {
  /** Skip the balance wait lock, so charges and uses race straight into Postgres's guarded update. */
  bypassBalanceLock: false,
  /**
   * Overrides every request's Redis deadline (REDIS_DEADLINE_MS in src/lib/deadline.ts), which also
   * ends a wait for the balance lock. Races of 100 requests on one lock are serialized by design; on
   * a loaded 2-core CI box they need far longer than the deadline, and a test about exactness must
   * not fail on a (correct) LOCK_TIMEOUT. The deadline itself is tested in test/locks and test/faults.
   */
  redisDeadlineMs: undefined as number | undefined,
};
