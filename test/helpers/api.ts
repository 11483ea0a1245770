import { exports } from 'cloudflare:workers';

/** Base URL for requests to the Worker under test; the host is never resolved. */
export const BASE = 'http://frontrow.test';

/** Sends a request to the Worker's own fetch handler, as a client on the internet would. */
export function api(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set('Content-Type', 'application/json');
  return exports.default.fetch(
    new Request(`${BASE}${path}`, { ...rest, headers, body: json === undefined ? rest.body : JSON.stringify(json) }),
  );
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
