import { describe, expect, it } from 'vitest';
import { NoWaitLock } from '../../src/lib/locks/index.ts';
import { lockName, redis } from './helpers.ts';

describe('NoWaitLock', () => {
  it('grants exactly one of 100 concurrent tryAcquire calls on one key', async () => {
    const key = lockName('no-wait');
    const lock = new NoWaitLock({ redis });
    const results = await Promise.all(Array.from({ length: 100 }, () => lock.tryAcquire(key)));
    const grants = results.filter((grant) => grant !== null);
    expect(grants).toHaveLength(1);
    const [winner] = grants;

    // Someone else cannot release it; its owner can, and then the next caller gets it.
    expect(await lock.release(key, crypto.randomUUID())).toBe(false);
    expect(await lock.tryAcquire(key)).toBeNull();
    expect(await winner!.release()).toBe(true);
    expect(await winner!.release()).toBe(false);
    const next = await lock.tryAcquire(key);
    expect(next).not.toBeNull();
    expect(next!.fence).toBeGreaterThan(winner!.fence);
    expect(await next!.release()).toBe(true);
  });

  it('returns the same grant and fence when the same owner asks again after a lost reply', async () => {
    const key = lockName('no-wait-re-ask');
    const lock = new NoWaitLock({ redis });
    const owner = crypto.randomUUID();
    const first = await lock.tryAcquire(key, { owner });
    const again = await lock.tryAcquire(key, { owner });
    expect(first).not.toBeNull();
    expect(again).toMatchObject({ key, owner, fence: first!.fence });
    expect(await lock.tryAcquire(key)).toBeNull();
    expect(await again!.release()).toBe(true);
  });

  it('frees the lock when its lease runs out', async () => {
    const key = lockName('no-wait-lease');
    const lock = new NoWaitLock({ redis, leaseMs: 100 });
    const first = await lock.tryAcquire(key);
    expect(first).not.toBeNull();
    let next = await lock.tryAcquire(key);
    while (next === null) next = await lock.tryAcquire(key);
    expect(next.fence).toBeGreaterThan(first!.fence);
    expect(await first!.release()).toBe(false);
    expect(await next.release()).toBe(true);
  });
});
