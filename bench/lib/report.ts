/**
 * How the HTTP benchmarks print: each load figure beside the trivial ceiling measured in the same
 * run, by the same generator, against the same Worker and at the same concurrency (DESIGN.md §9).
 */
import type { BenchStack } from './frontrow.ts';
import { goalCell } from './goals.ts';
import type { Goal } from './goals.ts';
import type { LoadResult } from './load.ts';
import { CALLS_HEADER, CALLS_LEGEND, formatCalls } from './wire.ts';
import type { CallsPerOp } from './wire.ts';
import { LATENCY_COLUMNS, formatCount, formatMs, formatRatio, latencyCells, printTable, rightAligned } from './table.ts';
import type { WorkerMode, WorkerUnderTest } from './worker.ts';

/** One measured step and the ceiling it is compared with (undefined: it is the ceiling). */
export interface Measured {
  mode: WorkerMode;
  result: LoadResult;
  trivial: LoadResult | undefined;
  /** The DO-write ceiling of the same mode and clients, measured just before (see ./ceilings.ts). */
  doWrite?: LoadResult;
  /** This row is the DO-write ceiling itself. */
  isDoWriteCeiling?: boolean;
  /** The scale point the step ran at, e.g. "line 100,000" or "seats 1,000"; rows are compared across it. */
  size?: string;
  /** What issue 8 or 19 asks of this step (see ./goals.ts). */
  goal?: Goal;
  /** Round trips the adapters counted per answered request during the step (./wire.ts). */
  calls?: CallsPerOp;
  /** The machine's 1-minute load average when the step ended (2 cores, shared). */
  load1?: number;
}

/** "201 ×1,234, 409 ×2". */
export function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  if (entries.length === 0) return '–';
  return entries.map(([key, n]) => `${key} ×${formatCount(n)}`).join(', ');
}

function formatPct(pct: number): string {
  return Number.isFinite(pct) ? `${pct.toFixed(0)} %` : '–';
}

/** Prints `settings` as an indented "key: value" list under `title`. */
export function printSettings(title: string, settings: Record<string, string>): void {
  console.log(`\n${title}`);
  const width = Math.max(...Object.keys(settings).map((key) => key.length));
  for (const [key, value] of Object.entries(settings)) console.log(`  ${key.padEnd(width)}  ${value}`);
}

/** The settings a run's report opens with: the stack, each Worker under test, and what each step sends. */
export function printRunSettings(bench: BenchStack, workers: readonly WorkerUnderTest[], steps: Record<string, string>, stackExtra: Record<string, string> = {}): void {
  printSettings('Stack', { ...bench.describe(), ...stackExtra });
  for (const worker of workers) printSettings(`Worker under test: ${worker.mode}`, worker.settings);
  printSettings('Steps', steps);
}

/**
 * The main table: throughput, its ratio to the trivial ceiling (and to the DO-write ceiling when the
 * run measured one), latency percentiles, what came back, the server's CPU per request and its ratio
 * to the trivial one, how busy the generator itself was, and the goal when a step has one. A legend
 * follows the table.
 */
