import { inject } from 'vitest';
import { getRedis } from '../../src/lib/redis.ts';
import type { PollResult } from '../../src/lib/locks/index.ts';

/** The app's own shared client (800 ms per command, one retry) against the local Upstash adapter. */
export const redis = getRedis({ UPSTASH_REDIS_REST_URL: inject('upstashUrl'), UPSTASH_REDIS_REST_TOKEN: inject('upstashToken') });

/** A lock name no other test uses. */
export const lockName = (label: string) => `test:${label}:${crypto.randomUUID()}`;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Narrows a poll to a grant, failing the test otherwise. */
export function granted(result: PollResult): Extract<PollResult, { granted: true }> {
  if (!result.granted) throw new Error(`expected a grant, got ${JSON.stringify(result)}`);
  return result;
}

/** Narrows a poll to a place in line, failing the test otherwise. */
export function waiting(result: PollResult): Extract<PollResult, { granted: false }> {
  if (result.granted) throw new Error(`expected to wait, got ${JSON.stringify(result)}`);
  return result;
}
