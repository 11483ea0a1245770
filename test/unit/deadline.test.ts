import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { Deadline, deadlineForRequestStartingNow, REDIS_DEADLINE_MAX_MS, REDIS_DEADLINE_MS, REDIS_DEADLINE_PER_REQUEST_MS, requestDeadline } from '../../src/lib/deadline.ts';
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

  it('leaves a request far inside its idempotency claim, however busy the isolate', () => {
    expect(deadlineForRequestStartingNow(1_000_000)).toBe(REDIS_DEADLINE_MAX_MS);
    expect(REDIS_DEADLINE_MAX_MS * 2).toBeLessThan(IDEMPOTENCY_CLAIM_MS);
  });

  it('gives a request starting behind others in flight more time, fixed at its start', async () => {
    expect(deadlineForRequestStartingNow(0)).toBe(REDIS_DEADLINE_MS);
    expect(deadlineForRequestStartingNow(100)).toBe(REDIS_DEADLINE_MS + 100 * REDIS_DEADLINE_PER_REQUEST_MS);
    // Three requests held open: a fourth starts behind them and gets three requests' more time.
    const app = new Hono<AppEnv>();
    app.use(requestDeadline);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    app.get('/hold', async (c) => {
      await gate;
      return c.json(c.var.deadline.at);
    });
    app.get('/deadline', (c) => c.json(c.var.deadline.at));
    const deadlineOfNewRequest = async () => {
      const before = Date.now();
      const at = await (await app.request('/deadline')).json<number>();
      return { before, at, after: Date.now() };
    };
    const held = [app.request('/hold'), app.request('/hold'), app.request('/hold')].map((answer) => Promise.resolve(answer));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const busy = await deadlineOfNewRequest();
    expect(busy.at).toBeGreaterThanOrEqual(busy.before + REDIS_DEADLINE_MS + 3 * REDIS_DEADLINE_PER_REQUEST_MS);
    expect(busy.at).toBeLessThanOrEqual(busy.after + REDIS_DEADLINE_MS + 3 * REDIS_DEADLINE_PER_REQUEST_MS);
    release();
    await Promise.all(held);
    // Once they are done, a new request is back to the idle deadline.
    const idle = await deadlineOfNewRequest();
    expect(idle.at).toBeLessThanOrEqual(idle.after + REDIS_DEADLINE_MS);
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
