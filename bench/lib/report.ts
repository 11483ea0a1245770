/**
 * How the HTTP benchmarks print: each load figure beside the trivial ceiling measured in the same
 * run, by the same generator, against the same Worker and at the same concurrency (DESIGN.md §9).
 */
import type { BenchStack } from './frontrow.ts';
import type { LoadResult } from './load.ts';
import { LATENCY_COLUMNS, formatCount, formatMs, formatRatio, latencyCells, printTable, rightAligned } from './table.ts';
import type { WorkerMode, WorkerUnderTest } from './worker.ts';

/** One measured step and the ceiling it is compared with (undefined: it is the ceiling). */
export interface Measured {
  mode: WorkerMode;
  result: LoadResult;
  trivial: LoadResult | undefined;
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
export function printRunSettings(bench: BenchStack, workers: readonly WorkerUnderTest[], steps: Record<string, string>): void {
  printSettings('Stack', bench.describe());
  for (const worker of workers) printSettings(`Worker under test: ${worker.mode}`, worker.settings);
  printSettings('Steps', steps);
}

/**
 * The main table: throughput, its ratio to the trivial ceiling, latency percentiles, what came
 * back, the server's CPU per request and its ratio to the trivial one, and how busy the generator
 * itself was. A legend follows the table.
 */
export function printLoadTable(title: string, rows: readonly Measured[]): void {
  printTable(
    title,
    [
      'mode',
      ...rightAligned('clients'),
      'step',
      ...rightAligned('requests', 'req/s', '× trivial'),
      ...LATENCY_COLUMNS,
      'answers',
      ...rightAligned('errors', 'server CPU', 'srv ms/req', 'cost × trivial', 'stack CPU', 'stack ms/req', 'client CPU'),
    ],
    rows.map(({ mode, result, trivial }) => [
      mode,
      formatCount(result.concurrency),
      result.name,
      formatCount(result.requests),
      formatCount(result.rps),
      trivial ? formatRatio(result.rps / trivial.rps) : '(ceiling)',
      ...latencyCells(result.latencyMs),
      formatCounts(result.statuses),
      formatCount(result.errors),
      formatPct(result.serverCpuPct),
      formatMs(result.serverCpuMsPerRequest),
      trivial ? formatRatio(result.serverCpuMsPerRequest / trivial.serverCpuMsPerRequest) : '(ceiling)',
      formatPct(result.stackCpuPct),
      formatMs(result.stackCpuMsPerRequest),
      formatPct(result.clientCpuPct),
    ]),
  );
  console.log(
    [
      '× trivial: req/s ÷ the trivial ceiling\'s req/s (same mode, same clients, measured just before).',
      'server CPU: CPU of the Worker\'s process group during the step, % of one core (2 in all, shared with',
      '  the client, Postgres, Redis and whatever else runs); srv ms/req: that CPU per answered request;',
      '  cost × trivial: srv ms/req ÷ the trivial step\'s — the steadiest figure on a busy machine.',
      'stack CPU, stack ms/req: the same for PostgreSQL, redis-server and the Neon/Upstash adapters together.',
      'client CPU: the load generator (this Node process), % of one core.',
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
  const { mode, result, trivial } = measured;
  return {
    mode,
    ...result,
    trivialRps: trivial?.rps,
    ratioToTrivial: trivial ? result.rps / trivial.rps : undefined,
    cpuPerRequestRatioToTrivial: trivial ? result.serverCpuMsPerRequest / trivial.serverCpuMsPerRequest : undefined,
  };
}

/** A Worker under test as the JSON report describes it. */
export function jsonWorker(worker: WorkerUnderTest): Record<string, unknown> {
  return { mode: worker.mode, startupMs: worker.startupMs, settings: worker.settings, runtimeWarnings: worker.logs.count, firstWarnings: worker.logs.first };
}
