import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../types.ts';
import { AppError, validationFailed } from './errors.ts';

/** How long a stored response is replayed. @default 86400 */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
/** A first request still unfinished after this long is taken to have died; a retry may take over. @default 60 */
export const IDEMPOTENCY_STALE_SECONDS = 60;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

const encoder = new TextEncoder();

async function requestHash(method: string, path: string, body: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(`${method}\n${path}\n${body}`));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * `Idempotency-Key` for retryable writes (DESIGN.md §2). The first request claims the key in
 * Postgres; its response (2xx or 4xx) is stored and replayed byte for byte for 24 h. A duplicate
 * arriving while the first runs gets 409 REQUEST_IN_PROGRESS; the same key with another body 422.
 * A 5xx is not stored (the key is released) so that the client's retry can succeed.
 * Runs after `requireUser`: keys are scoped per user.
 */
export const idempotent = createMiddleware<AppEnv>(async (c, next) => {
  const key = c.req.header('Idempotency-Key');
  if (key === undefined) return next();
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw validationFailed(`Idempotency-Key must be 1–${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
  const userId = c.get('userId');
  const sql = c.var.sql();
  const hash = await requestHash(c.req.method, c.req.path, await c.req.raw.clone().text());

  const claimed = await sql.query(
    `INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
     ON CONFLICT (user_id, key) DO UPDATE
        SET request_hash = excluded.request_hash, status_code = NULL, body = NULL, created_at = now()
      WHERE (idempotency_keys.status_code IS NOT NULL AND idempotency_keys.created_at < now() - make_interval(secs => $4))
         OR (idempotency_keys.status_code IS NULL AND idempotency_keys.created_at < now() - make_interval(secs => $5))
     RETURNING 1`,
    [userId, key, hash, IDEMPOTENCY_TTL_SECONDS, IDEMPOTENCY_STALE_SECONDS],
    { fullResults: true },
  );
  if (claimed.rowCount === 0) {
    const existing = (await sql.query(`SELECT request_hash, status_code, body FROM idempotency_keys WHERE user_id = $1 AND key = $2`, [
      userId,
      key,
    ])) as { request_hash: string; status_code: number | null; body: unknown }[];
    const row = existing[0];
    if (row && row.request_hash !== hash) {
      throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'Idempotency key reused', 'This Idempotency-Key was used with a different request');
    }
    if (!row || row.status_code === null) {
      throw new AppError(409, 'REQUEST_IN_PROGRESS', 'Request in progress', 'A request with this Idempotency-Key is still running', {
        headers: { 'Retry-After': '1' },
      });
    }
    const replay = typeof row.body === 'string' ? row.body : null;
    const contentType = row.status_code >= 400 ? 'application/problem+json' : 'application/json';
    return new Response(replay, {
      status: row.status_code,
      headers: { ...(replay === null ? {} : { 'Content-Type': contentType }), 'Idempotent-Replayed': 'true' },
    });
  }

  await next();

  if (c.res.status >= 500) {
    await sql.query(`DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND status_code IS NULL`, [userId, key]);
    return;
  }
  const text = c.res.status === 204 ? '' : await c.res.clone().text();
  // Stored as a JSON string, not parsed: jsonb would reorder keys, and a replay must be byte-identical.
  await sql.query(`UPDATE idempotency_keys SET status_code = $3, body = to_jsonb($4::text) WHERE user_id = $1 AND key = $2`, [
    userId,
    key,
    c.res.status,
    text === '' ? null : text,
  ]);
});
