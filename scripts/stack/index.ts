/**
 * The local development/test stack (DESIGN.md §7): the same client libraries production uses
 * (@neondatabase/serverless over WebSocket, @upstash/redis over REST) talk to a throwaway PostgreSQL and
 * redis-server through two small adapters, which are also where fault-injection tests cut traffic.
 *
 *   startStack() ──► PostgreSQL (cluster | PGlite | external DATABASE_URL)
 *                      ▲ TCP
 *                    Neon adapter            ws://127.0.0.1:P/v1, http://127.0.0.1:P/sql   (+ /__fault, /__server)
 *                ──► redis-server (or external UPSTASH_REDIS_REST_URL)
 *                      ▲ RESP
 *                    Upstash REST adapter    http://127.0.0.1:Q    (+ /__fault, /__server)
 */
import { randomBytes } from 'node:crypto';
import { startNeonWsAdapter } from './neon-ws-adapter.ts';
import { startPglite } from './pglite.ts';
import { POSTGRES_BIN_DIRS, findPostgresBinDir, startPostgresCluster } from './postgres.ts';
import type { LocalPostgres } from './postgres.ts';
import { REDIS_BIN_DIRS, findRedisServer, startRedisServer } from './redis.ts';
import type { LocalRedis } from './redis.ts';
import { startUpstashRestAdapter } from './upstash-rest-adapter.ts';

export type { FaultMode, FaultState, ServerAction } from './faults.ts';
export { FAULT_PATH, SERVER_PATH } from './faults.ts';

/** Everything a caller needs to point the app, its tests or a benchmark at the stack. */
export interface Stack {
  /** Direct TCP URL, e.g. postgres://postgres@127.0.0.1:PORT/frontrow (node-side migrate/seed, tests' direct queries). */
  databaseUrl: string;
  /** Value for neonConfig.wsProxy, e.g. "127.0.0.1:PORT/v1"; "" when DATABASE_URL points at real Neon (*.neon.tech). */
  neonWsProxy: string;
  /** e.g. http://127.0.0.1:PORT, or the user's real UPSTASH_REDIS_REST_URL. */
  upstashUrl: string;
  upstashToken: string;
  /** Fault control endpoint URLs and the X-Fault-Token to send ("" for an adapter that is not ours). */
  faults: { neon: string; upstash: string; token: string };
  /**
   * Distance and call-count endpoints of the adapters (scripts/stack/wire.ts: GET to read, POST with
   * the fault token to set a latency per round trip); "" for an adapter that is not ours.
   */
  wire: { neon: string; upstash: string };
  postgresKind: 'cluster' | 'pglite' | 'external';
  /** Idempotent; kills every process/server it started and removes temp dirs. */
  stop(): Promise<void>;
}

/** Options for {@link startStack}. */
export interface StartStackOptions {
  /** Fall back to embedded PGlite when no PostgreSQL server binaries are installed (dev only; tests want the real thing). */
  allowPglite?: boolean;
  /** Progress messages; silent by default. */
  log?: (msg: string) => void;
  /** Extra environment for the PostgreSQL server only (the suite's TEST_TODAY runs it under libfaketime). */
  postgresEnv?: Record<string, string>;
}

const NEON_HOST = /\.neon\.tech$/i;

/** Host and port of a postgres:// URL (default port 5432). */
function postgresTarget(databaseUrl: string): { host: string; port: number } {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error('DATABASE_URL is not a valid URL');
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 5432 : Number(url.port) };
}

function installHint(what: string, dirs: readonly string[], install: string, alternative: string): Error {
  return new Error(
    `${what} not found on PATH or in ${dirs.join(', ')}. Install the package (${install}), or ${alternative}.`,
  );
}

/**
 * Starts the local stack: PostgreSQL (throwaway cluster, PGlite if allowed and nothing else exists, or
 * DATABASE_URL), the Neon WebSocket adapter in front of it (unless DATABASE_URL is real Neon),
 * redis-server with the Upstash REST adapter (unless UPSTASH_REDIS_REST_URL is set). Everything listens
 * on 127.0.0.1 on free ports; on failure whatever was already started is stopped again.
 */
