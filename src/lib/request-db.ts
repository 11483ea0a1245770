import { createMiddleware } from 'hono/factory';
import { createDb, createPool, type Db, type Pool } from '../db/client.ts';
import type { AppEnv } from '../types.ts';

/**
 * Gives each request a lazily created drizzle client (`c.var.db()`) on a pool of its own, ended
 * once the handler is done. workerd refuses I/O objects shared across requests, so pools are never
 * reused; ending one before the handler finishes would break its queries.
 */
export const requestDb = createMiddleware<AppEnv>(async (c, next) => {
  let pool: Pool | undefined;
  let db: Db | undefined;
  c.set('pool', () => (pool ??= createPool(c.env)));
  c.set('db', () => (db ??= createDb((pool ??= createPool(c.env)))));
  try {
    await next();
  } finally {
    if (pool) c.executionCtx.waitUntil(pool.end().catch(() => undefined));
  }
});
