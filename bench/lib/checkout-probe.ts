/**
 * Dependent calls per checkout operation (issue 19), seen by the adapters rather than assumed from
 * the code: one client sends charges, then holds, then payments, one at a time, with a pause after
 * each so that work left running after the response (releases under `ctx.waitUntil`) ends before the
 * next request. The adapters log every call's start and end (scripts/stack/wire.ts, trace mode); each
 * call is then placed against the request it belongs to:
 *
 * - before the response: calls that started and ended while the request was open. Calls that
 *   overlap in time are one round (in flight together); `rounds` is how many such groups ran one
 *   after another: the dependent calls a fan waits for, each a network round trip in production.
 * - after the response: calls that started after the answer, or ended after it, before the next
 *   request.
 *
 * A round trip must be long enough for overlap to be seen, so the probe runs with the run's
 * `--latency` or, without one, with {@link PROBE_LATENCY} switched on for the probe alone. The
 * Durable Object RPC from the Worker to the room is not seen (no adapter carries it): a room call
 * shows as the Postgres round trips it makes.
 */
import type { WireKind } from '../../scripts/stack/wire.ts';
import { wallMs } from '../../scripts/stack/wire.ts';
import { callJson, createConcert, userToken } from './frontrow.ts';
import type { BenchStack, JoinAnswer } from './frontrow.ts';
import { formatCount, printTable, rightAligned } from './table.ts';
import { latencyLabel, setLatency } from './wire.ts';
import type { Latency } from './wire.ts';

/** Latency the probe switches on when the run has none: enough to tell overlap from sequence. */
export const PROBE_LATENCY: Latency = { neon: 10, redis: 10 };

/** Operations of each kind, one at a time. @default 10 */
const DEFAULT_OPS = 10;

const PRICE = 100;

type Call = [WireKind, number, number];

/** Calls of one kind of operation, averaged over its operations. */
export interface DependentCalls {
  op: 'charge' | 'hold' | 'payment';
  ops: number;
  /** Groups of overlapping calls before the response, one after another: dependent round trips. */
  rounds: number;
  /** Per kind of call, before the response. */
  before: { pg: number; pgHttp: number; redis: number };
  /** Per kind of call, after the response (until the next request). */
  after: { pg: number; pgHttp: number; redis: number };
  /** Median request latency, ms. */
  p50Ms: number;
  /** Operations that were not answered as expected (they are left out of the figures). */
  failed: number;
  /** The most common round structure of an operation, e.g. "redis → pg-http → redis,redis → pg". */
  shape: string;
}

/** What issue 19 asks: the dependent round trips of each operation. */
export const DEPENDENT_GOALS: Record<DependentCalls['op'], { rounds: number; text: string }> = {
  hold: { rounds: 1, text: '1 round: 1 Postgres statement' },
  payment: { rounds: 2, text: '2 rounds: 1 Redis, then the room (1 Postgres statement)' },
  charge: { rounds: 2, text: '2 rounds: 1 Redis, 1 Postgres' },
};

const SHORT: Record<WireKind, string> = {
  pgWsRoundTrips: 'pg',
  pgWsConnections: 'pg-conn',
  pgHttpRequests: 'pg-http',
  pgHttpStatements: 'pg-http',
  redisRequests: 'redis',
  redisCommands: 'redis',
};

async function post(url: string, token: string, body?: unknown): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'x-fault-token': token, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function setTracing(bench: BenchStack, on: boolean): Promise<void> {
  for (const url of [bench.stack.wire.neon, bench.stack.wire.upstash]) await post(url, bench.stack.faults.token, { trace: on });
}

