import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { sqlState } from '../db/errors.ts';
import type { Sql } from '../db/http.ts';
import type { AppEnv } from '../types.ts';
import { AppError, dependencyUnavailable, validationFailed } from './errors.ts';
import { runScript } from './locks/scripts.ts';
import { describeError, logJson } from './logging.ts';
import { redisFailure, type Deadline } from './deadline.ts';
import { redisUntil, type RedisConfig } from './redis.ts';
import { withTimeout } from './time.ts';

/*
 * Idempotency-Key (DESIGN.md §2, §5 Idempotency), in three parts:
 *
 * 1. In flight: a short-lived Redis key per (user, key), claimed with SET NX before the handler runs.
 *    A duplicate that arrives meanwhile is answered 409 REQUEST_IN_PROGRESS (422 if its body differs)
 *    from Redis alone, without a Postgres round trip. When the request finishes, the key holds its
 *    response for a minute, so duplicates right after are replayed from Redis too; Postgres stays
 *    the record (Redis may lose the key at any time).
 * 2. Stored: the response record (status and exact body bytes) is written in the same statement or
 *    transaction as the effect, so it commits with it. A retry after a lost reply (effect committed,
 *    answer lost) finds it and gets the original response, replayed byte for byte with
 *    `Idempotent-Replayed: true`. A response that had no effect (4xx) may be stored afterwards in a
 *    separate statement; a 5xx or a "not yet" answer (see {@link isFinalAnswer}) stores nothing, so the
 *    retry runs again.
 * 3. Kept 24 h: older records are ignored, and replaced by the next request with that key.
 *
 * Routes use `idempotentInEffect`; their effects use `findStoredResponse` and the SQL helpers below
 * (charge and use in one HTTP statement, holds and payments in the ConcertRoom's statements).
 */

/** How long a stored response is replayed. @default 86400 */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
/**
 * How long the in-flight claim lasts in Redis if its request never releases it (it crashed): a retry
 * within this window gets 409. Longer than any request runs (lock wait + statement time-outs).
 * @default 30000
 */
export const IDEMPOTENCY_CLAIM_MS = 30_000;
/** Longest Idempotency-Key accepted. @default 255 */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/**
 * The least time the call that ends a claim gets, even past the request's deadline: a claim left
 * in Redis answers the client's retries 409 until it expires. @default 1000
 */
const FINISH_REDIS_BUDGET_MS = 1_000;

/**
 * What a handler needs to record its response inside its own effect: `c.get('idempotency')` on a
 * route with an Idempotency-Key (undefined without one). Plain data, so it can cross an RPC boundary
 * (e.g. into the ConcertRoom).
 */
export interface IdempotencyClaim {
  readonly userId: string;
  readonly key: string;
  /** SHA-256 of method, path and body: the same key with another request is refused with 422. */
  readonly requestHash: string;
}

/** A stored response, as the lookup returns it. */
export interface StoredResponse {
  requestHash: string;
  status: number;
  /** The exact body bytes sent the first time (null for an empty body). */
  body: string | null;
}

/** A parameterized statement, for `client.query(text, values)` or `sql.query(text, values)`. */
export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * SQL condition (on an `idempotency_keys` row) that the record is live: complete and under 24 h old.
 * Rows without a status are claims left by an older version of this module and count as gone.
 */
export const LIVE_RECORD = `status_code IS NOT NULL AND created_at > now() - make_interval(secs => ${IDEMPOTENCY_TTL_SECONDS})`;

/**
 * Looks the key up, to run inside the effect's transaction before the effect (a live record means:
 * replay it instead, see {@link replayStored}). Row: `{request_hash, status_code, body}`; parse it
 * with {@link toStoredResponse}.
 */
export function lookupStatement(claim: IdempotencyClaim): Statement {
  return {
    text: `SELECT request_hash, status_code, body FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND ${LIVE_RECORD}`,
    values: [claim.userId, claim.key],
  };
}

