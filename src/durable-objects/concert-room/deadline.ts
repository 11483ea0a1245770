// A client-side deadline for the room's Postgres statements. Postgres cancels a statement that runs
// too long (statement_timeout), but a reply lost on the way back (a dead connection that never says
// so) would leave the statement's caller, and a hold it keeps pending, waiting for ever.
import { STATEMENT_TIMEOUT_MS } from '../../db/client.ts';

/**
 * Longest the room waits for one statement's reply: Postgres's own timeout plus room for a slow
 * network. Past it the connection is given up as broken. @default 8000
 */
export const ROOM_STATEMENT_DEADLINE_MS = STATEMENT_TIMEOUT_MS + 3_000;

/** The statement's reply did not come in time: its outcome is unknown, as after a cut connection. */
export class StatementDeadlineError extends Error {
  override name = 'StatementDeadlineError';
  constructor(ms: number) {
    // Worded as the driver words a lost connection, so `isPostgresUnavailable` knows it, and
    // `withClient` destroys the connection instead of pooling it with a statement still in flight.
    super(`Connection terminated: no reply within ${ms} ms`);
  }
}

/**
 * Waits for `statement` at most `ms`; past that rejects with StatementDeadlineError. The statement's
 * own late outcome is dropped (its connection is destroyed by the caller's `withClient`).
 */
export function withDeadline<T>(statement: Promise<T>, ms = ROOM_STATEMENT_DEADLINE_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StatementDeadlineError(ms)), ms);
  });
  statement.catch(() => undefined); // a late failure has nobody left to tell
  return Promise.race([statement, deadline]).finally(() => clearTimeout(timer));
}
