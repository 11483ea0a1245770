import type { Pool, PoolClient } from '@neondatabase/serverless';
import { isPostgresUnavailable } from './errors.ts';

/**
 * Runs `work` with one connection of `pool`, returned afterwards; a connection that broke is
 * destroyed rather than pooled. Connecting first lets callers keep connection set-up out of a
 * critical section (e.g. before taking a lock).
 */
export async function withClient<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (error) {
    if (isPostgresUnavailable(error)) broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Runs `work` in one transaction on `client`; rolls back on any error. */
export async function inTransaction<T>(client: PoolClient, work: (client: PoolClient) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** One transaction on a connection of `pool`. */
export function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, (client) => inTransaction(client, work));
}
