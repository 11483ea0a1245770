import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-serverless';
import { describeError, logJson } from '../lib/logging.ts';
import * as schema from './schema.ts';

/** What the db client needs from the environment; a service never reads `c.env` itself. */
export interface DbConfig {
  DATABASE_URL: string;
  /** host:port/path of the local Neon WebSocket adapter; empty in production. */
  NEON_WS_PROXY?: string;
}

/** Longest one statement of the room may run before Postgres cancels it. @default 5000 */
export const STATEMENT_TIMEOUT_MS = 5_000;

let localProxyConfigured = '';

/**
 * Points the Neon driver at the local WebSocket⇄TCP adapter. Only runs when NEON_WS_PROXY is set,
 * so production keeps the driver's defaults (TLS WebSockets to Neon, pipelined connect).
 */
function configureLocalProxy(proxy: string): void {
  if (localProxyConfigured === proxy) return;
  neonConfig.wsProxy = () => proxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
  localProxyConfigured = proxy;
}

/**
 * Creates a Neon `Pool`. Inside a Worker request, make one per request and `waitUntil(pool.end())`:
 * workerd refuses I/O objects shared across requests. A Durable Object may keep one for its lifetime.
 * @param options.max connections in the pool. @default 2
 */
export function createPool(config: DbConfig, options: { max?: number } = {}): Pool {
  if (config.NEON_WS_PROXY) configureLocalProxy(config.NEON_WS_PROXY);
  const pool = new Pool({
    connectionString: config.DATABASE_URL,
    max: options.max ?? 2,
    connectionTimeoutMillis: 5_000,
    // A stuck statement must not pin a pending hold or a payment: Postgres cancels it, the caller
    // sees an error and resolves the outcome by reading back (DESIGN.md §6, invariant 6).
    statement_timeout: STATEMENT_TIMEOUT_MS,
  });
  // An idle connection that breaks is reported here; unheard, the 'error' event would throw and take
  // the isolate (or a Durable Object holding the pool) down with it. The pool replaces the client.
  pool.on('error', (error: Error) => logJson('warn', 'idle postgres connection failed', describeError(error)));
  return pool;
}

/** drizzle over a Neon pool, with the app's schema. */
export function createDb(pool: Pool) {
  return drizzle({ client: pool, schema });
}

export type Db = ReturnType<typeof createDb>;
export type { Pool };
