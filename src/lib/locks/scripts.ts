import type { Redis } from '@upstash/redis/cloudflare';

/**
 * The Lua run by the locks. Each script is one atomic step on the keys of one lock, all of which share
 * the `{name}` hash tag (see lockKeys in internal.ts), so a Redis Cluster would keep them in one slot.
 * Time comes from the server (`TIME`), never from a client clock.
 *
 * Every script is safe to run twice with the same owner token: @upstash/redis re-sends a command whose
 * reply was lost to a network error, and a re-sent step must return what the first one decided.
 */

/** Current server time in milliseconds, shared by the scripts that need it. */
const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** The fence of the current holder, read back when an owner that already holds the lock asks again. */
const HELD_REPLY = `
local function held_reply(lock, meta, owner)
  local fence = tonumber(redis.call('HGET', meta, 'held'))
  if redis.call('HGET', meta, 'holder') ~= owner or not fence then
    return redis.error_reply('ERR lock ' .. lock .. ' is held by its owner but has no fence')
  end
  return {1, fence, redis.call('PTTL', lock), 1}
end
`;

/**
 * Takes the lock for `owner` and issues the next fence, atomically with the grant. The meta hash
 * (fence and ticket counters) expires after `meta_ttl` of disuse, never before the lease: losing it
 * restarts the counters, which {@link REFENCE_SCRIPT} recovers from, like any other loss of Redis data.
 */
const GRANT = `
local function grant(lock, meta, owner, lease, meta_ttl)
  redis.call('SET', lock, owner, 'PX', lease)
  local fence = redis.call('HINCRBY', meta, 'fence', 1)
  redis.call('HSET', meta, 'holder', owner, 'held', fence)
  redis.call('PEXPIRE', meta, math.max(lease, meta_ttl))
  return {1, fence, lease, 0}
end
`;

/**
 * One poll of the wait lock: purge abandoned waiters, enqueue (or keep) the caller, refresh its
 * deadline, and grant it the lock if it is first in line and the lock is free.
 *
 * KEYS: 1 lock (string: owner, PX lease) · 2 queue (zset owner→ticket) · 3 deadlines (zset owner→ms)
 *       · 4 meta (hash: fence counter, ticket counter, holder and its fence)
 * ARGV: 1 owner · 2 lease ms · 3 waiter ttl ms · 4 max waiters purged per poll · 5 meta ttl ms
 *
 * Every key expires: the lock with its lease, the line with its last waiter's deadline, meta after
 * `meta ttl` without grants or tickets.
 * Reply: {1, fence, lease ms left, re-asked 0|1} granted · {0, ticket, position} waiting
 */
const POLL_STEP = `
local lock, queue, deadlines, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner, lease, ttl, purge, meta_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local holder = redis.call('GET', lock)
-- A re-sent poll whose first run granted the lock: same grant, same fence.
if holder == owner then return held_reply(lock, meta, owner) end

-- Waiters that stopped polling lose their place, including this caller if it stalled past its own
-- deadline: it re-enters at the back below, so the outcome does not depend on who polled first.
local dead = redis.call('ZRANGEBYSCORE', deadlines, '-inf', string.format('(%d', now), 'LIMIT', 0, purge)
if #dead > 0 then
  redis.call('ZREM', queue, unpack(dead))
  redis.call('ZREM', deadlines, unpack(dead))
end

-- Tickets come from a server-side counter; a queued owner keeps the ticket it has.
local ticket = tonumber(redis.call('ZSCORE', queue, owner))
if not ticket then
  ticket = redis.call('HINCRBY', meta, 'ticket', 1)
  redis.call('PEXPIRE', meta, math.max(lease, meta_ttl))
  redis.call('ZADD', queue, ticket, owner)
end
redis.call('ZADD', deadlines, now + ttl, owner)

if not holder and redis.call('ZRANGE', queue, 0, 0)[1] == owner then
  -- The holder leaves the line: the lease, not a waiter deadline, bounds it from now on.
  redis.call('ZREM', queue, owner)
  redis.call('ZREM', deadlines, owner)
  return grant(lock, meta, owner, lease, meta_ttl)
end

-- Once every waiter is past its deadline the line is dead, so let both sets vanish then.
local last = redis.call('ZRANGE', deadlines, -1, -1, 'WITHSCORES')[2]
if last then
  redis.call('PEXPIREAT', queue, last)
  redis.call('PEXPIREAT', deadlines, last)
end
return {0, ticket, redis.call('ZRANK', queue, owner) + 1}
`;

export const POLL_SCRIPT = `${NOW_MS}${HELD_REPLY}${GRANT}${POLL_STEP}`;

