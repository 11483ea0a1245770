import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/lib/errors.ts';
import { NoWaitLock, WaitLock } from '../../src/lib/locks/index.ts';
import type { LockGrant } from '../../src/lib/locks/index.ts';
import { directQuery } from '../helpers/postgres.ts';
import { redisCommand } from '../helpers/redis.ts';
import { granted, lockName, redis, sleep, waiting } from './helpers.ts';

describe('WaitLock', () => {
  it('grants 50 waiters in exactly the order they entered the line, one at a time', async () => {
    const key = lockName('fifo');
    // Handing over 50 times takes a while on a busy machine; what is checked here is order, not speed.
    const lock = new WaitLock({ redis, timeoutMs: 50_000 });
    // Hold the lock while the line forms, so all 50 really wait and only the line decides the order.
    const gate = await lock.acquire(key);
    const order: number[] = [];
    let holders = 0;
    let maxHolders = 0;
    const turns: Promise<void>[] = [];

    for (let i = 0; i < 50; i++) {
      let entered!: () => void;
      const inLine = new Promise<void>((resolve) => (entered = resolve));
      const turn = lock.acquire(key, { onQueued: () => entered() }).then(async (grant) => {
        maxHolders = Math.max(maxHolders, ++holders);
        order.push(i);
        await sleep(1);
        holders--;
        expect(await grant.release()).toBe(true);
      });
      turns.push(turn);
      // The next waiter starts only once this one's first poll has reached Redis.
      await Promise.race([inLine, turn]);
    }

    expect(await gate.release()).toBe(true);
    await Promise.all(turns);
    expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(maxHolders).toBe(1);
  });

  it('skips a waiter that stopped polling once its deadline passes', async () => {
    const key = lockName('dead-waiter');
    const lock = new WaitLock({ redis, waiterTtlMs: 1_000 });
    const holder = await lock.acquire(key);
    // Enters the line with one poll and never polls again, like a Worker that died while waiting.
    const dead = crypto.randomUUID();
    expect(waiting(await lock.poll(key, dead)).position).toBe(1);

    let place: number | undefined;
    let entered!: () => void;
    const inLine = new Promise<void>((resolve) => (entered = resolve));
    const next = lock.acquire(key, {
      onQueued: (p) => {
        place = p.position;
        entered();
      },
    });
    await Promise.race([inLine, next]);
    expect(await holder.release()).toBe(true);

    // Without the purge this would end in LOCK_TIMEOUT: the dead waiter would stay first in line.
    const grant = await next;
    expect(place).toBe(2);
    expect(grant.fence).toBeGreaterThan(holder.fence);
    expect(await lock.release(key, dead)).toBe(false);
    expect(await grant.release()).toBe(true);
  });

  it('gives the lock to the next waiter when the holder stalls past its lease, and the fence refuses the late write', async () => {
    const key = lockName('lease');
    // Only the first holder gets a short lease; the successor keeps the default one throughout.
    const shortLease = new WaitLock({ redis, leaseMs: 300 });
    const lock = new WaitLock({ redis });
    const userId = `lock-test-${crypto.randomUUID()}`;
    await directQuery('INSERT INTO balances (user_id, amount, fence) VALUES ($1, 0, 0)', [userId]);
    // The guarded write, exactly as DESIGN.md §5 has it: only a fence above the row's last one lands.
    const fencedWrite = async (grant: LockGrant) =>
      (
        await directQuery('UPDATE balances SET amount = amount + 1, fence = $2 WHERE user_id = $1 AND fence < $2 RETURNING user_id', [
          userId,
          grant.fence,
        ])
      ).length === 1;

    const stalled = await shortLease.acquire(key);
    // Never released: the successor's wait ends only because the stalled holder's lease ran out.
    const successor = await lock.acquire(key);
    expect(successor.fence).toBeGreaterThan(stalled.fence);

    expect(await fencedWrite(successor)).toBe(true);
    expect(await fencedWrite(stalled)).toBe(false); // the stalled holder wakes up and tries to write
    expect(await directQuery('SELECT amount::int, fence::int FROM balances WHERE user_id = $1', [userId])).toEqual([
      { amount: 1, fence: successor.fence },
    ]);

    // Its release is refused and does not free the successor's lock.
    expect(await stalled.release()).toBe(false);
    expect(await new NoWaitLock({ redis }).tryAcquire(key)).toBeNull();
    expect(await successor.release()).toBe(true);
  });

  it('issues strictly increasing fences across grants, shared with the no-wait lock on the same name', async () => {
    const key = lockName('fences');
    const wait = new WaitLock({ redis });
    const noWait = new NoWaitLock({ redis });
    const fences: number[] = [];
    for (let i = 0; i < 10; i++) {
      const grant = i % 3 === 2 ? await noWait.tryAcquire(key) : await wait.acquire(key);
      if (!grant) throw new Error('the lock should have been free');
      fences.push(grant.fence);
      expect(await grant.release()).toBe(true);
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
  });

  it('returns the same grant and fence when the same owner asks again after a lost reply', async () => {
    const key = lockName('re-ask');
    const lock = new WaitLock({ redis });
    const owner = crypto.randomUUID();

    // The same script run twice with one owner, as @upstash/redis does when a reply is lost.
    const first = granted(await lock.poll(key, owner));
    const again = granted(await lock.poll(key, owner));
    expect(again.fence).toBe(first.fence);
    const grant = await lock.acquire(key, { owner });
    expect(grant.fence).toBe(first.fence);

    // A waiter asking again keeps its ticket and place.
    const waiter = crypto.randomUUID();
    const queued = waiting(await lock.poll(key, waiter));
    expect(waiting(await lock.poll(key, waiter))).toEqual({ granted: false, ticket: queued.ticket, position: 1 });

    expect(await grant.release()).toBe(true);
    const next = granted(await lock.poll(key, waiter));
    expect(next.fence).toBeGreaterThan(first.fence);
    expect(granted(await lock.poll(key, waiter)).fence).toBe(next.fence);
    expect(await lock.release(key, waiter)).toBe(true);
  });

  it('answers 503 LOCK_TIMEOUT with Retry-After when the turn does not come, and leaves the line', async () => {
    const key = lockName('timeout');
    const holderLock = new WaitLock({ redis });
    const impatient = new WaitLock({ redis, timeoutMs: 200 });
    const holder = await holderLock.acquire(key);

    const error = await impatient.acquire(key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ status: 503, code: 'LOCK_TIMEOUT', headers: { 'Retry-After': '1' } });

    // Had the timed-out waiter kept its place, the next caller would queue behind it instead of
    // being granted at its first poll.
    expect(await holder.release()).toBe(true);
    let place: number | undefined;
    const next = await holderLock.acquire(key, { onQueued: (p) => (place = p.position) });
    expect(place).toBe(0);
    expect(await next.release()).toBe(true);
  });

  it('rejects with the abort reason and leaves the line when the signal aborts', async () => {
    const key = lockName('abort');
    const lock = new WaitLock({ redis });
    const holder = await lock.acquire(key);
    const controller = new AbortController();
    const reason = new Error('client went away');

    let entered!: () => void;
    const inLine = new Promise<void>((resolve) => (entered = resolve));
    const waiter = lock.acquire(key, { signal: controller.signal, onQueued: () => entered() });
    await inLine;
    controller.abort(reason);
    await expect(waiter).rejects.toBe(reason);

    expect(await holder.release()).toBe(true);
    let place: number | undefined;
    const next = await lock.acquire(key, { onQueued: (p) => (place = p.position) });
    expect(place).toBe(0);
    expect(await next.release()).toBe(true);
  });

  it('takes a companion lock with each poll: a second owner of the same companion is refused at once, release frees both', async () => {
    const key = lockName('companion');
    const lock = new WaitLock({ redis });
    const holder = await lock.acquire(key);
    // The first attempt waits its turn for `key`, holding the companion from its first poll on.
    let entered!: () => void;
    const inLine = new Promise<void>((resolve) => (entered = resolve));
    const first = lock.acquireWith(key, 'payment:r1', { onQueued: () => entered() });
    await inLine;
    // A second attempt at the same work is refused without joining the line; other work waits as usual.
    expect(await lock.acquireWith(key, 'payment:r1')).toBeNull();
    expect(await redisCommand('ZCARD', `lock:{${key}}:queue`)).toBe(1);
    const other = lock.acquireWith(key, 'payment:r2');

    expect(await holder.release()).toBe(true);
    const grant = await first;
    expect(grant).not.toBeNull();
    expect(grant!.fence).toBe(holder.fence + 1);
    expect(await redisCommand('GET', `lock:{${key}}:with:payment:r1`)).toBe(grant!.owner);
    expect(await grant!.release()).toBe(true);
    expect(await redisCommand('EXISTS', `lock:{${key}}:with:payment:r1`)).toBe(0);
    const next = await other;
    expect(next!.fence).toBe(grant!.fence + 1);
    expect(await next!.release()).toBe(true);
    expect(await redisCommand('EXISTS', `lock:{${key}}`, `lock:{${key}}:with:payment:r2`)).toBe(0);
  });

  it('refuses lock names that would break the hash tag', async () => {
    const lock = new WaitLock({ redis });
    await expect(lock.acquire('a{b}')).rejects.toThrow(TypeError);
    await expect(lock.acquire('')).rejects.toThrow(TypeError);
    await expect(lock.poll('a}', crypto.randomUUID())).rejects.toThrow(TypeError);
    await expect(lock.acquireWith('a', 'b{c}')).rejects.toThrow(TypeError);
  });
});
