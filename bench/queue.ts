/**
 * `npm run bench:queue` (issues 3 and 8): how fast the waiting room takes people in and answers them,
 * with a short line and with a long one.
 *
 * For each line size (`--line-sizes`, default 1,000 and 100,000), per mode, a concert whose sales open
 * tomorrow (so everyone stays waiting) is first filled with that many people through the room's own
 * `join` RPC (`POST /__bench/fill-line`, bench/lib/fill.ts: about 2.3× faster than HTTP joins; the time
 * it took is printed), then at each client count:
 *
 * - trivial 404 and DO write: the two ceilings (bench/lib/ceilings.ts), measured right before;
 * - join: `POST /queue/token`, every request a different user (user tokens signed here with the
 *   AUTH_SECRET the Worker was given, as `POST /auth/dev-token` would). Each join is a ConcertRoom RPC
 *   with a SQLite write;
 * - status: `GET /queue/status` with the queue tokens of the users who joined, cycled. Waiting places
 *   are answered at the edge from the cached admission snapshot when there is one.
 *
 * The line also grows by each join step's joins (the checks print its length before every step). A
 * scale table compares each step at the large size with the same step at the small one (goal: at
 * most 1.3× the cost), and the goals of issue 8 (workerd, 50 clients) are printed with the figures.
 * Modes: `wrangler dev` and the same bundle on workerd without wrangler's proxy (bench/lib/worker.ts).
 *
 * Flags: `--duration <s>` per step (default 10), `--mode wrangler|workerd|both` (default both),
 * `--clients 50,200`, `--line-sizes 1000,100000`, `--warmup <s>` of unreported trivial and DO-write load
 * after each Worker start (default 3), `--json <file>`.
 */
import { flagValue, intFlag, intListFlag, writeJsonReport } from './lib/cli.ts';
import { DO_WRITE, TRIVIAL, ceilingLoad, warmUp } from './lib/ceilings.ts';
import { interrupted } from './lib/cleanup.ts';
import { fillLine } from './lib/fill.ts';
import type { FillResult } from './lib/fill.ts';
import { concertStats, createConcert, userToken } from './lib/frontrow.ts';
import type { BenchStack, ConcertStats, JoinAnswer } from './lib/frontrow.ts';
import { GOALS, jsonGoals, printGoalSummary, printScaleTable, scalePairs } from './lib/goals.ts';
import { runLoad } from './lib/load.ts';
import type { LoadResponse, LoadResult, LoadStep } from './lib/load.ts';
import { jsonResult, jsonWorker, printAnomalies, printLoadTable, printRunSettings } from './lib/report.ts';
import type { Measured } from './lib/report.ts';
import { runBenchmark } from './lib/run.ts';
import type { BenchRun } from './lib/run.ts';
import { formatCount } from './lib/table.ts';
import { parseModes, startWorker } from './lib/worker.ts';
import type { WorkerMode, WorkerUnderTest } from './lib/worker.ts';

const DURATION_MS = intFlag('duration', 10) * 1000;
const MODES = parseModes(flagValue('mode'));
const CLIENTS = intListFlag('clients', [50, 200]);
const LINE_SIZES = intListFlag('line-sizes', [1000, 100_000], { min: 0 });
const WARMUP_S = intFlag('warmup', 3, { min: 0 });
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

const sizeLabel = (people: number): string => `line ${formatCount(people)}`;

interface LineChecks {
  mode: WorkerMode;
  lineSize: number;
  concertId: string;
  fill: FillResult | undefined;
  /** How many were in line before each join step, by clients. */
  lineBeforeJoin: Record<number, number>;
  joined: number;
  positionsDistinct: boolean;
  /** Every join answered a place after the pre-filled line, and together exactly fill+1..fill+N. */
  positionsContiguous: boolean;
  stats: ConcertStats;
}

