/**
 * `npm run bench:checkout` (issue 19): every checkout figure the issue's goals name, before and after
 * in one command. Runs the benchmarks below one after another as child processes, each once with the
 * Worker built from `--before DIR` (a worktree of the commit to compare with; `--worker-root` of each
 * benchmark) and once from this tree, the two back to back so that both see the same machine load,
 * and prints one table with both, the goal and the load average beside every figure:
 *
 *  1. holds, workerd, 50 clients: `bench:holds --parts B,C --seat-counts 1000 --sockets 0`: hold and
 *     payment (no sockets) against the trivial 404 measured just before.
 *  2. charges and payments, workerd, 50 clients: `bench:locks --charge-clients 50`, with the checkout
 *     probe (dependent round trips per operation, bench/lib/checkout-probe.ts) at 10 ms per hop.
 *  3. the same two at 10 clients with `--latency neon=20,redis=10`: p50 of hold, payment and charge;
 *     the probe at that distance.
 *  4. with `--rush`: `bench:rush --fans 10000 --seats 1000` (several minutes each): pass/fail and
 *     checkout p99.
 *
 * Without `--before` only this tree is measured. Each run's full output and JSON are kept in `--out`
 * (default bench/.generated/checkout-<time>/). Flags: `--before DIR`, `--rush`, `--only 1,2,3,4`,
 * `--out DIR`, `--quick` (short steps and fewer holds, to try the command out: not for figures). A
 * failed child run is reported and the others still run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flagValue } from './lib/cli.ts';
import { cleanup, installSignalHandlers, interrupted } from './lib/cleanup.ts';
import type { DependentCalls } from './lib/checkout-probe.ts';
import { formatMs, formatRatio, printTable } from './lib/table.ts';
import type { CallsPerOp } from './lib/wire.ts';
import { formatCalls } from './lib/wire.ts';
import { workerRootFlag } from './lib/worker.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BEFORE = (() => {
  const raw = flagValue('before');
  return raw === undefined ? undefined : workerRootFlag(['--worker-root', raw]);
})();
const RUSH = process.argv.includes('--rush');
const QUICK: Record<string, string[]> = process.argv.includes('--quick')
  ? { holds: ['--duration', '2', '--warmup', '1', '--holds', '200', '--payments', '60'], locks: ['--duration', '2', '--warmup', '1', '--payments', '60', '--probe-ops', '4'], rush: ['--fans', '300', '--seats', '30'] }
  : {};
const ONLY = new Set((flagValue('only') ?? (RUSH ? '1,2,3,4' : '1,2,3')).split(',').map(Number));
const OUT = path.resolve(flagValue('out') ?? path.join(ROOT, 'bench/.generated', `checkout-${new Date().toISOString().replace(/[:.]/g, '-')}`));
const log = (message: string): void => console.error(`[bench:checkout] ${message}`);

interface Job {
  id: number;
  name: string;
  script: string;
  args: string[];
}

const DISTANCE = ['--latency', 'neon=20,redis=10'];
const JOBS: Job[] = [
  { id: 1, name: 'holds, 50 clients', script: 'holds', args: ['--mode', 'workerd', '--parts', 'B,C', '--seat-counts', '1000', '--sockets', '0', '--probe-ops', '0'] },
  { id: 2, name: 'charges + payments, 50 clients', script: 'locks', args: ['--mode', 'workerd', '--charge-clients', '50'] },
  { id: 3, name: 'holds, 10 clients at distance', script: 'holds', args: ['--mode', 'workerd', '--parts', 'B,C', '--seat-counts', '1000', '--sockets', '0', '--clients', '10', '--probe-ops', '0', ...DISTANCE] },
  { id: 3, name: 'charges + payments, 10 clients at distance', script: 'locks', args: ['--mode', 'workerd', '--charge-clients', '10', ...DISTANCE] },
  { id: 4, name: 'rush 10,000 fans, 1,000 seats', script: 'rush', args: ['--fans', '10000', '--seats', '1000'] },
];

interface Outcome {
  job: Job;
  variant: 'before' | 'after';
  code: number | null;
  loadStart: number;
  loadEnd: number;
  json: Record<string, unknown> | undefined;
  command: string;
}

function runJob(job: Job, variant: 'before' | 'after'): Promise<Outcome> {
  const file = path.join(OUT, `${job.script}-${job.id}-${job.args.includes('--latency') ? 'distance-' : ''}${variant}`);
  // Flags are read first occurrence first (lib/cli.ts): --quick's go before the job's own.
  const args = [path.join(ROOT, 'bench', `${job.script}.ts`), ...(QUICK[job.script] ?? []), ...job.args, ...(variant === 'before' ? ['--worker-root', BEFORE!] : []), '--json', `${file}.json`];
  const command = `npm run bench:${job.script} -- ${args.slice(1, -2).join(' ')}`;
  log(`${variant}: ${command}`);
  const loadStart = os.loadavg()[0]!;
  return new Promise((resolve) => {
    const out = fs.openSync(`${file}.txt`, 'w');
    const err = fs.openSync(`${file}.err`, 'w');
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', out, err] });
    const stop = (): void => {
      child.kill('SIGINT');
    };
    interrupted.addEventListener('abort', stop, { once: true });
    child.once('exit', (code) => {
      interrupted.removeEventListener('abort', stop);
      fs.closeSync(out);
      fs.closeSync(err);
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      resolve({ job, variant, code, loadStart, loadEnd: os.loadavg()[0]!, json, command });
    });
  });
}

// ─── Figures out of each benchmark's JSON ────────────────────────────────────────────────────────

interface Figure {
  /** e.g. "hold, 50 clients". */
  name: string;
  goal: string;
  value: string;
  met?: boolean;
  calls?: string;
}

