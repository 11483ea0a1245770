import { describe, expect, it, inject } from 'vitest';
import { Deadline } from '../../src/lib/deadline.ts';
import { WaitLock } from '../../src/lib/locks/index.ts';
import { redisUntil } from '../../src/lib/redis.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { lockName, sleep } from './helpers.ts';

const config = { UPSTASH_REDIS_REST_URL: inject('upstashUrl'), UPSTASH_REDIS_REST_TOKEN: inject('upstashToken') };

/**
 * How late the Upstash adapter runs every poll that reaches it while slowed: longer than a waiter's
 * place lasted between two polls when it was a fixed TTL (2 s), so each waiter's next poll lands
 * after that place would have lapsed.
 */
const LATE_MS = 2_500;

/** How long the adapter stays slow: every waiter sends a poll in it (they poll at least every 250 ms). */
const SLOW_FOR_MS = 500;

describe('WaitLock with Redis answering late', () => {
  it('keeps 100 waiters in the order they entered the line when their polls are run late', async () => {
    const key = lockName('late-fifo');
    // Each waiter stands for a request with a deadline far enough ahead that only the order is tested:
    // every poll's budget and every waiter's place come from it.
    const deadline = Deadline.after(120_000);
    const lock = new WaitLock({ redis: (d) => redisUntil(config, d), deadline });
    // Hold the lock while the line forms and while Redis is slow, so only the line decides the order.
    const gate = await lock.acquire(key);
    const order: number[] = [];
    const turns: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      let entered!: () => void;
      const inLine = new Promise<void>((resolve) => (entered = resolve));
      const turn = lock.acquire(key, { onQueued: () => entered() }).then(async (grant) => {
        order.push(i);
        expect(await grant.release()).toBe(true);
      });
      turns.push(turn);
      // The next waiter starts only once this one's first poll has reached Redis.
      await Promise.race([inLine, turn]);
    }

    await setFault('upstash', 'delay', LATE_MS);
    try {
      await sleep(SLOW_FOR_MS);
    } finally {
      await clearFault('upstash');
    }
    // Let every delayed poll run (LATE_MS after it arrived) before the line moves.
    await sleep(LATE_MS + 500);

    expect(await gate.release()).toBe(true);
    await Promise.all(turns);
    expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
