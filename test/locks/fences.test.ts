import { describe, expect, it } from 'vitest';
import { NoWaitLock, WaitLock } from '../../src/lib/locks/index.ts';
import type { LockGrant } from '../../src/lib/locks/index.ts';
import { directQuery } from '../helpers/postgres.ts';
import { redisCommand } from '../helpers/redis.ts';
import { lockName, redis, sleep } from './helpers.ts';

const keysOf = (name: string) => {
  const lock = `lock:{${name}}`;
  return { lock, queue: `${lock}:queue`, deadlines: `${lock}:deadlines`, meta: `${lock}:meta` };
};

/** PTTL of every existing key among `keys`: -1 would be a key that never expires. */
async function ttls(keys: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const key of keys) {
    const ttl = Number(await redisCommand('PTTL', key));
    if (ttl !== -2) out[key] = ttl; // -2: no such key
  }
  return out;
}

describe('lock fences when Redis loses data', () => {
  it('re-fences the current holder above a fence the store has seen, for it and every later grant', async () => {
    const name = lockName('refence');
    const lock = new WaitLock({ redis });
    const grant = await lock.acquire(name);
    const raised = await grant.refence(grant.fence + 100);
    expect(raised).not.toBeNull();
    expect(raised!.fence).toBe(grant.fence + 101);
    expect(raised!.owner).toBe(grant.owner);
    // Asking again (a re-sent call) gives the same fence.
    expect((await grant.refence(grant.fence + 100))!.fence).toBe(raised!.fence);
    expect(await grant.release()).toBe(true);
    const next = await lock.acquire(name);
    expect(next.fence).toBe(raised!.fence + 1);
    expect(await next.release()).toBe(true);
  });

  it('refuses to re-fence a grant that no longer holds the lock: a stale writer stays refused', async () => {
    const name = lockName('stale');
    const stalled = await new WaitLock({ redis, leaseMs: 200 }).acquire(name);
    await sleep(300);
    const successor = await new WaitLock({ redis }).acquire(name);
    expect(await stalled.refence(successor.fence)).toBeNull();
    expect(await successor.release()).toBe(true);
    // Released: nobody holds it, and the released holder cannot re-fence either.
    expect(await successor.refence(successor.fence)).toBeNull();
  });

  it('keeps a guarded write exact across FLUSHALL: the first write after it is re-fenced, a stale one is refused', async () => {
    const name = lockName('flush');
    const userId = `fence-test-${crypto.randomUUID()}`;
    await directQuery('INSERT INTO balances (user_id, amount, fence) VALUES ($1, 0, 0)', [userId]);
    const write = async (fence: number) =>
      (await directQuery('UPDATE balances SET amount = amount + 1, fence = $2 WHERE user_id = $1 AND fence < $2 RETURNING 1', [userId, fence]))
        .length === 1;
    const lock = new WaitLock({ redis, leaseMs: 200 });
    // Some history, so Postgres's fence is well above 1.
    for (let i = 0; i < 5; i++) {
      const grant = await lock.acquire(name);
      expect(await write(grant.fence)).toBe(true);
      await grant.release();
    }
    const stalled = await lock.acquire(name); // granted before the flush, never writes in time
    await redisCommand('FLUSHALL');
    await sleep(250);
    const fresh = await new WaitLock({ redis }).acquire(name);
    expect(fresh.fence).toBe(1); // the counter restarted
    expect(await write(fresh.fence)).toBe(false);
    const [{ fence: stored }] = (await directQuery<{ fence: string }>('SELECT fence FROM balances WHERE user_id = $1', [userId])) as [
      { fence: string },
    ];
    const refenced = (await fresh.refence(Number(stored))) as LockGrant;
    expect(refenced.fence).toBeGreaterThan(Number(stored));
    expect(await write(refenced.fence)).toBe(true);
    // The holder from before the flush lost its lease: Postgres refuses it, Redis will not re-fence it.
    expect(await write(stalled.fence)).toBe(false);
    expect(await stalled.refence(Number(stored))).toBeNull();
    expect(await fresh.release()).toBe(true);
    expect(await directQuery('SELECT amount::int FROM balances WHERE user_id = $1', [userId])).toEqual([{ amount: 6 }]);
  });
});

describe('lock keys expire', () => {
  it('gives every key the wait lock creates a TTL, holder and waiters alike', async () => {
    const name = lockName('ttl-wait');
    const keys = keysOf(name);
    const lock = new WaitLock({ redis, timeoutMs: 10_000 });
    const holder = await lock.acquire(name);
    const waiter = crypto.randomUUID();
    expect((await lock.poll(name, waiter)).granted).toBe(false);
    const live = await ttls(Object.values(keys));
    expect(Object.keys(live).sort()).toEqual(Object.values(keys).sort());
    for (const ttl of Object.values(live)) expect(ttl).toBeGreaterThan(0);
    expect(live[keys.meta]).toBeLessThanOrEqual(24 * 60 * 60 * 1000);
    await holder.release();
    await lock.release(name, waiter);
    const after = await ttls(Object.values(keys));
    for (const ttl of Object.values(after)) expect(ttl).toBeGreaterThan(0);
  });

  it('gives the no-wait lock’s keys a TTL, and lets meta go after metaTtlMs', async () => {
    const name = lockName('ttl-try');
    const keys = keysOf(name);
    const grant = await new NoWaitLock({ redis, metaTtlMs: 400, leaseMs: 300 }).tryAcquire(name);
    const live = await ttls([keys.lock, keys.meta]);
    expect(Object.keys(live).sort()).toEqual([keys.lock, keys.meta].sort());
    for (const ttl of Object.values(live)) expect(ttl).toBeGreaterThan(0);
    await grant!.release();
    await sleep(500);
    expect(await ttls(Object.values(keys))).toEqual({});
  });
});