interface HoldsGoal {
  step: string;
  goal: string;
  ratioToTrivial: number;
  p50Ms: number;
  p99Ms: number;
  met: boolean;
}
interface HoldsResult {
  name: string;
  concurrency: number;
  callsPerOp?: CallsPerOp;
}
interface LocksRow {
  part: string;
  step: string;
  mode: string;
  clients: number;
  perSecond: number;
  ratioToCeiling?: number;
  latencyMs: { p50: number; p99: number };
  calls?: CallsPerOp;
  goal?: string;
  goalMet?: boolean;
  isCeiling?: boolean;
}

const OP_NAMES: Record<string, string> = { 'hold 1 seat': 'hold', 'POST /payment': 'payment', 'POST /payment {reservationId}': 'payment', 'POST /balance/charge {amount: 1}': 'charge' };

function figuresOf(outcome: Outcome): Figure[] {
  const json = outcome.json;
  if (!json) return [{ name: outcome.job.name, goal: '', value: `no report (exit ${outcome.code})` }];
  const latency = json.latency ? ' at neon=20,redis=10' : '';
  if (json.benchmark === 'holds') {
    const goals = (json.goals ?? []) as HoldsGoal[];
    const results = (json.results ?? []) as HoldsResult[];
    return goals.map((g) => {
      const op = OP_NAMES[g.step] ?? g.step;
      const calls = results.find((r) => r.name === g.step)?.callsPerOp;
      return {
        name: `${op}, ${(json.clients as number)} clients${latency} (bench:holds)`,
        goal: g.goal,
        value: `${formatRatio(g.ratioToTrivial)} trivial, p50 ${formatMs(g.p50Ms)}, p99 ${formatMs(g.p99Ms)} ms`,
        met: g.met,
        calls: formatCalls(calls),
      };
    });
  }
  if (json.benchmark === 'locks') {
    const rows = ((json.table ?? []) as LocksRow[]).filter((row) => row.goal !== undefined);
    const figures: Figure[] = rows.map((row) => ({
      name: `${OP_NAMES[row.step] ?? row.step}, ${row.clients} clients${latency} (bench:locks)`,
      goal: row.goal!,
      value: `${formatRatio(row.ratioToCeiling ?? Number.NaN)} trivial, p50 ${formatMs(row.latencyMs.p50)}, p99 ${formatMs(row.latencyMs.p99)} ms`,
      met: row.goalMet,
      calls: formatCalls(row.calls),
    }));
    const probes = (json.dependentCalls ?? []) as { latency: string; results: DependentCalls[] }[];
    for (const probe of probes) {
      for (const r of probe.results) {
        figures.push({
          name: `${r.op}: dependent round trips before the answer (probe, 1 client, ${probe.latency})`,
          goal: r.op === 'hold' ? '1' : '2',
          value: `${r.rounds.toFixed(2)}: ${r.shape}; after the answer pg ${r.after.pg.toFixed(1)} · pg-http ${r.after.pgHttp.toFixed(1)} · redis ${r.after.redis.toFixed(1)}`,
          met: r.op === 'hold' ? r.rounds <= 1.05 : r.rounds <= 2.05,
        });
      }
    }
    return figures;
  }
  if (json.benchmark === 'rush') {
    const p99 = json.checkoutP99Ms as { hold?: number; payment?: number } | undefined;
    const failures = (json.failures ?? []) as string[];
    return [
      { name: 'rush 10,000 / 1,000: passes', goal: 'PASS', value: failures.length === 0 ? 'PASS' : `FAIL: ${failures.join('; ')}`, met: failures.length === 0 },
      { name: 'rush: checkout p99 (hold / payment)', goal: 'reported', value: `${formatMs(p99?.hold ?? Number.NaN)} / ${formatMs(p99?.payment ?? Number.NaN)} ms` },
    ];
  }
  return [];
}