export function printLoadTable(title: string, rows: readonly Measured[]): void {
  const withSize = rows.some((row) => row.size !== undefined);
  const withDoWrite = rows.some((row) => row.doWrite !== undefined || row.isDoWriteCeiling);
  const withGoal = rows.some((row) => row.goal !== undefined);
  const withCalls = rows.some((row) => row.calls !== undefined);
  const withLoad = rows.some((row) => row.load1 !== undefined);
  const doWriteCell = (row: Measured): string =>
    row.isDoWriteCeiling ? '(ceiling)' : row.doWrite ? formatRatio(row.result.rps / row.doWrite.rps) : '–';
  printTable(
    title,
    [
      'mode',
      ...rightAligned('clients'),
      ...(withSize ? ['size'] : []),
      'step',
      ...rightAligned('requests', 'req/s', '× trivial', ...(withDoWrite ? ['× DO write'] : [])),
      ...LATENCY_COLUMNS,
      'answers',
      ...rightAligned('errors', 'server CPU', 'srv ms/req', 'cost × trivial', 'stack CPU', 'stack ms/req', 'client CPU'),
      ...(withLoad ? rightAligned('load 1m') : []),
      ...(withCalls ? rightAligned(CALLS_HEADER) : []),
      ...(withGoal ? ['goal (workerd)'] : []),
    ],
    rows.map((row) => {
      const { mode, result, trivial } = row;
      return [
        mode,
        formatCount(result.concurrency),
        ...(withSize ? [row.size ?? ''] : []),
        result.name,
        formatCount(result.requests),
        formatCount(result.rps),
        trivial ? formatRatio(result.rps / trivial.rps) : '(ceiling)',
        ...(withDoWrite ? [doWriteCell(row)] : []),
        ...latencyCells(result.latencyMs),
        formatCounts(result.statuses),
        formatCount(result.errors),
        formatPct(result.serverCpuPct),
        formatMs(result.serverCpuMsPerRequest),
        trivial ? formatRatio(result.serverCpuMsPerRequest / trivial.serverCpuMsPerRequest) : '(ceiling)',
        formatPct(result.stackCpuPct),
        formatMs(result.stackCpuMsPerRequest),
        formatPct(result.clientCpuPct),
        ...(withLoad ? [row.load1 === undefined ? '–' : row.load1.toFixed(2)] : []),
        ...(withCalls ? [formatCalls(row.calls)] : []),
        ...(withGoal ? [goalCell(row)] : []),
      ];
    }),
  );
  console.log(
    [
      '× trivial: req/s ÷ the trivial ceiling\'s req/s (same mode, same clients, measured just before).',
      ...(withDoWrite ? ['× DO write: req/s ÷ the DO-write ceiling\'s req/s (one DO RPC + one SQLite upsert; same mode, clients, just before).'] : []),
      'server CPU: CPU of the Worker\'s process group during the step, % of one core (2 in all, shared with',
      '  the client, Postgres, Redis and whatever else runs); srv ms/req: that CPU per answered request;',
      '  cost × trivial: srv ms/req ÷ the trivial step\'s — the steadiest figure on a busy machine.',
      'stack CPU, stack ms/req: the same for PostgreSQL, redis-server and the Neon/Upstash adapters together.',
      'client CPU: the load generator (this Node process), % of one core.',
      ...(withLoad ? ["load 1m: the machine's 1-minute load average as the step ended (2 cores; this run's own load included)."] : []),
      ...(withCalls ? [CALLS_LEGEND] : []),
      ...(withGoal
        ? [
            'goal: issue 8\'s or 19\'s target for the step, judged on the workerd mode only: ratios (expected answers/s ÷ trivial req/s) and p99',
            '  at 50 clients without --latency; p50 at 10 clients with --latency neon=20,redis=10.',
          ]
        : []),
    ].join('\n'),
  );
}

/** Errors, unexpected answers and runtime warnings, or one line saying there were none. */
export function printAnomalies(rows: readonly Measured[], workers: readonly { mode: WorkerMode; logs: WorkerUnderTest['logs'] }[]): number {
  const lines: string[] = [];
  for (const { mode, result } of rows) {
    for (const [message, n] of Object.entries(result.errorMessages)) lines.push(`${mode} ${result.name} c=${result.concurrency}: ${n} × ${message}`);
    const unexpected = result.requests - result.expected;
    if (unexpected > 0) lines.push(`${mode} ${result.name} c=${result.concurrency}: ${formatCount(unexpected)} unexpected answer(s), e.g.`);
    for (const sample of result.samples) lines.push(`    HTTP ${sample.status} ${sample.body}`);
  }
  for (const { mode, logs } of workers) {
    if (logs.count === 0) continue;
    lines.push(`${mode}: the runtime printed ${formatCount(logs.count)} warning/error line(s); first ones:`);
    for (const line of logs.first) lines.push(`    ${line}`);
  }
  console.log('');
  if (lines.length === 0) console.log('Anomalies: none (no transport errors, no runtime warnings or errors).');
  else {
    console.log('Anomalies:');
    for (const line of lines) console.log(`  ${line}`);
  }
  return lines.length;
}

/** A load result without bulky fields, for the JSON report. */
export function jsonResult(measured: Measured): Record<string, unknown> {
  const { mode, result, trivial, doWrite } = measured;
  const goal = measured.goal ? goalCell(measured) : undefined;
  return {
    mode,
    ...(measured.size === undefined ? {} : { size: measured.size }),
    ...result,
    trivialRps: trivial?.rps,
    ratioToTrivial: trivial ? result.rps / trivial.rps : undefined,
    cpuPerRequestRatioToTrivial: trivial ? result.serverCpuMsPerRequest / trivial.serverCpuMsPerRequest : undefined,
    ...(doWrite ? { doWriteRps: doWrite.rps, ratioToDoWrite: result.rps / doWrite.rps } : {}),
    ...(measured.isDoWriteCeiling ? { ceiling: 'DO write' } : trivial === undefined ? { ceiling: 'trivial 404' } : {}),
    ...(goal === undefined ? {} : { goal: measured.goal?.text, goalVerdict: goal }),
    ...(measured.calls ? { callsPerOp: measured.calls } : {}),
    ...(measured.load1 === undefined ? {} : { load1: measured.load1 }),
  };
}

/** A Worker under test as the JSON report describes it. */
export function jsonWorker(worker: WorkerUnderTest): Record<string, unknown> {
  return { mode: worker.mode, startupMs: worker.startupMs, settings: worker.settings, runtimeWarnings: worker.logs.count, firstWarnings: worker.logs.first };
}
