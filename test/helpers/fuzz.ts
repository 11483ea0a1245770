import { expect } from 'vitest';
import { BASE, clientAddress } from './api.ts';
import { findLeak } from './leaks.ts';
import { exports } from 'cloudflare:workers';

/*
 * The fuzz suites' common checks: every answer is below 500, leaks nothing (SQL, SQLSTATE, stack,
 * host), and every 4xx is a problem document. Per-endpoint oracles and state checks live in the
 * suites; the case counts collected here are printed at the end of each suite.
 */

/** One request a fuzz case sends. `body` is sent as is (a string) or as JSON (anything else). */
export interface FuzzRequest {
  method: string;
  path: string;
  headers?: Record<string, string | undefined>;
  body?: unknown;
  rawBody?: string;
}

/** What came back, with the strings the client sent (a response may quote them). */
export interface FuzzResult {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown> | undefined;
}

const counts = new Map<string, number>();

/** Pauses before re-sending a request answered 503 (see send). */
const DEPENDENCY_RETRY_PAUSES_MS = [250, 500, 1_000, 2_000] as const;
let dependencyRetries = 0;

/** Cases run so far, per endpoint. */
export function fuzzCounts(): ReadonlyMap<string, number> {
  return counts;
}

/** Sends one fuzz request to the Worker and applies the checks every answer must pass. */
export async function send(endpoint: string, request: FuzzRequest): Promise<FuzzResult> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers ?? {})) if (value !== undefined) headers.set(name, value);
  // From an address of its own, as api() sends: the shared "no-address" bucket would run out.
  if (!headers.has('CF-Connecting-IP')) headers.set('CF-Connecting-IP', clientAddress());
  let body: string | undefined;
  if (request.rawBody !== undefined) body = request.rawBody;
  else if (request.body !== undefined) body = JSON.stringify(request.body);
  if (body !== undefined && !headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
  let response: Response;
  let text: string;
  for (let attempt = 0; ; attempt++) {
    response = await exports.default.fetch(new Request(`${BASE}${request.path}`, { method: request.method, headers, body }));
    text = await response.text();
    // A 503 is the service failing closed on a dependency slower than its budget, before any effect
    // (a CPU-starved CI machine does that to a healthy Redis). Clients retry it, and so does the
    // fuzzer; one that persists through the retries still fails the case below.
    if (response.status !== 503 || attempt === DEPENDENCY_RETRY_PAUSES_MS.length) break;
    dependencyRetries++;
    await new Promise((resolve) => setTimeout(resolve, DEPENDENCY_RETRY_PAUSES_MS[attempt]));
  }
  counts.set(endpoint, (counts.get(endpoint) ?? 0) + 1);
  const label = `${endpoint} ${request.method} ${request.path.slice(0, 200)} ${String(body).slice(0, 200)} → ${response.status} ${text.slice(0, 300)}`;
  expect(response.status, label).toBeLessThan(500);
  const quoted = [request.path, ...Object.values(request.headers ?? {}).filter((value): value is string => typeof value === 'string')];
  if (body !== undefined) quoted.push(body);
  expect(findLeak(text, quoted), label).toBeUndefined();
  let json: Record<string, unknown> | undefined;
  if (response.status >= 400) {
    expect(response.headers.get('Content-Type'), label).toMatch(/^application\/problem\+json/);
    json = JSON.parse(text) as Record<string, unknown>;
    expect(json.status, label).toBe(response.status);
    expect(typeof json.code, label).toBe('string');
  } else if (text && response.headers.get('Content-Type')?.startsWith('application/json')) {
    json = JSON.parse(text) as Record<string, unknown>;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Asserts a result's status (and, for a problem, its code) is one of `allowed`. */
export function expectOneOf(result: FuzzResult, allowed: Record<number, readonly string[] | '*'>, label: string): void {
  const codes = allowed[result.status];
  const code = typeof result.json?.code === 'string' ? result.json.code : undefined;
  const ok = codes === '*' || (codes !== undefined && (result.status < 400 || (code !== undefined && codes.includes(code))));
  expect(ok, `${label}: ${result.status} ${result.text.slice(0, 300)}`).toBe(true);
}

/** Prints the case counts of `endpoints` and asserts each reached `minimum`. */
export function reportCounts(suite: string, endpoints: readonly string[], minimum: number): void {
  const lines = endpoints.map((endpoint) => `${endpoint}: ${counts.get(endpoint) ?? 0}`);
  console.log(`${suite} fuzz cases — ${lines.join(', ')}; re-sent after 503: ${dependencyRetries}`);
  for (const endpoint of endpoints) expect(counts.get(endpoint) ?? 0, endpoint).toBeGreaterThanOrEqual(minimum);
}

/**
 * fast-check options for a fuzz property. No shrinking: a run is a batch of requests against a live
 * server whose state moved on, so re-running smaller batches neither reproduces the failure nor ends
 * in time (a slow CI machine spent the whole test timeout shrinking and reported only the timeout).
 * The first failing batch is reported as it happened.
 */
export const fuzzRuns = (numRuns: number) => ({ numRuns, endOnFailure: true });