/**
 * CTEs (`stale_record`, `recorded`) that store the response record in the same statement as an
 * effect, with their parameter values (numbered from `firstParam`; all null without a claim, and
 * then the CTEs write nothing). The body is the exact bytes the route will send: either a string
 * of the caller's, or `bodySql`, an expression of the statement when only the statement knows the
 * answer; with `whenCte`, the record is written only if that CTE returned a row (the effect happened).
 *
 * A plain INSERT on purpose: should a live record for the key exist after all (a duplicate slipped
 * past the in-flight claim, say after Redis lost it), the unique violation rolls the whole statement
 * back, so a key never has two effects ({@link isRecordConflict} tells that error apart). An expired
 * or incomplete record is deleted first (the INSERT reads the DELETE's count, which orders them).
 */
export function recordCtes(
  claim: IdempotencyClaim | undefined,
  firstParam: number,
  options: { status: number; body: string } | { status: number; bodySql: string; whenCte: string },
): { ctes: string; values: unknown[] } {
  const [user, key, hash, status, body] = [0, 1, 2, 3, 4].map((i) => `$${firstParam + i}`);
  const ownBody = 'body' in options;
  const values: unknown[] = claim ? [claim.userId, claim.key, claim.requestHash, options.status] : [null, null, null, null];
  if (ownBody) values.push(claim ? options.body : null);
  const ctes = `stale_record AS (
      DELETE FROM idempotency_keys WHERE ${key}::text IS NOT NULL AND user_id = ${user} AND key = ${key} AND NOT (${LIVE_RECORD}) RETURNING 1
    ), recorded AS (
      INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body)
      SELECT ${user}, ${key}, ${hash}, ${status}::int, to_jsonb(${ownBody ? `${body}::text` : options.bodySql})
       WHERE ${key}::text IS NOT NULL AND (SELECT count(*) FROM stale_record) >= 0${ownBody ? '' : ` AND EXISTS (SELECT 1 FROM ${options.whenCte})`}
    )`;
  return { ctes, values };
}

/** True when a statement failed because a live record for its key exists (see {@link recordCtes}). */
export const isRecordConflict = (error: unknown): boolean =>
  sqlState(error) === '23505' && (error as { constraint?: unknown }).constraint === 'idempotency_keys_pkey';

/** Parses a row of {@link lookupStatement} (or any `request_hash, status_code, body` row). */
export function toStoredResponse(row: { request_hash: string; status_code: number | string; body: unknown }): StoredResponse {
  // Stored as a JSON string, not parsed JSON: jsonb would reorder keys, and a replay must be byte-identical.
  return { requestHash: row.request_hash, status: Number(row.status_code), body: typeof row.body === 'string' ? row.body : null };
}

export const idempotencyKeyReused = () =>
  new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'Idempotency key reused', 'This Idempotency-Key was used with a different request');

const requestInProgress = () =>
  new AppError(409, 'REQUEST_IN_PROGRESS', 'Request in progress', 'A request with this Idempotency-Key is still running', {
    headers: { 'Retry-After': '1' },
  });

/**
 * The original response again, same status and body bytes, with `Idempotent-Replayed: true`.
 * @throws AppError 422 IDEMPOTENCY_KEY_REUSED when the stored response was for another request.
 */
export function replayStored(claim: IdempotencyClaim, stored: StoredResponse): Response {
  if (stored.requestHash !== claim.requestHash) throw idempotencyKeyReused();
  const contentType = stored.status >= 400 ? 'application/problem+json' : 'application/json';
  return new Response(stored.body, {
    status: stored.status,
    headers: { ...(stored.body === null ? {} : { 'Content-Type': contentType }), 'Idempotent-Replayed': 'true' },
  });
}

/** Tells the middleware that the handler's effect recorded the response, so it stores nothing after. */
export function markRecorded(c: Context<AppEnv>): void {
  c.set('idempotencyRecorded', true);
}

/**
 * Sends the response whose record the effect wrote (`body` = the string given to
 * {@link recordCtes}), byte for byte, and marks it recorded.
 */
export function respondRecorded(c: Context<AppEnv>, status: 200 | 201, body: string): Response {
  markRecorded(c);
  return c.body(body, status, { 'Content-Type': 'application/json' });
}

const encoder = new TextEncoder();

