import { neon, neonConfig, types, type CustomTypesConfig, type NeonQueryFunction } from '@neondatabase/serverless';
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

/**
 * Types drizzle's neon-http driver wants as raw text (its columns parse them): timestamps, dates,
 * intervals and their arrays. The OIDs are the ones drizzle's NeonHttpDriver.initMappers lists.
 */
const DRIZZLE_RAW_TYPES: readonly number[] = [
  1184, // timestamptz
  1114, // timestamp
  1082, // date
  1186, // interval
  1231, // numeric[] (as drizzle lists it)
  1115, // timestamp[]
  1185, // timestamptz[]
  1187, // interval[]
  1182, // date[]
];
type TypeParser = (value: string) => unknown;
const rawText: TypeParser = (value) => value;

/** Per-query type parsers for drizzle's queries: raw text for its types, the defaults otherwise. */
const drizzleTypes: CustomTypesConfig = {
  getTypeParser: (oid: number, format?: 'text' | 'binary'): TypeParser =>
    DRIZZLE_RAW_TYPES.includes(oid) ? rawText : (types.getTypeParser(oid, format ?? 'text') as TypeParser),
};

/**
 * drizzle over Neon's HTTP path, with the app's schema.
 *
 * drizzle's neon-http driver sets the timestamp, date and interval parsers of the driver's *global*
 * pg-types to raw text whenever one is constructed. Those parsers are shared with every `neon()`
 * query and every `Pool` in the isolate (the ConcertRoom's included), which would then get strings
 * where they expect Dates. So the global parsers are put back right after construction, and
 * drizzle's own queries carry those raw-text parsers per query instead.
 */
export function createHttpDb(config: DbConfig) {
  const sql = createSql(config);
  const client = Object.assign((...args: Parameters<Sql>) => sql(...args), sql, {
    query: (text: string, params?: unknown[], options?: Parameters<Sql['query']>[2]) =>
      sql.query(text, params, { ...options, types: drizzleTypes }),
  }) as Sql;
  const saved = DRIZZLE_RAW_TYPES.map((oid) => [oid, types.getTypeParser(oid, 'text') as TypeParser] as const);
  try {
    return drizzle({ client, schema });
  } finally {
    for (const [oid, parser] of saved) types.setTypeParser(oid, parser);
  }
}

export type HttpDb = ReturnType<typeof createHttpDb>;
export type Sql = NeonQueryFunction<false, false>;
