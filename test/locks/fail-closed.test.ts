import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/lib/errors.ts';
import { NoWaitLock, WaitLock } from '../../src/lib/locks/index.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import type { FaultMode } from '../helpers/faults.ts';
import { lockName, redis } from './helpers.ts';

/**
 * The fail-closed bound: with Redis unreachable a caller hears 503 within about a second. The
 * time is only measured to check that upper bound.
 */
const FAIL_CLOSED_BOUND_MS = 1_500;

async function expectUnavailableWithinBound(attempt: () => Promise<unknown>): Promise<void> {
  const startedAt = Date.now();
  const error = await attempt().then(
    (value) => ({ unexpected: value }),
    (e: unknown) => e,
  );
  const elapsed = Date.now() - startedAt;
  expect(error).toBeInstanceOf(AppError);
  expect(error).toMatchObject({ status: 503, code: 'DEPENDENCY_UNAVAILABLE', headers: { 'Retry-After': '1' } });
  expect(elapsed).toBeLessThan(FAIL_CLOSED_BOUND_MS);
}

describe.each<FaultMode>(['refuse', 'drop'])('locks with the Upstash adapter set to %s', (mode) => {
  it('fail closed with 503 DEPENDENCY_UNAVAILABLE within the bound, and grant nothing', async () => {
    const waitKey = lockName(`fail-${mode}-wait`);
    const noWaitKey = lockName(`fail-${mode}-no-wait`);
    const wait = new WaitLock({ redis });
    const noWait = new NoWaitLock({ redis });
    const held = await noWait.tryAcquire(lockName(`fail-${mode}-held`));
    expect(held).not.toBeNull();

    await setFault('upstash', mode);
    try {
      await expectUnavailableWithinBound(() => wait.acquire(waitKey));
      await expectUnavailableWithinBound(() => noWait.tryAcquire(noWaitKey));
      await expectUnavailableWithinBound(() => held!.release());
    } finally {
      await clearFault('upstash');
    }

    // Nothing was granted while Redis was away: both names are free, with the first fences issued.
    const waitGrant = await wait.acquire(waitKey);
    const noWaitGrant = await noWait.tryAcquire(noWaitKey);
    expect(waitGrant.fence).toBe(1);
    expect(noWaitGrant?.fence).toBe(1);
    expect(await waitGrant.release()).toBe(true);
    expect(await noWaitGrant!.release()).toBe(true);
    expect(await held!.release()).toBe(true);
  });
});

describe('locks with the Upstash adapter answering slowly', () => {
  it('fail closed with 503 DEPENDENCY_UNAVAILABLE once redisBudgetMs is spent', async () => {
    // A budget below the shared client's own 800 ms command timeout, so the lock's bound is what acts.
    const wait = new WaitLock({ redis, redisBudgetMs: 300 });
    const noWait = new NoWaitLock({ redis, redisBudgetMs: 300 });
    await setFault('upstash', 'delay', 1_000);
    try {
      await expectUnavailableWithinBound(() => wait.acquire(lockName('slow-wait')));
      await expectUnavailableWithinBound(() => noWait.tryAcquire(lockName('slow-no-wait')));
    } finally {
      await clearFault('upstash');
    }
  });
});