async function runLine(mode: WorkerMode, worker: WorkerUnderTest, bench: BenchStack, lineSize: number, rows: Measured[]): Promise<LineChecks> {
  const size = sizeLabel(lineSize);
  const concertId = await createConcert(worker.url, bench.adminToken, {
    title: `bench:queue ${mode} ${size}`,
    seats: 100,
    price: 100,
    // Sales open tomorrow: everyone who joins stays waiting for the whole run.
    salesOpenAt: new Date(Date.now() + 24 * 3600 * 1000),
  });
  log(`${mode}: concert ${concertId} (sales open tomorrow); filling the line with ${formatCount(lineSize)} people through the room's join RPC`);
  let fill: FillResult | undefined;
  if (lineSize > 0) {
    fill = await fillLine({ baseUrl: worker.url, concertId, prefix: `bench-queue-${mode}-fill-`, count: lineSize, log, signal: interrupted });
    log(
      `${mode}: filled ${formatCount(fill.joined)} in ${fill.seconds.toFixed(1)} s (${formatCount(fill.perSecond)} joins/s; first tenth ` +
        `${formatCount(fill.firstTenthPerSecond)}/s, last tenth ${formatCount(fill.lastTenthPerSecond)}/s)` +
        `${fill.failed > 0 ? `, ${fill.failed} FAILED: ${fill.firstError}` : ''}`,
    );
  }

  const tokens: string[] = [];
  const positions = new Set<number>();
  let minPosition = Number.POSITIVE_INFINITY;
  let maxPosition = 0;
  let nextUser = 0;
  let nextPoll = 0;
  const lineBeforeJoin: Record<number, number> = {};

  for (const clients of CLIENTS) {
    const common = { baseUrl: worker.url, concurrency: clients, durationMs: DURATION_MS, signal: interrupted, serverCpuMs: () => worker.cpuMs(), stackCpuMs: () => bench.cpuMs() };
    const step = async (load: LoadStep, extra: Omit<Measured, 'mode' | 'result'>): Promise<LoadResult> => {
      if (interrupted.aborted) throw new Error('interrupted');
      log(`${mode}: ${size}: ${load.name}, ${clients} clients, ${DURATION_MS / 1000} s`);
      const result = await runLoad(load);
      rows.push({ mode, result, size, ...extra });
      log(
        `${mode}: ${size}: ${load.name} c=${clients}: ${formatCount(result.rps)} req/s, p50 ${result.latencyMs.p50.toFixed(1)} ms, ` +
          `p99 ${result.latencyMs.p99.toFixed(1)} ms, ${result.errors} errors`,
      );
      return result;
    };

    const trivial = await step(ceilingLoad(TRIVIAL, common), { trivial: undefined });
    const doWrite = await step(ceilingLoad(DO_WRITE, common), { trivial, isDoWriteCeiling: true });

    lineBeforeJoin[clients] = lineSize + tokens.length;
    await step(
      {
        ...common,
        name: 'join',
        next: async () => ({
          method: 'POST',
          path: '/queue/token',
          headers: { authorization: `Bearer ${await userToken(bench.authSecret, `bench-queue-${mode}-${lineSize}-${nextUser++}`)}` },
          json: { concertId },
        }),
        expect: (r) => r.status === 201 && r.json<JoinAnswer>()?.status === 'waiting',
        label: labelWithQueueStatus,
        onResponse: (r) => {
          const answer = r.json<JoinAnswer>();
          if (r.status !== 201 || !answer) return;
          tokens.push(answer.token);
          positions.add(answer.position);
          minPosition = Math.min(minPosition, answer.position);
          maxPosition = Math.max(maxPosition, answer.position);
        },
      },
      { trivial, doWrite, goal: GOALS.join },
    );

    if (tokens.length === 0) {
      log(`${mode}: ${size}: no one joined; skipping status polls`);
      continue;
    }
    await step(
      {
        ...common,
        name: 'status',
        next: () => ({ path: '/queue/status', headers: { 'queue-token': tokens[nextPoll++ % tokens.length]! } }),
        expect: (r) => r.status === 200 && r.json<QueueStatusBody>()?.status === 'waiting',
        label: labelWithQueueStatus,
      },
      { trivial, doWrite, goal: GOALS.status },
    );
  }

  const stats = await concertStats(worker.url, bench.adminToken, concertId);
  return {
    mode,
    lineSize,
    concertId,
    fill,
    lineBeforeJoin,
    joined: tokens.length,
    positionsDistinct: positions.size === tokens.length,
    positionsContiguous: tokens.length === 0 || (minPosition === lineSize + 1 && maxPosition === lineSize + tokens.length),
    stats,
  };
}