/**
 * {@link POLL_SCRIPT} that also holds a companion lock for the same owner, in the same atomic step:
 * a no-wait lock (\`SET NX PX\`, no fence of its own) kept under the wait lock's hash tag, taken by
 * the first poll and kept by the later ones. If another owner holds it, the poll stops before it
 * changes anything. E.g. a user's balance lock with the payment of one of their reservations: one
 * Redis call per poll takes both, and a second attempt at the same payment is refused at once.
 *
 * KEYS: 1–4 as POLL_SCRIPT · 5 companion lock   ARGV: 1–5 as POLL_SCRIPT · 6 companion lease ms
 * Reply: as POLL_SCRIPT · {2} another owner holds the companion (nothing changed)
 */
export const PAIRED_POLL_SCRIPT = `${NOW_MS}${HELD_REPLY}${GRANT}
local companion_holder = redis.call('GET', KEYS[5])
if companion_holder and companion_holder ~= ARGV[1] then return {2} end
if not companion_holder then redis.call('SET', KEYS[5], ARGV[1], 'PX', tonumber(ARGV[6])) end
${POLL_STEP}`;

/**
 * The no-wait lock: \`SET lock owner NX PX lease\`, plus a fence issued with the grant and the same
 * grant returned to an owner that asks again.
 *
 * KEYS: 1 lock · 2 meta   ARGV: 1 owner · 2 lease ms · 3 meta ttl ms
 * Reply: {1, fence, lease ms left, re-asked 0|1} granted · {0} held by someone else
 */
export const TRY_SCRIPT = `${HELD_REPLY}${GRANT}
local lock, meta = KEYS[1], KEYS[2]
local owner, lease, meta_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local holder = redis.call('GET', lock)
if holder == owner then return held_reply(lock, meta, owner) end
if holder then return {0} end
return grant(lock, meta, owner, lease, meta_ttl)
`;

/**
 * Re-fences the current holder above a fence the guarded store has already seen. Used when a write
 * is refused as FENCED although Redis says the writer still holds the lock: that only happens when
 * Redis lost its counter (a flush, a failover to a replica that missed writes, meta expiring), so new
 * grants restarted below what the store recorded and would be refused forever. The counter is carried
 * up to the store's fence and the holder gets the next one. Only the current holder can do this, so
 * a writer whose lease ran out (a genuinely stale grant) stays refused.
 *
 * KEYS: 1 lock · 2 meta   ARGV: 1 owner · 2 fence the store has seen · 3 meta ttl ms
 * Reply: {1, fence, lease ms left, re-asked 0|1} the new grant · {0} the caller does not hold the lock
 */
export const REFENCE_SCRIPT = `
local lock, meta = KEYS[1], KEYS[2]
local owner, seen, meta_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('GET', lock) ~= owner then return {0} end
local left = redis.call('PTTL', lock)
-- A re-sent call whose first run already re-fenced this holder: same answer.
local held = tonumber(redis.call('HGET', meta, 'held'))
if held and held > seen and redis.call('HGET', meta, 'holder') == owner then return {1, held, left, 1} end
local current = tonumber(redis.call('HGET', meta, 'fence')) or 0
local fence = math.max(current, seen) + 1
redis.call('HSET', meta, 'fence', fence, 'holder', owner, 'held', fence)
redis.call('PEXPIRE', meta, math.max(left, meta_ttl))
return {1, fence, left, 0}
`;

/**
 * Release and leave: compare-and-delete the lock (only its owner may), and take the owner out of the
 * line whether or not it held the lock, so one call cleans up after a holder and a waiter alike. With
 * a companion (see PAIRED_POLL_SCRIPT), compare-and-delete that too.
 *
 * KEYS: 1 lock · 2 queue · 3 deadlines · 4 companion (optional)   ARGV: 1 owner
 * Reply: 1 released · 0 the caller did not hold the lock
 */
export const RELEASE_SCRIPT = `
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if KEYS[4] and redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
return released
`;

/** SHA-1 digests, cached as plain strings once computed. */
const digests = new Map<string, string>();

async function sha1(source: string): Promise<string> {
  const hash = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(source));
  return [...new Uint8Array(hash)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * Runs `source` with EVALSHA, falling back to EVAL when the server does not know the script yet.
 *
 * Not `redis.createScript()`: its Script starts hashing in its constructor and keeps that promise,
 * so a lock built once per isolate would have requests awaiting a promise born in another request's
 * context, which workerd warns about. Only the finished digest (a string) is shared here.
 */
export async function runScript(redis: Redis, source: string, keys: string[], args: string[]): Promise<unknown> {
  let sha = digests.get(source);
  if (sha === undefined) {
    sha = await sha1(source);
    digests.set(source, sha);
  }
  try {
    return await redis.evalsha(sha, keys, args);
  } catch (error) {
    if (error instanceof Error && error.message.toUpperCase().includes('NOSCRIPT')) return await redis.eval(source, keys, args);
    throw error;
  }
}