/** Both adapters' traces since the last take, by start time. */
async function takeTrace(bench: BenchStack): Promise<Call[]> {
  const calls: Call[] = [];
  for (const url of [bench.stack.wire.neon, bench.stack.wire.upstash]) {
    const body = (await post(`${url}/trace`, bench.stack.faults.token)) as { calls: Call[] };
    calls.push(...body.calls);
  }
  return calls.sort((a, b) => a[1] - b[1]);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Clocks of two processes may differ by a fraction of a millisecond. */
const SLACK_MS = 0.5;

/** Sorts `calls` (already by start) into groups of overlapping intervals. */
function rounds(calls: readonly Call[]): Call[][] {
  const groups: Call[][] = [];
  let end = -Infinity;
  for (const call of calls) {
    const last = groups[groups.length - 1];
    if (last && call[1] < end - SLACK_MS) {
      last.push(call); // started before the round in flight ended: in flight together
      end = Math.max(end, call[2]);
    } else {
      groups.push([call]);
      end = call[2];
    }
  }
  return groups;
}

/**
 * Places each traced call against the operation it belongs to. `windows` are the operations' [sent,
 * answered] times, in order; a call belongs to the last operation sent before it started.
 */
export function attribute(op: DependentCalls['op'], windows: readonly { start: number; end: number; ok: boolean }[], calls: readonly Call[]): DependentCalls {
  const zero = (): DependentCalls['before'] => ({ pg: 0, pgHttp: 0, redis: 0 });
  const before = zero();
  const after = zero();
  let roundCount = 0;
  const shapes = new Map<string, number>();
  let counted = 0;
  const latencies: number[] = [];
  const bump = (into: DependentCalls['before'], kind: WireKind): void => {
    if (kind === 'pgWsRoundTrips') into.pg++;
    else if (kind === 'pgHttpRequests') into.pgHttp++;
    else if (kind === 'redisRequests') into.redis++;
  };
  windows.forEach((window, i) => {
    if (!window.ok) return;
    counted++;
    latencies.push(window.end - window.start);
    const nextStart = windows[i + 1]?.start ?? Infinity;
    const mine = calls.filter(([, start]) => start >= window.start - SLACK_MS && start < nextStart - SLACK_MS);
    const inside = mine.filter(([, start, end]) => end <= window.end + SLACK_MS && start <= window.end);
    for (const [kind] of inside) bump(before, kind);
    for (const call of mine) if (!inside.includes(call)) bump(after, call[0]);
    const groups = rounds(inside);
    roundCount += groups.length;
    const shape = groups.map((group) => group.map(([kind]) => SHORT[kind]).join(',')).join(' → ') || '(no call)';
    shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
  });
  const per = (counts: DependentCalls['before']): DependentCalls['before'] =>
    counted === 0 ? counts : { pg: counts.pg / counted, pgHttp: counts.pgHttp / counted, redis: counts.redis / counted };
  latencies.sort((a, b) => a - b);
  return {
    op,
    ops: counted,
    rounds: counted === 0 ? Number.NaN : roundCount / counted,
    before: per(before),
    after: per(after),
    p50Ms: latencies.length === 0 ? Number.NaN : latencies[Math.floor((latencies.length - 1) / 2)]!,
    failed: windows.length - counted,
    shape: [...shapes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
  };
}

/**
 * Runs the probe against the Worker at `baseUrl` on a concert of its own: N users join (admitted),
 * then N charges, N holds of one seat, N payments, one at a time. `runLatency` is the run's
 * `--latency` (left on afterwards); without it {@link PROBE_LATENCY} is on during the probe only.
 */
export async function probeCheckout(
  baseUrl: string,
  bench: BenchStack,
  opts: { label: string; runLatency: Latency | undefined; ops?: number; log: (message: string) => void },
): Promise<{ results: DependentCalls[]; latency: string }> {
  const n = opts.ops ?? DEFAULT_OPS;
  const latency = opts.runLatency ?? PROBE_LATENCY;
  const concertId = await createConcert(baseUrl, bench.adminToken, {
    title: `checkout probe ${opts.label}`,
    seats: n,
    price: PRICE,
    salesOpenAt: new Date(Date.now() - 60_000),
    queue: { admitPerWindow: 100_000, windowSeconds: 3600, sessionSeconds: 3600, holdSeconds: 3600 },
  });
  const users = await Promise.all(
    Array.from({ length: n }, async (_, i) => ({ token: await userToken(bench.authSecret, `probe-${opts.label}-${concertId}-${i}`), queueToken: '', reservationId: '' })),
  );
  for (const user of users) {
    const answer = await callJson<JoinAnswer>(baseUrl, 'POST', '/queue/token', { token: user.token, body: { concertId }, expectStatus: 201 });
    user.queueToken = answer.token;
  }
  // Warm: the room loads the concert, the pools connect, the lock scripts are loaded, before tracing.
  await callJson(baseUrl, 'GET', `/concerts/${concertId}/seats`, { expectStatus: 200 });

  if (!opts.runLatency) await setLatency(bench.stack, latency);
  const results: DependentCalls[] = [];
  try {
    await setTracing(bench, true);
    const pause = 100 + 4 * Math.max(latency.neon, latency.redis);
    const run = async (op: DependentCalls['op'], send: (user: (typeof users)[number]) => Promise<boolean>): Promise<void> => {
      await takeTrace(bench); // forget what came before
      const windows: { start: number; end: number; ok: boolean }[] = [];
      for (const user of users) {
        const start = wallMs();
        const ok = await send(user);
        windows.push({ start, end: wallMs(), ok });
        await sleep(pause);
      }
      results.push(attribute(op, windows, await takeTrace(bench)));
    };
    const request = async (method: string, path: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(new URL(path, baseUrl), {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    await run('charge', async (user) => {
      const response = await request('POST', '/balance/charge', user.token, { amount: PRICE });
      await response.arrayBuffer();
      return response.status === 200;
    });
    let seat = 0;
    await run('hold', async (user) => {
      const response = await request('POST', '/reservations', user.token, { concertId, seatNumber: ++seat }, { 'queue-token': user.queueToken });
      const body = await response.json<{ reservationId?: string }>();
      user.reservationId = body.reservationId ?? '';
      return response.status === 201;
    });
    await run('payment', async (user) => {
      if (!user.reservationId) return false;
      const response = await request('POST', '/payment', user.token, { reservationId: user.reservationId });
      await response.arrayBuffer();
      return response.status === 201;
    });
  } finally {
    await setTracing(bench, false).catch(() => undefined);
    if (!opts.runLatency) await setLatency(bench.stack, { neon: 0, redis: 0 }).catch(() => undefined);
  }
  opts.log(`checkout probe ${opts.label}: ${results.map((r) => `${r.op} ${r.rounds.toFixed(2)} rounds (${r.shape})`).join('; ')}`);
  return { results, latency: latencyLabel(latency) };
}

/** The probe's table, with issue 19's round counts beside each operation. */
export function printDependentCalls(title: string, probes: readonly { label: string; latency: string; results: readonly DependentCalls[] }[]): void {
  const rows = probes.flatMap((probe) =>
    probe.results.map((r) => {
      const goal = DEPENDENT_GOALS[r.op];
      const f = (x: number): string => x.toFixed(2);
      return [
        probe.label,
        r.op,
        formatCount(r.ops) + (r.failed > 0 ? ` (${r.failed} failed)` : ''),
        probe.latency,
        r.p50Ms.toFixed(1),
        f(r.rounds),
        `${f(r.before.pg)} · ${f(r.before.pgHttp)} · ${f(r.before.redis)}`,
        `${f(r.after.pg)} · ${f(r.after.pgHttp)} · ${f(r.after.redis)}`,
        r.shape,
        `${goal.text}: ${Math.abs(r.rounds - goal.rounds) < 0.05 ? 'met' : r.rounds < goal.rounds ? 'fewer' : 'NOT MET'}`,
      ];
    }),
  );
  if (rows.length === 0) return;
  printTable(
    title,
    ['run', 'op', ...rightAligned('ops', 'latency', 'p50 ms', 'rounds/op'), ...rightAligned('before answer: pg · pg-http · redis', 'after answer: pg · pg-http · redis'), 'rounds of most ops', 'issue 19 goal'],
    rows,
  );
  console.log(
    [
      'One client, one request at a time, each followed by a pause; the adapters logged every call (scripts/stack/wire.ts trace).',
      'rounds/op: groups of calls before the answer that ran one after another (calls overlapping in time are one round) — the',
      "  dependent round trips a fan waits for. pg: Postgres round trips on the room's Neon WebSockets (each statement, BEGIN, COMMIT);",
      '  pg-http: Neon HTTP queries (the Worker); redis: Upstash REST requests. after answer: calls left running after the response',
      '  (e.g. lock releases under waitUntil). The Worker → room RPC is not seen by the adapters.',
    ].join('\n'),
  );
}