async function hashRequest(method: string, path: string, body: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(`${method}\n${path}\n${body}`));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * Ends an in-flight claim, only if it is still this request's: with a response (ARGV[2] non-empty) the
 * key becomes that response for a short while, so duplicates arriving right after are replayed from
 * Redis; without one (a 5xx) the key is deleted, so the retry runs.
 *
 * KEYS: 1 claim key   ARGV: 1 this request's in-flight value · 2 done value or "" · 3 px
 */
const FINISH_CLAIM_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

/** How long a finished response stays in Redis for duplicates that arrive right after. @default 60000 */
export const IDEMPOTENCY_REPLAY_CACHE_MS = 60_000;

const claimKey = (claim: IdempotencyClaim) => `idempotency:${JSON.stringify([claim.userId, claim.key])}`;

/** In-flight values are `p:<hash>:<nonce>`, finished ones `d:<json StoredResponse>` (neither is valid JSON, which the client would parse). */
const IN_FLIGHT = 'p:';
const DONE = 'd:';

interface InFlight {
  /** A stored response found in Redis (a request with this key finished moments ago), or undefined when the key is now ours. */
  cached?: StoredResponse;
  /** Ends the claim: with the response sent (cached for duplicates) or, after a 5xx, without. Never throws. */
  finish(response: StoredResponse | undefined): Promise<void>;
}

/**
 * Claims the key in Redis for this request (SET NX PX ... GET, one round trip), by the request's
 * Redis deadline.
 * @throws 409 REQUEST_IN_PROGRESS when another request with the key is running; 422 when that one
 *   has another body; 503 DEPENDENCY_UNAVAILABLE when Redis cannot be reached (fail closed).
 */
async function claimInFlight(config: RedisConfig, deadline: Deadline, claim: IdempotencyClaim): Promise<InFlight> {
  const key = claimKey(claim);
  const value = `${IN_FLIGHT}${claim.requestHash}:${crypto.randomUUID()}`;
  let previous: unknown;
  try {
    const claimed = redisUntil(config, deadline).set(key, value, { nx: true, px: IDEMPOTENCY_CLAIM_MS, get: true });
    previous = await withTimeout(claimed, deadline.remainingMs(), 'idempotency claim');
  } catch (error) {
    throw dependencyUnavailable('Redis', redisFailure(deadline, error));
  }
  if (typeof previous === 'string' && previous.startsWith(DONE)) {
    return { cached: JSON.parse(previous.slice(DONE.length)) as StoredResponse, finish: () => Promise.resolve() };
  }
  // null: the key was free and is ours now. Our own value: the client re-sent a SET whose reply was lost.
  if (previous !== null && previous !== value) {
    throw typeof previous === 'string' && previous.startsWith(`${IN_FLIGHT}${claim.requestHash}:`) ? requestInProgress() : idempotencyKeyReused();
  }
  return {
    finish: async (response) => {
      const done = response ? `${DONE}${JSON.stringify(response)}` : '';
      const finishBy = deadline.orAtLeast(FINISH_REDIS_BUDGET_MS);
      try {
        await withTimeout(
          runScript(redisUntil(config, finishBy), FINISH_CLAIM_SCRIPT, [key], [value, done, String(IDEMPOTENCY_REPLAY_CACHE_MS)]),
          finishBy.remainingMs(),
          'idempotency release',
        );
      } catch (error) {
        // The claim expires on its own; until then a retry gets 409 with Retry-After.
        logJson('warn', 'idempotency claim not released', describeError(error));
      }
    },
  };
}

/**
 * The live stored response for the claim's key, over the HTTP path: what a route replays instead of
 * running its effect again (the in-flight claim in Redis keeps a second run of the key out meanwhile).
 */
export async function findStoredResponse(sql: Sql, claim: IdempotencyClaim): Promise<StoredResponse | undefined> {
  const { text, values } = lookupStatement(claim);
  const rows = (await sql.query(text, values)) as { request_hash: string; status_code: number; body: unknown }[];
  return rows[0] && toStoredResponse(rows[0]);
}

/**
 * Stores a response after the handler, in its own statement. Keeps a live record that is already
 * there (one the effect wrote), replaces a stale one.
 */
