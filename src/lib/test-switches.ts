/**
 * Switches that only tests flip (they run in the Worker's own isolate and import this module).
 * Production never changes them; they exist to prove that Postgres alone keeps the invariants.
 */
export const testSwitches = {
  /** Skip the balance wait lock, so charges and uses race straight into Postgres's guarded update. */
  bypassBalanceLock: false,
  /**
   * Overrides the balance wait lock's 5 s timeout. Races of 100 requests on one lock are serialized
   * by design; on a loaded 2-core CI box they can need longer than 5 s, and a test about exactness
   * must not fail on a (correct) LOCK_TIMEOUT. The timeout itself is tested in test/locks.
   */
  balanceLockTimeoutMs: undefined as number | undefined,
};
