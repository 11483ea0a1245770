import { neon, neonConfig, type NeonQueryFunction } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-http';
import type { DbConfig } from './client.ts';
import * as schema from './schema.ts';

let localEndpointConfigured = '';

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
 * Neon's HTTP query function: one fetch per statement, or per non-interactive batch
 * (`sql.transaction([...])`), with no connection set-up. Safe to make per request, and cheap.
 */
export function createSql(config: DbConfig): NeonQueryFunction<false, false> {
  if (config.NEON_WS_PROXY) configureLocalEndpoint(config.NEON_WS_PROXY);
  return neon(config.DATABASE_URL);
}

/** drizzle over Neon's HTTP path, with the app's schema. */
export function createHttpDb(config: DbConfig) {
  return drizzle({ client: createSql(config), schema });
}

export type HttpDb = ReturnType<typeof createHttpDb>;
export type Sql = NeonQueryFunction<false, false>;
