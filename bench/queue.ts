/**
 * `npm run bench:queue` (issue 3): how fast the waiting room takes people in and answers them.
 *
 * - joins/s: `POST /queue/token`, every request a different user (user tokens signed here with the
 *   AUTH_SECRET the Worker was given, as `POST /auth/dev-token` would), on a concert whose sales open
 *   tomorrow, so everyone stays waiting. Each join is a ConcertRoom RPC with a SQLite write.
 * - status polls/s: `GET /queue/status` with the queue tokens of those waiting users, cycled. Waiting
 *   places are answered at the edge from the cached admission snapshot (refreshed about once a
 *   second through the room), so most polls never reach the room.
 *
 * Each at 50 and 200 concurrent clients, beside the trivial ceiling measured right before it by the
 * same generator against the same Worker (DESIGN.md §9), in both modes: `wrangler dev` and the same
 * bundle on workerd without wrangler's proxy (see bench/lib/worker.ts).
 *
 * Flags: `--duration <s>` per step (default 10), `--mode wrangler|workerd|both` (default both),
 * `--clients 50,200`, `--json <file>`.
 */
import { flagValue, intFlag, writeJsonReport } from './lib/cli.ts';
import { interrupted } from './lib/cleanup.ts';
import { TRIVIAL_DESCRIPTION, TRIVIAL_PATH, concertStats, createConcert, userToken } from './lib/frontrow.ts';
import type { BenchStack, ConcertStats, JoinAnswer } from './lib/frontrow.ts';
import { runLoad } from './lib/load.ts';
import type { LoadResponse, LoadResult } from './lib/load.ts';
import { jsonResult, jsonWorker, printAnomalies, printLoadTable, printRunSettings } from './lib/report.ts';
import type { Measured } from './lib/report.ts';
import { runBenchmark } from './lib/run.ts';
import type { BenchRun } from './lib/run.ts';
import { formatCount } from './lib/table.ts';
import { parseModes, startWorker } from './lib/worker.ts';
import type { WorkerMode, WorkerUnderTest } from './lib/worker.ts';

