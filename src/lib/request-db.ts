import { createMiddleware } from 'hono/factory';
import { createHttpDb, createSql, type HttpDb, type Sql } from '../db/http.ts';
import type { AppEnv } from '../types.ts';

/**
 * Gives each request Postgres over Neon's HTTP query path (DESIGN.md §5 Connections): `c.var.sql()`
 * (the driver's `neon()` query function) and `c.var.db()` (drizzle neon-http), both created on first
 * use. Each statement, or non-interactive batch (`sql.transaction([...])`), is one fetch; no
 * connection is opened, so there is nothing to close afterwards. Interactive transactions run only
 * in the ConcertRoom, on its long-lived pool (eslint.config.js keeps pools out of Worker code).
 */
export const requestDb = createMiddleware<AppEnv>(async (c, next) => {
  let sql: Sql | undefined;
  let db: HttpDb | undefined;
  c.set('sql', () => (sql ??= createSql(c.env)));
  c.set('db', () => (db ??= createHttpDb(c.env)));
  await next();
});
