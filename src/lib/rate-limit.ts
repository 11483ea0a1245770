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
 *   the credentials are even verified, so a flood of junk tokens is cut off cheaply. An IPv6 client
 *   is keyed by its /64 (one subscriber's allocation: a host picks any of its 2^64 addresses at will);
 *   an IPv4-mapped IPv6 address by its IPv4. A request without the header (anything not through
 *   Cloudflare's edge) counts against one shared "no-address" bucket: no header must not mean no limit;
 * - per user (the verified token's `sub`), checked right after authentication.
 * Both run before validation and before any work reaches the room or Postgres, so a 429 changes
 * nothing.
 *
 * `RATE_LIMITS = "off"` (a var) turns every check off; the benchmarks do that (bench/lib/bench-config.ts),
 * since 50–200 clients from 127.0.0.1 are one address. A binding the runtime did not provide (the
 * benchmarks' bare-workerd host configures none) also means no limit.
 */

/**
 * What a request counts against. Public reads (seat map, concert details, lists, by-date, opening)
 * share `read`; `account` is a user's own balance and ledger reads; `pay`, `cancel` and `refund` are
 * the writes on a reservation after its hold; `challenge` is a proof-of-work challenge (issue 20).
 */
export type RateLimitAction = 'join' | 'challenge' | 'status' | 'hold' | 'ws' | 'read' | 'account' | 'pay' | 'cancel' | 'refund';

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

/** The address key of requests that carry no `CF-Connecting-IP`: they share one bucket. */
export const NO_ADDRESS_KEY = 'no-address';

/**
 * The eight 16-bit groups of an IPv6 address in text form (RFC 4291 §2.2: `::` once, a dotted IPv4
 * tail, any case, an RFC 4007 zone suffix), or undefined when `text` is not one.
 */
function ipv6Groups(text: string): number[] | undefined {
  const address = text.split('%', 1)[0]!;
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parse = (half: string): number[] | undefined => {
    if (half === '') return [];
    const groups: number[] = [];
    const parts = half.split(':');
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes('.')) {
        const octets = part.split('.');
        if (octets.length !== 4 || !octets.every((octet) => /^\d{1,3}$/.test(octet) && Number(octet) <= 255)) return undefined;
        const [a, b, c, d] = octets.map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-f]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  return missing >= 1 ? [...head, ...Array<number>(missing).fill(0), ...tail] : undefined;
}

/**
 * The per-address limit key of a `CF-Connecting-IP` value: an IPv4 address as is; an IPv6 address
 * as its /64 prefix in canonical form (`2001:db8:0:1::/64`), whatever spelling or interface id the
 * client used; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as its IPv4; no value as
 * {@link NO_ADDRESS_KEY}. Anything else (Cloudflare sends only addresses) is used as sent, cut to 64
 * characters.
 */
export function addressKey(header: string | null | undefined): string {
  const text = header?.trim().toLowerCase().slice(0, MAX_ADDRESS_LENGTH);
  if (!text) return NO_ADDRESS_KEY;
  if (!text.includes(':')) return text;
  const groups = ipv6Groups(text);
  if (!groups) return text;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return `${g6 >> 8}.${g6 & 0xff}.${g7 >> 8}.${g7 & 0xff}`;
  return `${[g0, g1, g2, g3].map((group) => group.toString(16)).join(':')}::/64`;
}

/** Throws 429 RATE_LIMITED when this client address (see {@link addressKey}) is over its limit for `action`. */
export async function checkAddressLimit(c: Context<AppEnv>, action: RateLimitAction): Promise<void> {
  if (!rateLimitsEnabled(c.env)) return;
  if (!(await allowed(c.env.RATE_LIMIT_ADDRESS, `${action}:${addressKey(c.req.header('CF-Connecting-IP'))}`))) throw rateLimited('address');
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
 * Middleware: the per-user limit for `action`, for the user `userOf` names (null: the admin token,
 * which has no per-user limit). Put it right after the middleware that authenticates that user.
 */
export const limitByUser = (action: RateLimitAction, userOf: (c: Context<AppEnv>) => string | null) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const userId = userOf(c);
    if (userId !== null) await checkUserLimit(c, action, userId);
    await next();
  });