export async function startStack(opts: StartStackOptions = {}): Promise<Stack> {
  const log = opts.log ?? ((): void => {});
  const t0 = Date.now();

  // Decide everything (and fail on missing binaries) before starting anything.
  const externalDb = process.env.DATABASE_URL?.trim() || undefined;
  const externalUpstash = process.env.UPSTASH_REDIS_REST_URL?.trim() || undefined;
  const postgresBinDir = externalDb ? undefined : findPostgresBinDir();
  if (!externalDb && !postgresBinDir && !opts.allowPglite) {
    throw installHint(
      'PostgreSQL server binaries (initdb, postgres)',
      POSTGRES_BIN_DIRS,
      'Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql`',
      'set DATABASE_URL to an existing database',
    );
  }
  const redisBinary = externalUpstash ? undefined : findRedisServer();
  if (!externalUpstash && !redisBinary) {
    throw installHint(
      'redis-server',
      REDIS_BIN_DIRS,
      'Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`',
      'set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN to a real Upstash database',
    );
  }

  /** Stop functions in start order; stopped in reverse. */
  const started: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const stopOne of started.splice(0).reverse()) {
        try {
          await stopOne();
        } catch (error) {
          log(`stack: error while stopping: ${String(error)}`);
        }
      }
      log('stack: stopped');
    })());

  try {
    // PostgreSQL and redis-server start in parallel: initdb dominates the start-up time.
    const [pgResult, redisResult] = await Promise.allSettled([
      externalDb
        ? Promise.resolve(undefined)
        : postgresBinDir
          ? startPostgresCluster(postgresBinDir, log, opts.postgresEnv)
          : startPglite(log),
      redisBinary ? startRedisServer(redisBinary, log) : Promise.resolve(undefined),
    ]);
    let postgres: LocalPostgres | undefined;
    let redis: LocalRedis | undefined;
    if (pgResult.status === 'fulfilled' && pgResult.value) {
      const pgServer = (postgres = pgResult.value);
      started.push(() => pgServer.stop());
    }
    if (redisResult.status === 'fulfilled' && redisResult.value) {
      const redisServer = (redis = redisResult.value);
      started.push(() => redisServer.stop());
    }
    if (pgResult.status === 'rejected') throw pgResult.reason;
    if (redisResult.status === 'rejected') throw redisResult.reason;

    const databaseUrl = externalDb ?? postgres?.url ?? '';
    const target = postgres ?? postgresTarget(databaseUrl);
    const realNeon = NEON_HOST.test(target.host);
    const faultToken = realNeon && externalUpstash ? '' : randomBytes(16).toString('hex');

    let neonWsProxy = '';
    let neonFaultUrl = '';
    let neonWireUrl = '';
    if (!realNeon) {
      // Fault tests may stop and start the throwaway cluster (never a database someone else runs).
      const pg = postgres;
      const server = pg?.halt && pg.resume ? { stop: () => pg.halt!(), start: () => pg.resume!() } : {};
      const adapter = await startNeonWsAdapter(target, faultToken, log, server);
      started.push(() => adapter.stop());
      neonWsProxy = adapter.wsProxy;
      neonFaultUrl = adapter.faultUrl;
      neonWireUrl = adapter.wireUrl;
    }

    let upstashUrl = externalUpstash ?? '';
    let upstashToken = process.env.UPSTASH_REDIS_REST_TOKEN ?? '';
    let upstashFaultUrl = '';
    let upstashWireUrl = '';
    if (redis) {
      const adapter = await startUpstashRestAdapter(redis, randomBytes(24).toString('base64url'), faultToken, log, {
        pause: () => redis.pause(),
        resume: () => redis.resume(),
      });
      started.push(() => adapter.stop());
      upstashUrl = adapter.url;
      upstashToken = adapter.token;
      upstashFaultUrl = adapter.faultUrl;
      upstashWireUrl = adapter.wireUrl;
    } else if (upstashToken === '') {
      log('stack: UPSTASH_REDIS_REST_URL is set but UPSTASH_REDIS_REST_TOKEN is empty');
    }

    const postgresKind: Stack['postgresKind'] = externalDb ? 'external' : postgresBinDir ? 'cluster' : 'pglite';
    log(`stack: up in ${Date.now() - t0} ms (postgres: ${postgresKind})`);
    return {
      databaseUrl,
      neonWsProxy,
      upstashUrl,
      upstashToken,
      faults: { neon: neonFaultUrl, upstash: upstashFaultUrl, token: faultToken },
      wire: { neon: neonWireUrl, upstash: upstashWireUrl },
      postgresKind,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
