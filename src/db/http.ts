import { neon, neonConfig, type NeonQueryFunction } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-http';
import type { DbConfig } from './client.ts';
import * as schema from './schema.ts';

/**
 * Longest one HTTP query (or batch) may take before the Worker gives up on it and reports Postgres as
 * unavailable. Without it a query whose reply never comes (a dropped connection) would hold the
 * request, and any lock it holds, until the client goes away. @default 5000
 */
export const QUERY_TIMEOUT_MS = 5_000;

let localEndpointConfigured = '';
let fetchConfigured = false;

/**
 * Points the driver's HTTP path at the local Neon adapter, which serves Neon's `/sql` endpoint on the
 * same port as its WebSocket proxy. Only when NEON_WS_PROXY is set: production posts to Neon itself.
 */
function configureLocalEndpoint(proxy: string): void {
  if (localEndpointConfigured === proxy) return;
  const hostPort = proxy.split('/')[0];
  neonConfig.fetchEndpoint = `http://${hostPort}/sql`;
  localEndpointConfigured = proxy;
}

/**
 * Gives every HTTP query a deadline: the driver's fetch has none of its own. A query that passes its
 * own signal (`sql.query(text, params, { fetchOptions: { signal } })`) keeps it instead. The abort
 * reaches the driver as "Error connecting to database: TimeoutError …", which `isPostgresUnavailable`
 * classifies. (`neonConfig.fetchFunction` is global; the function holds no per-request state.)
 */
function configureFetch(): void {
  if (fetchConfigured) return;
  neonConfig.fetchFunction = (input: RequestInfo | URL, init: RequestInit = {}) =>
    fetch(input, { ...init, signal: init.signal ?? AbortSignal.timeout(QUERY_TIMEOUT_MS) });
  fetchConfigured = true;
}

/**
 * Neon's HTTP query function: one fetch per statement, or per non-interactive batch
 * (`sql.transaction([...])`), with no connection set-up. Safe to make per request, and cheap.
 */
export function createSql(config: DbConfig): NeonQueryFunction<false, false> {
  if (config.NEON_WS_PROXY) configureLocalEndpoint(config.NEON_WS_PROXY);
  configureFetch();
  return neon(config.DATABASE_URL);
}

/** drizzle over Neon's HTTP path, with the app's schema. */
export function createHttpDb(config: DbConfig) {
  return drizzle({ client: createSql(config), schema });
}

export type HttpDb = ReturnType<typeof createHttpDb>;
export type Sql = NeonQueryFunction<false, false>;