async function main({ bench, startedAt, elapsedSeconds }: BenchRun): Promise<void> {
  const rows: Measured[] = [];
  const workers: WorkerUnderTest[] = [];
  const checks: LineChecks[] = [];
  for (const mode of MODES) {
    const worker = await startWorker({ mode, vars: bench.vars, log });
    workers.push(worker);
    await warmUp({ baseUrl: worker.url, concurrency: CLIENTS[0]!, signal: interrupted }, WARMUP_S, (m) => log(`${mode}: ${m}`));
    for (const lineSize of LINE_SIZES) checks.push(await runLine(mode, worker, bench, lineSize, rows));
    await worker.stop();
  }
  const elapsedS = elapsedSeconds();
  const pairs = scalePairs(rows);

  // ─── Report ──────────────────────────────────────────────────────────────────────────────────
  console.log(
    `bench:queue — closed loop, ${DURATION_MS / 1000} s per step, clients ${CLIENTS.join(' and ')}, ` +
      `lines of ${LINE_SIZES.map(formatCount).join(' and ')} people, modes ${MODES.join(' and ')}. ` +
      'One machine for client, Worker, Postgres and Redis: read the ratio columns, not the absolute figures.',
  );
  printRunSettings(bench, workers, {
    'trivial 404': TRIVIAL.description,
    'DO write': DO_WRITE.description,
    'line fill':
      'set-up, per line size: POST /__bench/fill-line (bench-only route) has the Worker call the room\'s join(userId) RPC for each ' +
      'pre-filled person, 4 requests × 16 RPCs in flight; no user or queue tokens',
    join: 'POST /queue/token {concertId}, a new user every request (HS256 user token signed by the bench); sales open tomorrow, so 201 waiting',
    status: 'GET /queue/status with Queue-Token: the tokens of the users who joined in the join steps, cycled; 200 waiting',
  });

  printLoadTable('Throughput and latency (× trivial / × DO write: ÷ the ceilings measured just before, same mode, clients and line)', rows);
  printScaleTable(`Scale: each step with ${LINE_SIZES.map(formatCount).join(' vs ')} already in line`, pairs);
  printGoalSummary(rows, pairs);

  console.log('\nLine fills and checks');
  for (const c of checks) {
    const fill = c.fill
      ? `filled ${formatCount(c.fill.joined)} in ${c.fill.seconds.toFixed(1)} s (${formatCount(c.fill.perSecond)}/s; ` +
        `first tenth ${formatCount(c.fill.firstTenthPerSecond)}/s, last tenth ${formatCount(c.fill.lastTenthPerSecond)}/s; failed ${c.fill.failed})`
      : 'no fill';
    const expectedWaiting = c.lineSize + c.joined;
    const ok =
      c.positionsDistinct && c.positionsContiguous && c.stats.waiting === expectedWaiting && c.stats.admitted === 0 && (c.fill?.failed ?? 0) === 0;
    console.log(
      `  ${c.mode} ${sizeLabel(c.lineSize)}: ${fill}; in line before each join step: ` +
        `${Object.entries(c.lineBeforeJoin).map(([clients, n]) => `c=${clients} ${formatCount(n)}`).join(', ')}`,
    );
    console.log(
      `    ${formatCount(c.joined)} joins answered 201; positions ${c.positionsDistinct ? 'all distinct' : 'NOT DISTINCT'}` +
        `${c.positionsContiguous ? `, exactly ${formatCount(c.lineSize + 1)}..${formatCount(expectedWaiting)}` : ', NOT contiguous after the fill'}; ` +
        `room stats: waiting ${formatCount(c.stats.waiting)} (expected ${formatCount(expectedWaiting)}), admitted ${formatCount(c.stats.admitted)} → ${ok ? 'ok' : 'MISMATCH'}`,
    );
    if (!ok) process.exitCode = 1;
  }
  printAnomalies(rows, workers);
  console.log(`\nTotal ${elapsedS.toFixed(0)} s (stack, Worker start-ups, line fills and ${rows.length} steps).`);

  const written = await writeJsonReport({
    benchmark: 'queue',
    startedAt: startedAt.toISOString(),
    durationPerStepS: DURATION_MS / 1000,
    clients: CLIENTS,
    lineSizes: LINE_SIZES,
    modes: MODES,
    stack: bench.describe(),
    workers: workers.map(jsonWorker),
    ceilings: { trivial: TRIVIAL.description, doWrite: DO_WRITE.description },
    results: rows.map(jsonResult),
    scale: pairs.map((pair) => ({ mode: pair.mode, clients: pair.clients, step: pair.step, small: pair.small.size, large: pair.large.size, costRatio: pair.costRatio, cpuRatio: pair.cpuRatio, met: pair.met })),
    goals: jsonGoals(rows, pairs),
    checks,
    elapsedSeconds: elapsedS,
  });
  if (written) log(`wrote ${written}`);
}

await runBenchmark(log, main);
