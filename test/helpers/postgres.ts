import pg from 'pg';
import { inject } from 'vitest';

interface EmitterLike {
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * Runs one query over a plain TCP connection straight to Postgres, bypassing the Neon driver and
 * its WebSocket adapter: the independent witness for what the app's own client wrote.
 */
export async function directQuery<Row extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') });
  await client.connect();
  // pg-cloudflare reports the socket's ordinary close as an 'error' after end(), when nobody listens
  // any more; drop exactly those so they do not surface as unhandled rejections.
  let ended = false;
  const stream = (client as unknown as { connection: { stream: EmitterLike } }).connection.stream;
  const emit = stream.emit.bind(stream);
  stream.emit = (event: string, ...args: unknown[]) => (ended && event === 'error' ? false : emit(event, ...args));
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    ended = true;
    await client.end();
  }
}
