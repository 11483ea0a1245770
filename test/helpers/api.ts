import { exports } from 'cloudflare:workers';

/** Base URL for requests to the Worker under test; the host is never resolved. */
export const BASE = 'http://frontrow.test';

/**
 * A client address of the documentation range (2001:db8::/32) in a /64 of its own per call (32 random
 * bits): the per-address limits key IPv6 clients by /64.
 */
export function clientAddress(): string {
  const hex = () => Math.floor(Math.random() * 0x10000).toString(16);
  return `2001:db8:${hex()}:${hex()}::${hex()}`;
}

/**
 * Sends a request to the Worker's own fetch handler, as a client on the internet would: through
 * Cloudflare's edge, so with a `CF-Connecting-IP`. Unless the caller sets one, each request comes
 * from an address of its own: a request without one counts against the shared "no-address" bucket,
 * and suites sharing it would starve each other. `address: null` sends none (see apiWithoutAddress).
 */
export function api(path: string, init: RequestInit & { json?: unknown; address?: string | null } = {}): Promise<Response> {
  const { json, address, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set('Content-Type', 'application/json');
  if (address === null) headers.delete('CF-Connecting-IP');
  else if (address !== undefined) headers.set('CF-Connecting-IP', address);
  else if (!headers.has('CF-Connecting-IP')) headers.set('CF-Connecting-IP', clientAddress());
  return exports.default.fetch(
    new Request(`${BASE}${path}`, { ...rest, headers, body: json === undefined ? rest.body : JSON.stringify(json) }),
  );
}

/** Sends a request with no `CF-Connecting-IP` (not through Cloudflare's edge): the "no-address" bucket. */
export function apiWithoutAddress(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  return api(path, { ...init, address: null });
}

/** A user token for `userId` from the dev-token endpoint (DEV_AUTH is on in tests). */
export async function userToken(userId: string): Promise<string> {
  const response = await api('/auth/dev-token', { method: 'POST', json: { userId } });
  if (response.status !== 201) throw new Error(`dev-token failed: ${response.status} ${await response.text()}`);
  const body = await response.json<{ token: string }>();
  return body.token;
}

/** A unique id per call so tests never share rows or rooms. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}
