import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../types.ts';
import { AppError } from './errors.ts';
import { logJson } from './logging.ts';

/*
 * Rate limits (DESIGN.md §2: 429 RATE_LIMITED with Retry-After), on the Workers rate-limiting
 * binding (`[[ratelimits]]` in wrangler.toml). The binding counts in the Cloudflare location that
 * serves the request, in memory, without a network round trip: cheap enough for the hottest path
 * (status polls), which an Upstash-backed limiter (one REST command per request) is not. Its price:
 * counts are per location and approximate, and `limit`/`period` live in the binding's config (period
 * 10 or 60 s), not in code. Locally `wrangler dev` and the Vitest integration emulate it.
 *
 * Two scopes, each with its own key per action, so a burst of joins does not use up status polls:
 * - per client address (`CF-Connecting-IP`, which Cloudflare sets and overwrites), checked before
 *   the credentials are even verified, so a flood of junk tokens is cut off cheaply;
 * - per user (the verified token's `sub`), checked right after authentication.
 * Both run before validation and before any work reaches the room or Postgres, so a 429 changes
 * nothing.
 *
 * `RATE_LIMITS = "off"` (a var) turns every check off; the benchmarks do that (bench/lib/bench-config.ts),
 * since 50–200 clients from 127.0.0.1 are one address. A binding the runtime did not provide (the
 * benchmarks' bare-workerd host configures none) also means no limit.
 */

/** What a request counts against. Public reads (seat map, concert details, lists, by-date) share `read`. */
export type RateLimitAction = 'join' | 'status' | 'hold' | 'ws' | 'read';

/**
 * Seconds a limited client is told to wait: the binding's period (the `simple.period` of both
 * bindings in wrangler.toml). A window has certainly turned over by then. @default 10
 */
export const RATE_LIMIT_PERIOD_SECONDS = 10;

/** Longest client address used in a key; IPv6 text is at most 45 characters. @default 64 */
const MAX_ADDRESS_LENGTH = 64;

export const rateLimited = (scope: 'address' | 'user') =>
  new AppError(
    429,
    'RATE_LIMITED',
    'Too many requests',
    `Too many requests from this ${scope === 'user' ? 'user' : 'address'}; retry after ${RATE_LIMIT_PERIOD_SECONDS} s`,
    { headers: { 'Retry-After': String(RATE_LIMIT_PERIOD_SECONDS) } },
  );

/** True unless the `RATE_LIMITS` var says "off". */
export function rateLimitsEnabled(env: { RATE_LIMITS?: string }): boolean {
  return env.RATE_LIMITS !== 'off';
}

/**
 * Counts one request for `key` on `binding`. True means "go ahead". Fails open: a limiter that is
 * missing or throws must not take bookings down with it (it is a shield, not a guard of invariants).
 */
async function allowed(binding: RateLimit | undefined, key: string): Promise<boolean> {
  if (!binding) return true;
  try {
    return (await binding.limit({ key })).success;
  } catch (error) {
    logJson('warn', 'rate limiter failed; request let through', { error: String(error) });
    return true;
  }
}

/** The client's address as Cloudflare reports it, or undefined (requests from inside the runtime). */
export function clientAddress(c: Context<AppEnv>): string | undefined {
  return c.req.header('CF-Connecting-IP')?.trim().slice(0, MAX_ADDRESS_LENGTH) || undefined;
}

/** Throws 429 RATE_LIMITED when this client address is over its limit for `action`. */
export async function checkAddressLimit(c: Context<AppEnv>, action: RateLimitAction): Promise<void> {
  if (!rateLimitsEnabled(c.env)) return;
  const address = clientAddress(c);
  if (address === undefined) return;
  if (!(await allowed(c.env.RATE_LIMIT_ADDRESS, `${action}:${address}`))) throw rateLimited('address');
}

/** Throws 429 RATE_LIMITED when `userId` is over its limit for `action`. */
export async function checkUserLimit(c: Context<AppEnv>, action: RateLimitAction, userId: string): Promise<void> {
  if (!rateLimitsEnabled(c.env)) return;
  if (!(await allowed(c.env.RATE_LIMIT_USER, `${action}:${userId}`))) throw rateLimited('user');
}

/** Middleware: the per-address limit for `action`. Put it first, before authentication. */
export const limitByAddress = (action: RateLimitAction) =>
  createMiddleware<AppEnv>(async (c, next) => {
    await checkAddressLimit(c, action);
    await next();
  });

/**
 * Middleware: the per-user limit for `action`, for the user `userOf` names. Put it right after the
 * middleware that authenticates that user.
 */
export const limitByUser = (action: RateLimitAction, userOf: (c: Context<AppEnv>) => string) =>
  createMiddleware<AppEnv>(async (c, next) => {
    await checkUserLimit(c, action, userOf(c));
    await next();
  });