// ─── Main ────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const startedAt = new Date();
  log(`outputs in ${OUT}; before: ${BEFORE ?? '(none: this tree only)'}`);
  const outcomes: Outcome[] = [];
  for (const job of JOBS) {
    if (!ONLY.has(job.id)) continue;
    for (const variant of BEFORE ? (['before', 'after'] as const) : (['after'] as const)) {
      if (interrupted.aborted) return;
      const outcome = await runJob(job, variant);
      outcomes.push(outcome);
      log(`${variant}: ${job.name}: exit ${outcome.code}, load ${outcome.loadStart.toFixed(2)} → ${outcome.loadEnd.toFixed(2)}`);
    }
  }

  console.log(`bench:checkout — issue 19's figures, ${startedAt.toISOString()}; before = Worker from ${BEFORE ?? '(not measured)'}, after = this tree (${ROOT}).`);
  console.log(`Outputs of every run (tables, JSON, stderr): ${OUT}`);
  const rows: string[][] = [];
  const jobsRun = JOBS.filter((job) => ONLY.has(job.id));
  for (const job of jobsRun) {
    const before = outcomes.find((o) => o.job === job && o.variant === 'before');
    const after = outcomes.find((o) => o.job === job && o.variant === 'after');
    const beforeFigures = before ? figuresOf(before) : [];
    const afterFigures = after ? figuresOf(after) : [];
    const names = [...new Set([...beforeFigures, ...afterFigures].map((f) => f.name))];
    for (const name of names) {
      const b = beforeFigures.find((f) => f.name === name);
      const a = afterFigures.find((f) => f.name === name);
      const cell = (f: Figure | undefined, o: Outcome | undefined): string =>
        f ? `${f.value}${f.met === undefined ? '' : f.met ? ' (met)' : ' (NOT MET)'} [load ${o!.loadStart.toFixed(1)}→${o!.loadEnd.toFixed(1)}]` : '–';
      rows.push([name, (a ?? b)?.goal ?? '', cell(b, before), b?.calls ?? '', cell(a, after), a?.calls ?? '']);
    }
  }
  printTable(
    'Issue 19: checkout, before and after (workerd; × trivial = ÷ the trivial 404 measured just before at the same clients)',
    ['figure', 'goal', 'before', 'calls/op pg-ws · pg-http · redis', 'after', 'calls/op pg-ws · pg-http · redis'],
    rows,
  );
  console.log('[load a→b]: the 1-minute load average when the run started and ended (2 cores, shared with other work).');
  console.log('Commands:');
  for (const o of outcomes) console.log(`  ${o.variant}: ${o.command}${o.code === 0 ? '' : `   (exit ${o.code})`}`);
  if (outcomes.some((o) => o.code !== 0)) process.exitCode = 1;
}

installSignalHandlers(log);
try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cleanup(log);
}
