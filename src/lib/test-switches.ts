/**
 * Switches that only tests flip (they run in the Worker's own isolate and import this module).
 * Production never changes them; they exist to prove that Postgres alone keeps the invariants.
 */
export const testSwitches = {
  /** Skip the balance wait lock, so charges and uses race straight into Postgres's guarded update. */
  bypassBalanceLock: false,
};
