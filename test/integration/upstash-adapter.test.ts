import { Redis } from '@upstash/redis/cloudflare';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';

// The real @upstash/redis client (base64 responses, its default) against our REST adapter.
const redis = new Redis({ url: inject('upstashUrl'), token: inject('upstashToken'), enableTelemetry: false });
const key = (name: string) => `adapter-test:${crypto.randomUUID()}:${name}`;

describe('Upstash REST adapter', () => {
  it('round-trips strings, including non-ASCII and JSON-looking ones', async () => {
    const k = key('s');
    expect(await redis.set(k, 'héllo wörld ✓')).toBe('OK');
    expect(await redis.get(k)).toBe('héllo wörld ✓');
    const raw = new Redis({ url: inject('upstashUrl'), token: inject('upstashToken'), automaticDeserialization: false, enableTelemetry: false });
    await raw.set(k, '{"a":1}');
    expect(await raw.get(k)).toBe('{"a":1}');
  });

  it('returns integers as numbers and nil as null', async () => {
    const k = key('n');
    expect(await redis.incr(k)).toBe(1);
    expect(await redis.incrby(k, 41)).toBe(42);
    expect(await redis.get(key('missing'))).toBeNull();
  });

  it('returns arrays, including nested nils', async () => {
    const k = key('l');
    await redis.rpush(k, 'a', 'b', 'c');
    expect(await redis.lrange(k, 0, -1)).toEqual(['a', 'b', 'c']);
    expect(await redis.mget(k + ':x', k + ':y')).toEqual([null, null]);
  });

  it('surfaces Redis errors with their message', async () => {
    const k = key('e');
    await redis.set(k, 'not a number');
    await expect(redis.incr(k)).rejects.toThrow(/not an integer/);
  });

  it('runs pipelines and transactions', async () => {
    const k = key('p');
    const pipeline = redis.pipeline();
    pipeline.set(k, 'v');
    pipeline.get(k);
    pipeline.incr(k + ':c');
    expect(await pipeline.exec()).toEqual(['OK', 'v', 1]);
    const tx = redis.multi();
    tx.incr(k + ':c');
    tx.get(k);
    expect(await tx.exec()).toEqual([2, 'v']);
  });

  it('passes EVAL and EVALSHA through, with table results', async () => {
    const k = key('lua');
    const script = "redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), 7, false}";
    expect(await redis.eval(script, [k], ['x'])).toEqual(['x', 7, null]);
    const sha = await redis.scriptLoad('return ARGV[1] .. KEYS[1]');
    expect(await redis.evalsha(sha, ['k'], ['v'])).toBe('vk');
  });

  it('rejects a request without the bearer token with 401', async () => {
    const response = await fetch(inject('upstashUrl'), { method: 'POST', body: JSON.stringify(['PING']) });
    expect(response.status).toBe(401);
    await response.body?.cancel();
  });
});
