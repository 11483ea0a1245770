/**
 * A closed-loop HTTP load generator: N clients, each sending its next request as soon as the last
 * answer is read, over keep-alive connections (an undici `Pool` with one connection per client).
 * Every loop is bounded: it stops by itself at the step's deadline, after its request budget, when
 * the step runs out of work, or when the benchmark is interrupted.
 *
 * The client runs in the benchmark's own (single) Node thread on the same 2-core machine as the
 * server, so each result carries the generator's CPU use: near 100 % of a core means the figure is
 * bounded by the client, not the server.
 */
import { Pool } from 'undici';
import { countInto, describeError, sortedRecord, startStepMeter } from './closed-loop.ts';
import type { CpuSources } from './closed-loop.ts';
import { summarize } from './stats.ts';
import type { Summary } from './stats.ts';

/** One request, relative to the step's base URL. */
export interface RequestSpec {
  /** @default 'GET' */
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  /** A JSON body; sets `content-type: application/json`. */
  json?: unknown;
}

/** An answered request, for {@link LoadStep.onResponse} and {@link LoadStep.label}. */
export interface LoadResponse {
  status: number;
  body: string;
  latencyMs: number;
  /** Response headers, names in lower case. */
  headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON (parsed once, on first call), or undefined when it is not JSON. */
  json<T>(): T | undefined;
}

function makeResponse(status: number, body: string, latencyMs: number, headers: LoadResponse['headers']): LoadResponse {
  let parsed: { value: unknown } | undefined;
  return {
    status,
    body,
    latencyMs,
    headers,
    json<T>(): T | undefined {
      if (!parsed) {
        try {
          parsed = { value: JSON.parse(body) };
        } catch {
          parsed = { value: undefined };
        }
      }
      return parsed.value as T | undefined;
    },
  };
}

/** The outcome recorded for a request that got no answer (connection error, time-out). */
export const NO_ANSWER = 'no answer';

export interface LoadStep extends CpuSources {
  /** Shown in tables and logs. */
  name: string;
  baseUrl: string;
  /** Concurrent clients, each with a connection of its own. */
  concurrency: number;
  /** No request starts after this many ms from the start of the step. */
  durationMs: number;
  /** At most this many requests in all. @default unlimited */
  maxRequests?: number;
  /**
   * A request whose headers, or then whose body, take longer than this fails and counts as an error.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * The next request of client `client` (0-based), or undefined when that client has no more work.
   * May be async (e.g. to sign a token); the time it takes is not part of the request's latency.
   */
  next: (client: number) => RequestSpec | undefined | Promise<RequestSpec | undefined>;
  /** Called with every answer, for steps that keep what came back (tokens, ids). */
  onResponse?: (response: LoadResponse, request: RequestSpec, client: number) => void;
  /** Called for every request that got no answer (connection error, time-out). */
  onError?: (error: unknown, request: RequestSpec, client: number) => void;
  /** Whether an answer is what this step should get; others are sampled for the report. @default 2xx */
  expect?: (response: LoadResponse) => boolean;
  /** The bucket an answer is counted in. @default its status code, e.g. "201" */
  label?: (response: LoadResponse, request: RequestSpec) => string;
  /** Aborting stops issuing requests (in-flight ones finish or time out). */
  signal?: AbortSignal;
}

export interface LoadResult {
  name: string;
  concurrency: number;
  /** Requests answered (any status), and of those the ones {@link LoadStep.expect} accepts. */
  requests: number;
  expected: number;
  /** Requests that got no answer: connection errors and timeouts. */
  errors: number;
  /** From the first request to the last answer. */
  elapsedS: number;
  /** Answered requests per second over `elapsedS`. */
  rps: number;
  /** Latency of answered requests, ms. */
  latencyMs: Summary;
  /** Answers by {@link LoadStep.label}, errors by message; sorted by count. */
  statuses: Record<string, number>;
  errorMessages: Record<string, number>;
  /** The first few unexpected answers, for the report. */
  samples: { status: number; body: string }[];
  /** CPU time of this Node process during the step, as % of one core. */
  clientCpuPct: number;
  /** CPU time of the server during the step, as % of one core, and per answered request (ms). NaN if not sampled. */
  serverCpuPct: number;
  serverCpuMsPerRequest: number;
  /** The same for {@link LoadStep.stackCpuMs}. */
  stackCpuPct: number;
  stackCpuMsPerRequest: number;
  stoppedBy: 'duration' | 'requests' | 'exhausted' | 'interrupted';
}

