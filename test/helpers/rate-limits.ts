import { expect } from 'vitest';
import { RATE_LIMIT_PERIOD_SECONDS } from '../../src/lib/rate-limit.ts';
import { expectProblem } from './problem.ts';

export { clientAddress } from './api.ts';

const PERIOD_MS = RATE_LIMIT_PERIOD_SECONDS * 1000;

/**
 * Waits, if need be, until the current rate-limit window has at least `needMs` left. The local
 * emulation of the rate-limiting binding counts in windows aligned to the clock (epoch multiples of
 * the period), so a burst and the check after it must fall in one window to be deterministic.
 */
export async function roomInWindow(needMs: number): Promise<void> {
  const left = PERIOD_MS - (Date.now() % PERIOD_MS);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

/**
 * Sends `send(i)` in parallel chunks until one is answered 429, and returns how many were sent.
 * Fails if `max` requests pass without a 429.
 */
export async function burstUntilLimited(send: (i: number) => Promise<Response>, max: number, chunk = 25): Promise<number> {
  let sent = 0;
  while (sent < max) {
    const responses = await Promise.all(Array.from({ length: Math.min(chunk, max - sent) }, (_, i) => send(sent + i)));
    sent += responses.length;
    let limited = false;
    for (const response of responses) {
      expect(response.status).toBeLessThan(500);
      if (response.status === 429) limited = true;
      // A 101 (an accepted WebSocket) has no body to drain.
      if (response.status !== 101) await response.arrayBuffer();
    }
    if (limited) return sent;
  }
  throw new Error(`no 429 after ${max} requests`);
}

/** Asserts a 429 RATE_LIMITED problem with a Retry-After of the period. */
export async function expectRateLimited(response: Response): Promise<void> {
  expect(response.headers.get('Retry-After')).toBe(String(RATE_LIMIT_PERIOD_SECONDS));
  await expectProblem(response, 429, 'RATE_LIMITED');
}
