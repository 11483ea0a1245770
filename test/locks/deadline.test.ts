import { describe, expect, it, inject } from 'vitest';
import { Deadline } from '../../src/lib/deadline.ts';
import { NoWaitLock, WaitLock } from '../../src/lib/locks/index.ts';
import { redisUntil } from '../../src/lib/redis.ts';
import { redisCommand } from '../helpers/redis.ts';
import { lockName, waiting } from './helpers.ts';

const config = { UPSTASH_REDIS_REST_URL: inject('upstashUrl'), UPSTASH_REDIS_REST_TOKEN: inject('upstashToken') };
const redis = (deadline: Deadline) => redisUntil(config, deadline);

/** Makes a deadline pass now, as the request's does while it still holds a lock. */
function expire(deadline: Deadline): void {
  (deadline as { at: number }).at = Date.now() - 1;
}

describe('locks bound to a request deadline', () => {
  it('fail closed at once once the deadline has passed, and leave nothing in Redis', async () => {
    const deadline = new Deadline(Date.now() - 1);
    const waitKey = lockName('passed-wait');
    const noWaitKey = lockName('passed-no-wait');
    await expect(new WaitLock({ redis, deadline }).acquire(waitKey)).rejects.toMatchObject({ status: 503, code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(new NoWaitLock({ redis, deadline }).tryAcquire(noWaitKey)).rejects.toMatchObject({ status: 503, code: 'DEPENDENCY_UNAVAILABLE' });
    // Redis is up: a lock with its own per-call budget would have been granted. Nothing was sent.
    for (const name of [waitKey, noWaitKey]) {
      expect(await redisCommand('EXISTS', `lock:{${name}}`, `lock:{${name}}:meta`, `lock:{${name}}:queue`)).toBe(0);
    }
  });

  it('still releases after the deadline has passed, so the next caller need not wait out the lease', async () => {
    const key = lockName('release-late');
    const deadline = Deadline.after(60_000);
    const grant = await new WaitLock({ redis, deadline }).acquire(key);
    expire(deadline);
    expect(await grant.release()).toBe(true);
    expect(await new NoWaitLock({ redis, deadline: Deadline.after(60_000) }).tryAcquire(key)).not.toBeNull();
  });

  it('keeps a waiter’s place until its deadline, not for a fixed 2 s after each poll', async () => {
    const key = lockName('place-until-deadline');
    const lock = new WaitLock({ redis, deadline: Deadline.after(60_000) });
    const holder = await lock.acquire(key);
    const owner = crypto.randomUUID();
    expect(waiting(await lock.poll(key, owner)).position).toBe(1);
    const [seconds] = (await redisCommand('TIME')) as [string, string];
    const placeUntil = Number(await redisCommand('ZSCORE', `lock:{${key}}:deadlines`, owner));
    expect(placeUntil - Number(seconds) * 1000).toBeGreaterThan(30_000);
    expect(await lock.release(key, owner)).toBe(false);
    expect(await holder.release()).toBe(true);
  });
});