/** Runs one closed-loop step and summarizes it. */
export async function runLoad(step: LoadStep): Promise<LoadResult> {
  const timeoutMs = step.timeoutMs ?? 10_000;
  const maxRequests = step.maxRequests ?? Number.POSITIVE_INFINITY;
  const pool = new Pool(step.baseUrl, {
    connections: step.concurrency,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 30_000,
  });
  const latencies: number[] = [];
  const statuses = new Map<string, number>();
  const errorMessages = new Map<string, number>();
  const samples: { status: number; body: string }[] = [];
  let issued = 0;
  let expected = 0;
  const isExpected = step.expect ?? ((response: LoadResponse): boolean => response.status >= 200 && response.status < 300);
  let errors = 0;
  let exhausted = 0;
  let lastAnswerAt = 0;

  const meter = startStepMeter(step);
  const deadline = meter.startedAt + step.durationMs;

  const stopReason = (): LoadResult['stoppedBy'] | undefined => {
    if (step.signal?.aborted) return 'interrupted';
    if (issued >= maxRequests) return 'requests';
    if (performance.now() >= deadline) return 'duration';
    return undefined;
  };

  const client = async (index: number): Promise<void> => {
    while (stopReason() === undefined) {
      const request = await step.next(index);
      if (request === undefined) {
        exhausted++;
        return;
      }
      if (stopReason() !== undefined) return;
      issued++;
      const headers: Record<string, string> = { ...request.headers };
      let body: string | undefined;
      if (request.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(request.json);
      }
      const t0 = performance.now();
      try {
        const answer = await pool.request({
          path: request.path,
          method: request.method ?? 'GET',
          headers,
          body,
        });
        const text = await answer.body.text();
        const latencyMs = performance.now() - t0;
        lastAnswerAt = performance.now();
        latencies.push(latencyMs);
        const response = makeResponse(answer.statusCode, text, latencyMs, answer.headers);
        if (isExpected(response)) expected++;
        else if (samples.length < 5) samples.push({ status: answer.statusCode, body: text.slice(0, 300) });
        countInto(statuses, step.label ? step.label(response, request) : String(answer.statusCode));
        step.onResponse?.(response, request, index);
      } catch (error) {
        lastAnswerAt = performance.now();
        errors++;
        countInto(errorMessages, describeError(error));
        step.onError?.(error, request, index);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: step.concurrency }, (_, index) => client(index)));
  } finally {
    await pool.close().catch(() => pool.destroy());
  }
  const cpu = meter.cpu();
  const elapsedS = meter.elapsedS(lastAnswerAt);
  const requests = latencies.length;
  return {
    name: step.name,
    concurrency: step.concurrency,
    requests,
    expected,
    errors,
    elapsedS,
    rps: requests / elapsedS,
    latencyMs: summarize(latencies),
    statuses: sortedRecord(statuses),
    errorMessages: sortedRecord(errorMessages),
    samples,
    clientCpuPct: cpu.clientPct,
    serverCpuPct: cpu.serverPct,
    serverCpuMsPerRequest: cpu.serverMs / requests,
    stackCpuPct: cpu.stackPct,
    stackCpuMsPerRequest: cpu.stackMs / requests,
    stoppedBy: step.signal?.aborted
      ? 'interrupted'
      : exhausted === step.concurrency
        ? 'exhausted'
        : issued >= maxRequests
          ? 'requests'
          : 'duration',
  };
}
