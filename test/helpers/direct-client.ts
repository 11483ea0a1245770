import pg from 'pg';
import { inject } from 'vitest';
import { directQuery } from './postgres.ts';

interface EmitterLike {
  emit(event: string, ...args: unknown[]): boolean;
}

/** A plain TCP connection straight to Postgres that a test keeps open, e.g. to hold a row lock. */
export interface DirectClient {
  query: <Row extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<Row[]>;
  close: () => Promise<void>;
}

/** Opens a {@link DirectClient}; close it in a `finally`. */
export async function openDirectClient(): Promise<DirectClient> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') });
  await client.connect();
  // As in directQuery: the socket's ordinary close after end() must not surface as an error.
  let ended = false;
  const stream = (client as unknown as { connection: { stream: EmitterLike } }).connection.stream;
  const emit = stream.emit.bind(stream);
  stream.emit = (event: string, ...args: unknown[]) => (ended && event === 'error' ? false : emit(event, ...args));
  return {
    query: async <Row extends pg.QueryResultRow>(text: string, values: unknown[] = []) => (await client.query<Row>(text, values)).rows,
    close: async () => {
      ended = true;
      await client.end();
    },
  };
}

/**
 * Waits until some backend is blocked on a lock while running a statement that contains `fragment`
 * (e.g. "INSERT INTO payments"): the way a test knows the order in which statements queue for a row.
 */
export async function waitForLockWaiter(fragment: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const rows = await directQuery<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
      [fragment],
    );
    if (Number(rows[0]?.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no statement containing "${fragment}" came to wait on a lock within ${timeoutMs} ms`);
}
