import { createMiddleware } from 'hono/factory';
import { createPool, type Pool } from '../db/client.ts';
import { createHttpDb, createSql, type HttpDb, type Sql } from '../db/http.ts';
import type { AppEnv } from '../types.ts';

/**
 * Gives each request Postgres over Neon's HTTP query path (DESIGN.md §5 Connections): `c.var.sql()`
 * (the driver's `neon()` query function) and `c.var.db()` (drizzle neon-http), both created on first
 * use. Each statement, or non-interactive batch (`sql.transaction([...])`), is one fetch; no
 * connection is opened, so there is nothing to close afterwards.
 *
 * `c.var.pool()` is the old per-request WebSocket `Pool`, kept ONLY for POST /payment
 * (payForReservation) until payment moves into the ConcertRoom (which keeps its own long-lived
 * pool). It goes away with it; nothing new may use it (eslint.config.js allow-lists those files and
 * refuses a Pool anywhere else in routes, services and lib).
 */
export const requestDb = createMiddleware<AppEnv>(async (c, next) => {
  let sql: Sql | undefined;
  let db: HttpDb | undefined;
  let pool: Pool | undefined;
  c.set('sql', () => (sql ??= createSql(c.env)));
  c.set('db', () => (db ??= createHttpDb(c.env)));
  // Going away (see above). workerd refuses I/O objects shared across requests, so this pool is the
  // request's own and is ended once the handler is done.
  c.set('pool', () => (pool ??= createPool(c.env)));
  try {
    await next();
  } finally {
    if (pool) c.executionCtx.waitUntil(pool.end().catch(() => undefined));
  }
});