const DURATION_MS = intFlag('duration', 10) * 1000;
const MODES = parseModes(flagValue('mode'));
const CLIENTS = (flagValue('clients') ?? '50,200').split(',').map((raw) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--clients must be positive integers separated by commas, got "${raw}"`);
  return n;
});
flagValue('json'); // fail on a bare --json now, not after the run

const log = (message: string): void => console.error(`[bench:queue] ${message}`);

interface QueueStatusBody {
  status?: string;
  position?: number;
}

/** "201 waiting", "200 waiting", "503": the status code plus the queue status when there is one. */
function labelWithQueueStatus(response: LoadResponse): string {
  const status = response.json<QueueStatusBody>()?.status;
  return status ? `${response.status} ${status}` : String(response.status);
}

interface ModeChecks {
  mode: WorkerMode;
  concertId: string;
  joined: number;
  positionsDistinct: boolean;
  positionsContiguous: boolean;
  stats: ConcertStats;
}

async function runMode(mode: WorkerMode, bench: BenchStack, rows: Measured[]): Promise<{ worker: WorkerUnderTest; checks: ModeChecks }> {
  const worker = await startWorker({ mode, vars: bench.vars, log });
  const concertId = await createConcert(worker.url, bench.adminToken, {
    title: `bench:queue ${mode}`,
    seats: 100,
    price: 100,
    // Sales open tomorrow: everyone who joins stays waiting for the whole run.
    salesOpenAt: new Date(Date.now() + 24 * 3600 * 1000),
  });
  log(`${mode}: concert ${concertId} (sales open tomorrow)`);

  const tokens: string[] = [];
  const positions = new Set<number>();
  let maxPosition = 0;
  let nextUser = 0;
  let nextPoll = 0;

  for (const clients of CLIENTS) {
    const common = { baseUrl: worker.url, concurrency: clients, durationMs: DURATION_MS, signal: interrupted, serverCpuMs: () => worker.cpuMs(), stackCpuMs: () => bench.cpuMs() };
    const step = async (name: string, run: () => Promise<LoadResult>, trivial: LoadResult | undefined): Promise<LoadResult> => {
      if (interrupted.aborted) throw new Error('interrupted');
      log(`${mode}: ${name}, ${clients} clients, ${DURATION_MS / 1000} s`);
      const result = await run();
      rows.push({ mode, result, trivial });
      log(
        `${mode}: ${name} c=${clients}: ${formatCount(result.rps)} req/s, p50 ${result.latencyMs.p50.toFixed(1)} ms, ` +
          `p99 ${result.latencyMs.p99.toFixed(1)} ms, ${result.errors} errors`,
      );
      return result;
    };

    const trivial = await step(
      'trivial 404',
      () => runLoad({ ...common, name: 'trivial 404', next: () => ({ path: TRIVIAL_PATH }), expect: (r) => r.status === 404 }),
      undefined,
    );

    await step(
      'join',
      () =>
        runLoad({
          ...common,
          name: 'join',
          next: async () => ({
            method: 'POST',
            path: '/queue/token',
            headers: { authorization: `Bearer ${await userToken(bench.authSecret, `bench-queue-${mode}-${nextUser++}`)}` },
            json: { concertId },
          }),
          expect: (r) => r.status === 201 && r.json<JoinAnswer>()?.status === 'waiting',
          label: labelWithQueueStatus,
          onResponse: (r) => {
            const answer = r.json<JoinAnswer>();
            if (r.status !== 201 || !answer) return;
            tokens.push(answer.token);
            positions.add(answer.position);
            maxPosition = Math.max(maxPosition, answer.position);
          },
        }),
      trivial,
    );

    if (tokens.length === 0) {
      log(`${mode}: no one joined; skipping status polls`);
      continue;
    }
    await step(
      'status',
      () =>
        runLoad({
          ...common,
          name: 'status',
          next: () => ({ path: '/queue/status', headers: { 'queue-token': tokens[nextPoll++ % tokens.length]! } }),
          expect: (r) => r.status === 200 && r.json<QueueStatusBody>()?.status === 'waiting',
          label: labelWithQueueStatus,
        }),
      trivial,
    );
  }

  const stats = await concertStats(worker.url, bench.adminToken, concertId);
  await worker.stop();
  return {
    worker,
    checks: {
      mode,
      concertId,
      joined: tokens.length,
      positionsDistinct: positions.size === tokens.length,
      positionsContiguous: positions.size === maxPosition,
      stats,
    },
  };
}

async function main({ bench, startedAt, elapsedSeconds }: BenchRun): Promise<void> {
  const rows: Measured[] = [];
  const workers: WorkerUnderTest[] = [];
  const checks: ModeChecks[] = [];
  for (const mode of MODES) {
    const done = await runMode(mode, bench, rows);
    workers.push(done.worker);
    checks.push(done.checks);
  }
  const elapsedS = elapsedSeconds();

  // ─── Report ──────────────────────────────────────────────────────────────────────────────────
  console.log(
    `bench:queue — closed loop, ${DURATION_MS / 1000} s per step, clients ${CLIENTS.join(' and ')}, modes ${MODES.join(' and ')}. ` +
      'One machine for client, Worker, Postgres and Redis: read the × trivial column, not the absolute figures.',
  );
  printRunSettings(bench, workers, {
    'trivial 404': TRIVIAL_DESCRIPTION,
    join: 'POST /queue/token {concertId}, a new user every request (HS256 user token signed by the bench); sales open tomorrow, so 201 waiting',
    status: 'GET /queue/status with Queue-Token: the waiting users\' tokens, cycled; 200 waiting, mostly from the edge snapshot',
  });

  printLoadTable('Throughput and latency (× trivial = req/s ÷ trivial req/s, same mode and clients, same run)', rows);

  console.log('\nChecks');
  for (const c of checks) {
    const ok = c.positionsDistinct && c.positionsContiguous && c.stats.waiting === c.joined && c.stats.admitted === 0;
    console.log(
      `  ${c.mode}: ${formatCount(c.joined)} joins answered 201; positions ${c.positionsDistinct ? 'all distinct' : 'NOT DISTINCT'}` +
        `${c.positionsContiguous ? ', exactly 1..N' : ', NOT 1..N'}; room stats: waiting ${formatCount(c.stats.waiting)}, ` +
        `admitted ${formatCount(c.stats.admitted)} → ${ok ? 'ok' : 'MISMATCH'}`,
    );
    if (!ok) process.exitCode = 1;
  }
  printAnomalies(rows, workers);
  console.log(`\nTotal ${elapsedS.toFixed(0)} s (stack, Worker start-ups and ${rows.length} steps).`);

  const written = await writeJsonReport({
    benchmark: 'queue',
    startedAt: startedAt.toISOString(),
    durationPerStepS: DURATION_MS / 1000,
    clients: CLIENTS,
    modes: MODES,
    stack: bench.describe(),
    workers: workers.map(jsonWorker),
    trivial: TRIVIAL_DESCRIPTION,
    results: rows.map(jsonResult),
    checks,
    elapsedSeconds: elapsedS,
  });
  if (written) log(`wrote ${written}`);
}

await runBenchmark(log, main);
