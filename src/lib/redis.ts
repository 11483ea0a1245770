import { Redis } from '@upstash/redis/cloudflare';
import type { Deadline } from './deadline.ts';

/** What the Redis client needs from the environment. */
export interface RedisConfig {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

/** Per-command timeout of the shared client (code outside a request: benches, tests, scripts). @default 800 */
export const REDIS_COMMAND_TIMEOUT_MS = 800;

const clients = new Map<string, Redis>();

/**
 * Each command gets a single retry: the library's default (five retries with backoff) would hold a
 * failing request for seconds. Auto-pipelining batches concurrent commands into one HTTP request,
 * so one slow batch would time out every lock call in it together; each command travels on its own.
 */
function createClient(config: RedisConfig, signal: () => AbortSignal): Redis {
  return new Redis({
    url: config.UPSTASH_REDIS_REST_URL,
    token: config.UPSTASH_REDIS_REST_TOKEN,
    retry: { retries: 1, backoff: () => 50 },
    // A function: the library calls it once per command (the retry included) and throws on abort.
    signal,
    enableTelemetry: false,
    enableAutoPipelining: false,
  });
}

/**
 * A shared `@upstash/redis` client per URL and token, each command cut after
 * {@link REDIS_COMMAND_TIMEOUT_MS}. Unlike a Neon pool it holds no socket, so one client serves the
 * whole isolate. Requests use {@link redisUntil} instead, so their calls end at their deadline.
 */
export function getRedis(config: RedisConfig): Redis {
  const cacheKey = `${config.UPSTASH_REDIS_REST_URL}\n${config.UPSTASH_REDIS_REST_TOKEN}`;
  let client = clients.get(cacheKey);
  if (!client) {
    client = createClient(config, () => AbortSignal.timeout(REDIS_COMMAND_TIMEOUT_MS));
    clients.set(cacheKey, client);
  }
  return client;
}

/**
 * A client whose every command (its one retry included) is aborted when `deadline` passes: the
 * request's Redis deadline (src/lib/deadline.ts). Made per request: it costs about 5 µs and holds
 * no connection.
 */
export function redisUntil(config: RedisConfig, deadline: Deadline): Redis {
  return createClient(config, () => deadline.signal());
}
