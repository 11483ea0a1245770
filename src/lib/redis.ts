import { Redis } from '@upstash/redis/cloudflare';
import { budgetUnderLoad } from './in-flight.ts';

/** What the Redis client needs from the environment. */
export interface RedisConfig {
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

/** Per-command budget on an idle isolate (see budgetUnderLoad). Locks must fail closed within about a second when Redis is away. @default 800 */
export const REDIS_COMMAND_TIMEOUT_MS = 800;

const clients = new Map<string, Redis>();

/**
 * A shared `@upstash/redis` client per URL and token. Unlike a Neon pool it holds no socket, so one
 * client serves every request of the isolate. Each command gets its own timeout and a single retry:
 * the library's default (five retries with backoff) would hold a failing request for seconds.
 */
export function getRedis(config: RedisConfig): Redis {
  const cacheKey = `${config.UPSTASH_REDIS_REST_URL}\n${config.UPSTASH_REDIS_REST_TOKEN}`;
  let client = clients.get(cacheKey);
  if (!client) {
    client = new Redis({
      url: config.UPSTASH_REDIS_REST_URL,
      token: config.UPSTASH_REDIS_REST_TOKEN,
      retry: { retries: 1, backoff: () => 50 },
      signal: () => AbortSignal.timeout(budgetUnderLoad(REDIS_COMMAND_TIMEOUT_MS)),
      enableTelemetry: false,
      // Auto-pipelining batches concurrent commands into one HTTP request, so one slow batch times
      // out every lock call in it together; each command travels on its own instead.
      enableAutoPipelining: false,
    });
    clients.set(cacheKey, client);
  }
  return client;
}
