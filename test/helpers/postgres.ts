import pg from 'pg';
import { inject } from 'vitest';

interface EmitterLike {
  emit(event: string, ...args: unknown[]): boolean;
}

/** A plain TCP connection straight to Postgres that a test keeps open, e.g. to hold a row lock. */
export interface DirectClient {
  query: <Row extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<Row[]>;
  close: () => Promise<void>;
}

/**
 * Opens a connection straight to Postgres, bypassing the Neon driver and its adapter: the
 * independent witness for what the app's own client wrote. Close it in a `finally`.
 */
export async function openDirectClient(): Promise<DirectClient> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') });
  await client.connect();
  // pg-cloudflare reports the socket's ordinary close as an 'error' after end(), when nobody listens
  // any more; drop exactly those so they do not surface as unhandled rejections.
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

/** Runs one query on a connection of its own (see {@link openDirectClient}). */
export async function directQuery<Row extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<Row[]> {
  const client = await openDirectClient();
  try {
    return await client.query<Row>(text, values);
  } finally {
    await client.close();
  }
}
