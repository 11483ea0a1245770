/**
 * Production distances and call counts in the benchmarks (issue 19), through the local adapters'
 * `/__wire` endpoints (scripts/stack/wire.ts):
 *
 * - `--latency neon=MS,redis=MS` adds MS to every round trip: each Postgres query on a Neon
 *   WebSocket (the room's pool), each Neon HTTP query (the Worker's `neon()`), each Upstash REST
 *   request. Upstash and Neon are 5–40 ms from most Cloudflare colos, so the number of dependent
 *   calls, not their local CPU, sets what a fan waits.
 * - Calls per operation, counted by the adapters themselves (not assumed from the code): read before
 *   and after a measured step and divided by its answered requests. Counts cannot tell calls made
 *   one after another from calls in flight together; the latency runs can (p50 against the latency
 *   each round trip adds).
 */
import type { WireKind } from '../../scripts/stack/wire.ts';
import { flagValue } from './cli.ts';
import type { StackInfo } from './frontrow.ts';

/** Milliseconds added to each round trip, per adapter. */
export interface Latency {
  neon: number;
  redis: number;
}

/** `--latency neon=20,redis=10` (either may be left out: 0), or undefined when the flag is absent. */
export function latencyFlag(argv: readonly string[] = process.argv.slice(2)): Latency | undefined {
  const raw = flagValue('latency', argv);
  if (raw === undefined) return undefined;
  const latency: Latency = { neon: 0, redis: 0 };
  for (const part of raw.split(',')) {
    const match = /^(neon|redis)=(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!match) throw new Error(`--latency takes neon=MS,redis=MS (e.g. neon=20,redis=10), got "${raw}"`);
    latency[match[1] as keyof Latency] = Number(match[2]);
  }
  return latency;
}

/** "neon=20,redis=10", the form the flag takes and the goals name. */
export function latencyLabel(latency: Latency | undefined): string {
  return latency ? `neon=${latency.neon},redis=${latency.redis}` : 'none';
}

/** One line for the run settings. */
export function describeLatency(latency: Latency | undefined): string {
  if (!latency) return 'none (--latency not given): every call is a local round trip, well under a millisecond of wire time';
  return (
    `--latency ${latencyLabel(latency)}: the adapters add ${latency.neon} ms to every Postgres round trip (each query on the room's ` +
    `Neon WebSockets, each Neon HTTP query) and ${latency.redis} ms to every Upstash REST request, as if Neon and Upstash were that far away`
  );
}

async function post(url: string, token: string, body: unknown): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'x-fault-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`);
}

/** Switches the distance on (or off, with zeros) in both adapters. */
export async function setLatency(stack: StackInfo, latency: Latency): Promise<void> {
  if (!stack.wire?.neon || !stack.wire.upstash) throw new Error('--latency needs the local adapters (the stack has no /__wire endpoint for one of them)');
  await post(stack.wire.neon, stack.faults.token, { latencyMs: latency.neon });
  await post(stack.wire.upstash, stack.faults.token, { latencyMs: latency.redis });
}

export type WireCounts = Partial<Record<WireKind, number>>;

/** Both adapters' counters now, merged; undefined when the stack has no counters (not our adapters). */
export async function readWire(stack: StackInfo): Promise<WireCounts | undefined> {
  // A stack started by another checkout's scripts (or with real Neon/Upstash) has no counters.
  const urls = [stack.wire?.neon ?? '', stack.wire?.upstash ?? ''];
  if (urls.some((url) => url === '')) return undefined;
  const counts: WireCounts = {};
  for (const url of urls) {
    const response = await fetch(url);
    if (!response.ok) return undefined;
    const body = await response.json<{ counts: Record<string, number> }>();
    for (const [kind, n] of Object.entries(body.counts)) counts[kind as WireKind] = (counts[kind as WireKind] ?? 0) + n;
  }
  return counts;
}

/** Calls the adapters saw per operation during one step. */
export interface CallsPerOp {
  /** Postgres round trips on the Neon WebSockets (the room's pool): statements, BEGIN and COMMIT each count. */
  pgWs: number;
  /** Neon HTTP queries (the Worker's `neon()`): one round trip each. */
  pgHttp: number;
  /** Upstash REST requests: one round trip each. */
  redis: number;
  /** New Neon WebSocket connections (each a Postgres start-up: several round trips). */
  pgConnections: number;
  /** Operations divided by. */
  ops: number;
}

/** Counts between two readings ÷ `ops`; undefined when either reading is missing or no op ran. */
export function callsPerOp(before: WireCounts | undefined, after: WireCounts | undefined, ops: number): CallsPerOp | undefined {
  if (!before || !after || ops <= 0) return undefined;
  const per = (kind: WireKind): number => ((after[kind] ?? 0) - (before[kind] ?? 0)) / ops;
  return { pgWs: per('pgWsRoundTrips'), pgHttp: per('pgHttpRequests'), redis: per('redisRequests'), pgConnections: per('pgWsConnections'), ops };
}

/** The header of the calls column. */
export const CALLS_HEADER = 'calls/op pg-ws · pg-http · redis';

/** "1.00 · 0.00 · 2.00" (plus "+N conn" when connections were opened during the step). */
export function formatCalls(calls: CallsPerOp | undefined): string {
  if (!calls) return '–';
  const connections = calls.pgConnections * calls.ops;
  return `${calls.pgWs.toFixed(2)} · ${calls.pgHttp.toFixed(2)} · ${calls.redis.toFixed(2)}${connections > 0 ? ` (+${Math.round(connections)} conn)` : ''}`;
}

/** The legend line printed under a table with the calls column. */
export const CALLS_LEGEND =
  'calls/op: round trips the adapters counted during the step ÷ its answered requests: Postgres on the Neon WebSockets ' +
  "(the room's pool: each statement, BEGIN and COMMIT), Neon HTTP queries (the Worker), Upstash REST requests (a pipeline is one); " +
  '"+N conn": Neon WebSocket connections opened during the step. Background work during the step (alarms, releases after ' +
  'the response) is included; counts cannot tell sequential calls from parallel ones: compare p50 with --latency.';
