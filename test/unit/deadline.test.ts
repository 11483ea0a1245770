import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { Deadline, REDIS_DEADLINE_MS, requestDeadline } from '../../src/lib/deadline.ts';
import { IDEMPOTENCY_CLAIM_MS } from '../../src/lib/idempotency.ts';
import { testSwitches } from '../../src/lib/test-switches.ts';
import type { AppEnv } from '../../src/types.ts';

function appReportingDeadline() {
  const app = new Hono<AppEnv>();
  app.use(requestDeadline);
  app.get('/deadline', (c) => c.json(c.var.deadline.at));
  return app;
}

afterEach(() => {
  testSwitches.redisDeadlineMs = undefined;
});

describe('the request’s Redis deadline (src/lib/deadline.ts)', () => {
  it('is REDIS_DEADLINE_MS after the request starts, one per request', async () => {
    const app = appReportingDeadline();
    const before = Date.now();
    const at = await (await app.request('/deadline')).json<number>();
    const after = Date.now();
    expect(at).toBeGreaterThanOrEqual(before + REDIS_DEADLINE_MS);
    expect(at).toBeLessThanOrEqual(after + REDIS_DEADLINE_MS);
  });

  it('leaves a request far inside its idempotency claim', () => {
    expect(REDIS_DEADLINE_MS * 4).toBeLessThan(IDEMPOTENCY_CLAIM_MS);
  });

  it('follows the test switch', async () => {
    testSwitches.redisDeadlineMs = 60_000;
    const before = Date.now();
    const at = await (await appReportingDeadline().request('/deadline')).json<number>();
    expect(at).toBeGreaterThanOrEqual(before + 60_000);
  });

  it('gives a clean-up call at least its own time once the deadline has passed', () => {
    const passed = new Deadline(Date.now() - 10);
    expect(passed.remainingMs()).toBe(0);
    expect(passed.signal().aborted).toBe(true);
    const cleanup = passed.orAtLeast(1_000);
    expect(cleanup.at).toBeGreaterThanOrEqual(Date.now() + 1_000 - 1);
    const later = Deadline.after(5_000);
    expect(later.orAtLeast(1_000).at).toBe(later.at);
  });
});
