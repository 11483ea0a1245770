import { inject } from 'vitest';

/**
 * Sends one raw command to Redis through the Upstash REST adapter (no client-side encoding), e.g.
 * `redisCommand('FLUSHALL')` to make Redis lose everything, as a failover to an empty replica would.
 */
export async function redisCommand(...command: (string | number)[]): Promise<unknown> {
  const response = await fetch(inject('upstashUrl'), {
    method: 'POST',
    headers: { Authorization: `Bearer ${inject('upstashToken')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(command),
  });
  const body = await response.json<{ result?: unknown; error?: string }>();
  if (!response.ok || body.error !== undefined) throw new Error(`redis ${String(command[0])} failed: ${body.error ?? response.status}`);
  return body.result;
}

/** The Redis key of an in-flight claim or finished response (src/lib/idempotency.ts). */
export const idempotencyRedisKey = (userId: string, key: string) => `idempotency:${JSON.stringify([userId, key])}`;