async function storeAfter(sql: Sql, claim: IdempotencyClaim, status: number, body: string | null): Promise<void> {
  await sql.query(
    `INSERT INTO idempotency_keys AS k (user_id, key, request_hash, status_code, body) VALUES ($1, $2, $3, $4, to_jsonb($5::text))
     ON CONFLICT (user_id, key) DO UPDATE
        SET request_hash = excluded.request_hash, status_code = excluded.status_code, body = excluded.body, created_at = now()
      WHERE NOT (k.status_code IS NOT NULL AND k.created_at > now() - make_interval(secs => ${IDEMPOTENCY_TTL_SECONDS}))`,
    [claim.userId, claim.key, claim.requestHash, status, body],
  );
}

/** Problem codes that say "not yet" rather than answer the request: the same request may succeed later. */
const NOT_YET_CODES = new Set(['REQUEST_IN_PROGRESS', 'PAYMENT_IN_PROGRESS', 'NOT_ADMITTED', 'RATE_LIMITED']);

/**
 * Whether an answer is final, so that replaying it for 24 h stays true. Not final: a 5xx; anything
 * that says "retry shortly" (`Retry-After`, 429, 409 REQUEST_IN_PROGRESS / PAYMENT_IN_PROGRESS);
 * 403 NOT_ADMITTED, which admission ends; and any 404, which a row written a moment later (a hold
 * whose write is still in flight) turns wrong. None of these had an effect, so the retry runs again.
 */
export function isFinalAnswer(status: number, headers: Headers, body: string | null): boolean {
  if (status >= 500 || status === 429 || status === 404 || headers.has('Retry-After')) return false;
  if (status < 400 || body === null) return true;
  try {
    const { code } = JSON.parse(body) as { code?: unknown };
    return !(typeof code === 'string' && NOT_YET_CODES.has(code));
  } catch {
    return true;
  }
}

/**
 * `Idempotency-Key` for retryable writes (DESIGN.md §2, §5): claims the key in Redis for the request,
 * hands the handler `c.get('idempotency')`, whose effect looks the key up (replaying a stored
 * response with {@link replayStored}) and records its response in its own statement or transaction
 * (with {@link recordCtes}, or SQL of the same shape). A final 4xx, which had no effect, is stored
 * afterwards; a 5xx or a transient 4xx is not ({@link isFinalAnswer}). Runs after `requireUser`: keys are per user.
 */
export const idempotentInEffect = createMiddleware<AppEnv>(async (c, next) => {
  c.set('idempotency', undefined);
  c.set('idempotencyRecorded', false);
  const key = c.req.header('Idempotency-Key');
  if (key === undefined) return next();
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw validationFailed(`Idempotency-Key must be 1–${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
  const claim: IdempotencyClaim = {
    userId: c.get('userId'),
    key,
    requestHash: await hashRequest(c.req.method, c.req.path, await c.req.raw.clone().text()),
  };
  const inFlight = await claimInFlight(c.env, c.var.deadline, claim);
  if (inFlight.cached) return replayStored(claim, inFlight.cached);
  let sent: StoredResponse | undefined;
  try {
    c.set('idempotency', claim);
    await next();

    const status = c.res.status;
    // A 5xx stores nothing: whatever happened is resolved by the retry, which finds the record if
    // the effect did commit.
    if (status >= 500) return;
    const text = status === 204 ? '' : await c.res.clone().text();
    const body = text === '' ? null : text;
    // Neither stored nor cached in Redis: the claim is deleted, so the retry with this key runs again.
    if (!isFinalAnswer(status, c.res.headers, body)) return;
    sent = { requestHash: claim.requestHash, status, body };
    // A response the effect recorded is stored already, and so is one the effect replayed.
    if (c.get('idempotencyRecorded') || c.res.headers.get('Idempotent-Replayed') === 'true') return;
    if (status < 400) logJson('warn', 'a 2xx was not recorded by its effect; storing it after the handler', { path: c.req.path });
    // A 4xx had no effect: storing it on its own is safe.
    try {
      await storeAfter(c.var.sql(), claim, status, body);
    } catch (error) {
      // The response stands; unstored, a later retry runs the request again (it had no effect).
      logJson('error', 'idempotent response not stored', { path: c.req.path, ...describeError(error) });
    }
  } finally {
    await inFlight.finish(sent);
  }
});
