/**
 * `npm run bench:locks` (issue 5): the Upstash wait lock, charges and payments, in one table.
 *
 *  1. Wait lock, from Node: the app's own `WaitLock` (src/lib/locks) on the app's own Upstash client
 *     (`getRedis` from src/lib/redis.ts: per-command 800 ms timeout, one retry, no auto-pipelining)
 *     against the stack's Upstash REST adapter. 1, 10 and 100 contenders on ONE key, each looping
 *     acquire → release until the step's deadline (acquires already started run to their end).
 *     Ceiling: one plain `INCR` through the same client and adapter at the same concurrency, measured
 *     just before. Latency is that of `acquire` alone.
 *  2. Charges, per mode: `POST /balance/charge {amount: 1}`, 100 clients, each its own user, so no two
 *     requests share a balance lock; beside the trivial ceiling at 100 clients.
 *  3. Payments, per mode: an open concert admitting 100,000 a window; users join (admitted), charge the
 *     seat's price, hold one seat each (set-up, not benchmark figures), then `POST /payment` pays those
 *     holds, each once, at 10 and then 50 clients, each step beside the trivial ceiling at its clients.
 *
 *
 * Ceilings of parts 2 and 3 (bench/lib/ceilings.ts), each measured at the step's clients right before
 * it, through bench-only routes of bench/lib/probe-entry.ts: the trivial 404; a DO RPC with one SQLite
 * write; one Upstash `INCR` from the Worker (`getRedis`); `SELECT 1` over Neon's HTTP path
 * (`createSql`, locally the Neon adapter's `POST /sql`; n/a with the reason when the adapter has no
 * such endpoint); and one Postgres transaction from a Durable Object's warm pool (`createPool` +
 * `withTransaction`, as the room does for holds: no room RPC fits, since the two that run one, hold
 * and cancel, need an admitted user and a free seat or a live hold). A second table gives every
 * charge and payment figure as a ratio to each of them.
 *
 * Modes: `wrangler dev`, then the same bundle on bare workerd (bench/lib/worker.ts). Afterwards a
 * direct Postgres query checks that every bench user's balance equals the sum of their ledger deltas
 * (and is what the answers imply), that no seat has more than one active reservation_seats row, and
 * that exactly the reservations answered 201 were paid.
 *
 * Flags: `--duration <s>` per step (default 5), `--mode wrangler|workerd|both` (default both),
 * `--payments <n>` most holds paid per payment step (default 400; fewer are prepared when the charge
 * rate measured just before says one step cannot use them, at least 60), `--warmup <s>` of unreported
 * trivial and DO-write load after each Worker start (default 3), `--charge-clients 100` (clients of
 * the charge step, a list: issue 19 judges charges at 50), `--latency neon=MS,redis=MS` (round-trip
 * latency the adapters add, ./lib/wire.ts), `--worker-root DIR` (the Worker from another checkout),
 * `--probe-ops 10` (0: no probe; ./lib/checkout-probe.ts: charges, holds and payments one at a time,
 * showing which round trips ran one after another), `--json <file>`. Every HTTP step also prints the Postgres and Redis round trips the adapters counted
 * per request, and issue 19's checkout goals are printed for the steps they are judged on.
 */
import os from 'node:os';
import pg from 'pg';
import type { Redis } from '@upstash/redis/cloudflare';
import { AppError } from '../src/lib/errors.ts';
import { WaitLock } from '../src/lib/locks/index.ts';
import { getRedis } from '../src/lib/redis.ts';
import { flagValue, intFlag, intListFlag, writeJsonReport } from './lib/cli.ts';
import { checkoutGoal, judgedAt } from './lib/goals.ts';
import type { Goal } from './lib/goals.ts';
import { CALLS_HEADER, CALLS_LEGEND, callsPerOp, describeLatency, formatCalls, latencyFlag, latencyLabel, readWire, setLatency } from './lib/wire.ts';
import type { CallsPerOp } from './lib/wire.ts';
import { printDependentCalls, probeCheckout } from './lib/checkout-probe.ts';
import type { DependentCalls } from './lib/checkout-probe.ts';
import { interrupted } from './lib/cleanup.ts';
import { DO_WRITE, PG_HTTP, PG_TX, TRIVIAL, UPSTASH, ceilingLoad, probeCeiling, warmUp } from './lib/ceilings.ts';
import type { CeilingKind } from './lib/ceilings.ts';
import { concertStats, createConcert, labelWithCode, userToken } from './lib/frontrow.ts';
import type { BenchStack, ConcertStats, JoinAnswer } from './lib/frontrow.ts';
import { NO_ANSWER, runLoad } from './lib/load.ts';
import type { LoadResponse, LoadResult, LoadStep, RequestSpec } from './lib/load.ts';
import { runOps } from './lib/op-load.ts';
import type { OpResult } from './lib/op-load.ts';
import { formatCounts, jsonResult, jsonWorker, printRunSettings } from './lib/report.ts';
import { runBenchmark } from './lib/run.ts';
import type { BenchRun } from './lib/run.ts';
import type { Summary } from './lib/stats.ts';
import { LATENCY_COLUMNS, formatCount, formatMs, formatRatio, latencyCells, printTable, rightAligned } from './lib/table.ts';
import { parseModes, startWorker } from './lib/worker.ts';
import type { WorkerMode, WorkerUnderTest } from './lib/worker.ts';

const DURATION_MS = intFlag('duration', 5) * 1000;
const MODES = parseModes(flagValue('mode'));
/** Most holds prepared (and paid) per payment step; see paymentsPerStep(). */
const PAYMENTS_PER_STEP = intFlag('payments', 400);
const WARMUP_S = intFlag('warmup', 3, { min: 0 });
const LATENCY = latencyFlag();
const PROBE_OPS = intFlag('probe-ops', 10, { min: 0 });
flagValue('json'); // fail on a bare --json now, not after the run

/** The ceilings of parts 2 and 3 besides the trivial 404, in the order measured (bench/lib/ceilings.ts). */
const HTTP_CEILINGS: readonly CeilingKind[] = [DO_WRITE, UPSTASH, PG_HTTP, PG_TX];

/** Contenders on the one lock key. */
const CONTENDERS = [1, 10, 100] as const;
/** Charge clients, each its own user; one step per count. */
const CHARGE_CLIENTS = intListFlag('charge-clients', [100]);
const CHARGE_USERS = Math.max(...CHARGE_CLIENTS);
/** Clients of the payment steps ("modest concurrency"). */
const PAY_CLIENTS = [10, 50] as const;
/** Fewest holds prepared per payment step, however slow the charges were. */
const MIN_PAYMENTS_PER_STEP = 60;
/** Clients of the payment set-up (join, charge, hold). */
const SETUP_CLIENTS = 100;
/** Set-up is bounded all the same. */
const MAX_SETUP_MS = 120_000;
/** Seat price, and what each paying user is charged first: exactly enough. */
const PRICE = 100;
const USER_PREFIX = 'bench-locks-';

const log = (message: string): void => console.error(`[bench:locks] ${message}`);

// ─── One table for all three parts ───────────────────────────────────────────────────────────────

/** One line of the main table: a figure, or the ceiling the next figures are compared with. */
interface Row {
  part: string;
  step: string;
  /** 'node' for the lock steps (no Worker involved), else the Worker's mode. */
  mode: 'node' | WorkerMode;
  clients: number;
  /** Successful operations: grants, INCRs, 2xx answers (404 for the trivial ceiling). */
  count: number;
  perSecond: number;
  latencyMs: Summary;
  outcomes: Record<string, number>;
  errors: number;
  /** The ceiling this figure is compared with; undefined when the row is a ceiling. */
  ceiling: Row | undefined;
  /** HTTP op rows: every ceiling measured just before at the same clients (trivial included), by name. */
  ceilings?: Map<string, Row>;
  /** HTTP rows that are themselves a ceiling. */
  isCeiling?: boolean;
  /** Lock rows: Redis commands the client sent per operation (polls and releases included). */
  redisCallsPerOp: number;
  /** HTTP rows: CPU of the Worker's process group per successful answer, ms. */
  serverMsPerOp: number;
  stackMsPerOp: number;
  clientCpuPct: number;
  stoppedBy: string;
  /** HTTP rows: round trips the adapters counted per answered request (./lib/wire.ts). */
  calls?: CallsPerOp;
  /** The machine's 1-minute load average as the step ended. */
  load1?: number;
  /** Issue 19's goal for the step, when it has one in this run. */
  goal?: Goal;
}

function opRow(part: string, result: OpResult, ceiling: Row | undefined, redisCalls: number): Row {
  return {
    part,
    step: result.name,
    mode: 'node',
    clients: result.concurrency,
    count: result.done,
    perSecond: result.perSecond,
    latencyMs: result.latencyMs,
    outcomes: result.outcomes,
    errors: result.errors,
    ceiling,
    redisCallsPerOp: redisCalls / result.done,
    serverMsPerOp: Number.NaN,
    stackMsPerOp: result.stackCpuMsPerOp,
    clientCpuPct: result.clientCpuPct,
    stoppedBy: result.stoppedBy,
  };
}

function httpRow(part: string, mode: WorkerMode, result: LoadResult, ceiling: Row | undefined): Row {
  // Per *successful* answer, so a step full of refusals does not look fast.
  const perOk = (total: number): number => (total * result.requests) / result.expected;
  return {
    part,
    step: result.name,
    mode,
    clients: result.concurrency,
    count: result.expected,
    perSecond: result.expected / result.elapsedS,
    latencyMs: result.latencyMs,
    outcomes: result.statuses,
    errors: result.errors,
    ceiling,
    redisCallsPerOp: Number.NaN,
    serverMsPerOp: perOk(result.serverCpuMsPerRequest),
    stackMsPerOp: perOk(result.stackCpuMsPerRequest),
    clientCpuPct: result.clientCpuPct,
    stoppedBy: result.stoppedBy,
  };
}

function printMainTable(rows: readonly Row[]): void {
  const ratio = (value: number, ceiling: number | undefined): string => (ceiling === undefined ? '(ceiling)' : formatRatio(value / ceiling));
  printTable(
    'bench:locks — wait lock, charges, payments (each figure beside its ceiling from the same run)',
    [
      'part',
      'step',
      'mode',
      ...rightAligned('clients', 'done', 'per s', '× ceiling'),
      ...LATENCY_COLUMNS,
      'outcomes',
      ...rightAligned('errors', 'Redis calls/op', 'srv ms/op', 'srv cost × ceiling', 'stack ms/op', 'stack cost × ceiling', 'client CPU', 'load 1m', CALLS_HEADER),
    ],
    rows.map((row) => [
      row.part,
      row.step,
      row.mode,
      formatCount(row.clients),
      formatCount(row.count),
      formatCount(row.perSecond),
      ratio(row.perSecond, row.ceiling?.perSecond),
      ...latencyCells(row.latencyMs),
      formatCounts(row.outcomes),
      formatCount(row.errors),
      Number.isFinite(row.redisCallsPerOp) ? row.redisCallsPerOp.toFixed(2) : '–',
      formatMs(row.serverMsPerOp),
      Number.isFinite(row.serverMsPerOp) ? ratio(row.serverMsPerOp, row.ceiling?.serverMsPerOp) : '–',
      formatMs(row.stackMsPerOp),
      // The trivial ceiling does no stack work, so a ratio to it says nothing; the INCR's does.
      row.mode === 'node' ? ratio(row.stackMsPerOp, row.ceiling?.stackMsPerOp) : '–',
      Number.isFinite(row.clientCpuPct) ? `${row.clientCpuPct.toFixed(0)} %` : '–',
      row.load1 === undefined ? '–' : row.load1.toFixed(2),
      formatCalls(row.calls),
    ]),
  );
  console.log(
    [
      'done, per s: successful operations (lock grants, INCRs, 2xx answers; 404s for the trivial ceiling) and',
      '  their rate from the first start to the last end; × ceiling: per s ÷ the ceiling row above it (same mode,',
      '  same clients, measured just before). Latency: wait lock = acquire alone (granted ones); INCR = one',
      '  command; HTTP = the whole request. outcomes: every settled operation by result (HTTP status + code).',
      'Redis calls/op: EVALSHA/EVAL/INCR sent by the client per successful operation (lock: polls + release).',
      "srv ms/op: CPU of the Worker's process group per successful answer; stack ms/op: the same for PostgreSQL,",
      '  redis-server and the Neon/Upstash adapters; cost × ceiling: that ÷ the ceiling row\'s — the steadiest',
      '  figures on a shared machine (stack cost only for part 1: the trivial ceiling does no stack work).',
      'client CPU: this Node process (the load generator, and in part 1 the lock client itself), % of one core;',
      '  near 100 % means the client, not the server, set the pace. load 1m: the machine\'s load average as the step ended.',
      CALLS_LEGEND,
    ].join('\n'),
  );
}

/**
 * Parts 2 and 3 against every ceiling measured just before them at the same clients: req/s ÷ the
 * ceiling's, and server CPU per op ÷ the ceiling's. Ceilings a mode could not measure are n/a.
 */
function printCeilingTable(rows: readonly Row[], runs: readonly ModeRun[]): void {
  const names = [TRIVIAL.name, ...HTTP_CEILINGS.map((kind) => kind.name)];
  const ops = rows.filter((row) => row.ceilings !== undefined);
  if (ops.length === 0) return;
  const unavailable = (mode: string, name: string): boolean => runs.find((run) => run.mode === mode)?.unavailable.has(name) ?? false;
  printTable(
    'Parts 2 and 3 against each ceiling (same mode, same clients, measured just before): per s ÷ ceiling per s  [srv ms/op ÷ ceiling srv ms/op]',
    ['part', 'step', 'mode', ...rightAligned('clients', 'per s', ...names.map((name) => `× ${name}`))],
    ops.map((row) => [
      row.part,
      row.step,
      row.mode,
      formatCount(row.clients),
      formatCount(row.perSecond),
      ...names.map((name) => {
        const ceiling = row.ceilings!.get(name);
        if (!ceiling) return unavailable(row.mode, name) ? 'n/a' : '–';
        return `${formatRatio(row.perSecond / ceiling.perSecond)} [${formatRatio(row.serverMsPerOp / ceiling.serverMsPerOp)}]`;
      }),
    ]),
  );
  console.log('Each ceiling\'s own figures (req/s, p50/p95/p99, × trivial) are its rows in the table above.');
  for (const run of runs) {
    for (const [name, reason] of run.unavailable) console.log(`n/a in ${run.mode}: ${name} — ${reason}`);
  }
}

// ─── Part 1: the wait lock from Node ─────────────────────────────────────────────────────────────

/** Counts the Redis commands a client sends, by wrapping the methods the lock and the ceiling use. */
function countingRedis(redis: Redis): { redis: Redis; calls: () => number } {
  let calls = 0;
  const counted = new Set<PropertyKey>(['evalsha', 'eval', 'incr']);
  const proxy = new Proxy(redis, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (!counted.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        calls++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { redis: proxy, calls: () => calls };
}

/** What the grants of one lock step say about the lock's correctness. */
interface FenceCheck {
  contenders: number;
  grants: number;
  firstFence: number;
  lastFence: number;
  /** Grants seen with a fence not above the one seen before (must be 0: grants are serialized). */
  outOfOrder: number;
  /** lastFence − firstFence + 1 − grants: grants Redis issued that no contender saw (must be 0). */
  unseen: number;
}

async function lockPart(bench: BenchStack, rows: Row[]): Promise<FenceCheck[]> {
  const { redis, calls } = countingRedis(
    getRedis({ UPSTASH_REDIS_REST_URL: bench.stack.upstashUrl, UPSTASH_REDIS_REST_TOKEN: bench.stack.upstashToken }),
  );
  const lock = new WaitLock({ redis });
  // Warm-up: connections, and the lock scripts loaded into Redis (the first EVALSHA meets NOSCRIPT).
  for (let i = 0; i < 20; i++) await redis.incr('bench-locks:warm-up');
  for (let i = 0; i < 5; i++) await (await lock.acquire('bench-locks:warm-up')).release();

  const fenceChecks: FenceCheck[] = [];
  for (const contenders of CONTENDERS) {
    if (interrupted.aborted) throw new Error('interrupted');
    const common = { concurrency: contenders, durationMs: DURATION_MS, signal: interrupted, stackCpuMs: () => bench.cpuMs() };
    log(`wait lock: INCR ceiling, ${contenders} clients, ${DURATION_MS / 1000} s`);
    let before = calls();
    const incr = await runOps({
      name: 'Upstash INCR',
      ...common,
      run: async () => {
        const t0 = performance.now();
        await redis.incr('bench-locks:incr');
        return { label: 'OK', ok: true, latencyMs: performance.now() - t0 };
      },
    });
    const ceiling = opRow('1 wait lock', incr, undefined, calls() - before);
    rows.push(ceiling);
    logOps(incr);

    log(`wait lock: acquire → release on one key, ${contenders} contenders, ${DURATION_MS / 1000} s`);
    const key = `bench-locks:one-key:${contenders}`;
    const fences: FenceCheck = { contenders, grants: 0, firstFence: 0, lastFence: 0, outOfOrder: 0, unseen: 0 };
    before = calls();
    const grants = await runOps({
      name: 'WaitLock acquire→release',
      ...common,
      run: async () => {
        const t0 = performance.now();
        let grant;
        try {
          grant = await lock.acquire(key);
        } catch (error) {
          // LOCK_TIMEOUT, DEPENDENCY_UNAVAILABLE: outcomes to count, not transport errors.
          if (error instanceof AppError) return { label: error.code, ok: false };
          throw error;
        }
        const latencyMs = performance.now() - t0;
        if (fences.grants === 0) fences.firstFence = grant.fence;
        else if (grant.fence <= fences.lastFence) fences.outOfOrder++;
        fences.grants++;
        fences.lastFence = grant.fence;
        const released = await grant.release();
        return { label: released ? 'granted' : 'granted, release found lease gone', ok: true, latencyMs };
      },
    });
    fences.unseen = fences.grants === 0 ? 0 : fences.lastFence - fences.firstFence + 1 - fences.grants;
    fenceChecks.push(fences);
    rows.push(opRow('1 wait lock', grants, ceiling, calls() - before));
    logOps(grants);
  }
  return fenceChecks;
}

function logOps(result: OpResult): void {
  log(
    `  ${result.name} c=${result.concurrency}: ${formatCount(result.done)} in ${result.elapsedS.toFixed(1)} s, ` +
      `${formatCount(result.perSecond)}/s, p50 ${formatMs(result.latencyMs.p50)} ms, p99 ${formatMs(result.latencyMs.p99)} ms, ` +
      `${formatCounts(result.outcomes)}, ${result.errors} errors`,
  );
}

// ─── Parts 2 and 3: through the Worker ───────────────────────────────────────────────────────────

interface BenchUser {
  userId: string;
  token: string;
}

interface PayUser extends BenchUser {
  queueToken?: string;
  /** What the set-up charge was answered: 'ok' (200), 'refused' (any other status) or no answer. */
  charge?: 'ok' | 'refused' | typeof NO_ANSWER;
  reservationId?: string;
}

/** What each mode leaves for the checks. */
interface ModeRun {
  mode: WorkerMode;
  worker: WorkerUnderTest;
  concertId: string;
  /** Charge users: how many charges each was answered 200, and how many got no answer. */
  charges: Map<string, { ok: number; noAnswer: number }>;
  /** Paying users by reservation, and what their payment was answered. */
  payUsers: PayUser[];
  paymentOutcomes: Map<string, string>;
  setup: LoadResult[];
  room: ConcertStats;
  /** Holds prepared for each payment step. */
  paymentsPerStep: number;
  /** Ceilings not measured in this mode, and why (e.g. the Neon adapter's HTTP endpoint missing). */
  unavailable: Map<string, string>;
  probe: { label: string; latency: string; results: DependentCalls[] } | undefined;
}

async function runMode(mode: WorkerMode, bench: BenchStack, rows: Row[], raw: { mode: WorkerMode; result: LoadResult; trivial: LoadResult | undefined }[]): Promise<ModeRun> {
  const worker = await startWorker({ mode, vars: bench.vars, log });
  const common = {
    baseUrl: worker.url,
    signal: interrupted,
    serverCpuMs: () => worker.cpuMs(),
    stackCpuMs: () => bench.cpuMs(),
  };
  const measure = async (part: string, step: Omit<LoadStep, keyof typeof common>, ceiling: { row: Row; result: LoadResult; ceilings?: Map<string, Row> } | undefined) => {
    if (interrupted.aborted) throw new Error('interrupted');
    log(`${mode}: ${step.name}, ${step.concurrency} clients`);
    const wireBefore = await readWire(bench.stack);
    const result = await runLoad({ ...common, ...step });
    const row = httpRow(part, mode, result, ceiling?.row);
    row.calls = callsPerOp(wireBefore, await readWire(bench.stack), result.requests);
    row.load1 = os.loadavg()[0];
    if (ceiling?.ceilings) row.ceilings = ceiling.ceilings;
    rows.push(row);
    raw.push({ mode, result, trivial: ceiling?.result });
    log(
      `  ${mode}: ${result.name} c=${result.concurrency}: ${formatCount(result.expected)} ok in ${result.elapsedS.toFixed(1)} s, ` +
        `${formatCount(row.perSecond)}/s, p50 ${formatMs(result.latencyMs.p50)} ms, p99 ${formatMs(result.latencyMs.p99)} ms, ` +
        `${formatCounts(result.statuses)}, ${result.errors} errors (stopped by ${result.stoppedBy})`,
    );
    return { row, result };
  };
  await warmUp({ baseUrl: worker.url, concurrency: CHARGE_USERS, signal: interrupted }, WARMUP_S, (m) => log(`${mode}: ${m}`));
  // Which of the HTTP ceilings this Worker and stack can serve: one request each, before any is measured.
  const unavailable = new Map<string, string>();
  const available: CeilingKind[] = [];
  for (const kind of HTTP_CEILINGS) {
    const probe = await probeCeiling(worker.url, kind);
    if (probe.ok) available.push(kind);
    else {
      unavailable.set(kind.name, probe.reason);
      log(`${mode}: ceiling "${kind.name}" n/a: ${probe.reason}`);
    }
  }
  /** The trivial 404, then every available ceiling at `clients`; the measured step that follows is compared with each. */
  const trivial = async (part: string, clients: number) => {
    const trivialCeiling = await measure(part, ceilingLoad(TRIVIAL, { ...common, concurrency: clients, durationMs: DURATION_MS }), undefined);
    const ceilings = new Map<string, Row>([[TRIVIAL.name, trivialCeiling.row]]);
    for (const kind of available) {
      const { row } = await measure(part, ceilingLoad(kind, { ...common, concurrency: clients, durationMs: DURATION_MS }), trivialCeiling);
      row.isCeiling = true;
      ceilings.set(kind.name, row);
    }
    return { ...trivialCeiling, ceilings };
  };

  // Part 2: charges, 100 users, one per client.
  const chargeUsers: BenchUser[] = await Promise.all(
    Array.from({ length: CHARGE_USERS }, async (_, i) => {
      const userId = `${USER_PREFIX}${mode}-charge-${i}`;
      return { userId, token: await userToken(bench.authSecret, userId) };
    }),
  );
  const charges = new Map(chargeUsers.map((user) => [user.userId, { ok: 0, noAnswer: 0 }]));
  let charge: { row: Row } | undefined;
  for (const chargeClients of CHARGE_CLIENTS) {
    const trivialCharge = await trivial('2 charge', chargeClients);
    charge = await measure(
      '2 charge',
      {
        name: 'POST /balance/charge {amount: 1}',
        concurrency: chargeClients,
        durationMs: DURATION_MS,
        next: (client) => ({ method: 'POST', path: '/balance/charge', headers: { authorization: `Bearer ${chargeUsers[client]!.token}` }, json: { amount: 1 } }),
        expect: (r) => r.status === 200,
        label: labelWithCode,
        onResponse: (r, _request, client) => {
          if (r.status === 200) charges.get(chargeUsers[client]!.userId)!.ok++;
        },
        onError: (_error, _request, client) => charges.get(chargeUsers[client]!.userId)!.noAnswer++,
      },
      trivialCharge,
    );
    charge.row.goal = checkoutGoal('charge', latencyLabel(LATENCY));
  }

  // Part 3 set-up: an open concert; users join (admitted), charge the price, hold one seat each.
  // Each hold costs three requests, one of them a charge, so preparing far more than a payment step can
  // use in --duration would spend minutes on set-up on a busy machine. A payment does at least a charge's
  // work, so the charge rate just measured bounds it: prepare what that rate fills in one step.
  const perStep = paymentsPerStep(charge!.row.perSecond);
  const users = perStep * PAY_CLIENTS.length;
  const concertId = await createConcert(worker.url, bench.adminToken, {
    title: `bench:locks ${mode}`,
    seats: users,
    price: PRICE,
    salesOpenAt: new Date(Date.now() - 60_000),
    queue: { admitPerWindow: 100_000 },
  });
  log(`${mode}: concert ${concertId}, ${formatCount(users)} seats at ${PRICE}, sales open, 100,000 admitted a window`);
  const payUsers: PayUser[] = await Promise.all(
    Array.from({ length: users }, async (_, i) => {
      const userId = `${USER_PREFIX}${mode}-pay-${i}`;
      return { userId, token: await userToken(bench.authSecret, userId) };
    }),
  );
  const setup: LoadResult[] = [];
  /** Runs one set-up request per user that `requestFor` gives one; `onAnswer` gets undefined for no answer. */
  const setupStep = async (
    name: string,
    requestFor: (user: PayUser, index: number) => RequestSpec | undefined,
    onAnswer: (user: PayUser, r: LoadResponse | undefined) => void,
    expectStatus: number,
  ) => {
    if (interrupted.aborted) throw new Error('interrupted');
    const userOf = new WeakMap<RequestSpec, PayUser>();
    let next = 0;
    log(`${mode}: set-up: ${name}, ${SETUP_CLIENTS} clients`);
    const result = await runLoad({
      ...common,
      name,
      concurrency: SETUP_CLIENTS,
      durationMs: MAX_SETUP_MS,
      next: () => {
        while (next < payUsers.length) {
          const index = next++;
          const user = payUsers[index]!;
          const request = requestFor(user, index);
          if (request) {
            userOf.set(request, user);
            return request;
          }
        }
        return undefined;
      },
      expect: (r) => r.status === expectStatus,
      label: labelWithCode,
      onResponse: (r, request) => onAnswer(userOf.get(request)!, r),
      onError: (_error, request) => onAnswer(userOf.get(request)!, undefined),
    });
    setup.push(result);
    log(`  ${mode}: ${name}: ${formatCount(result.expected)} of ${formatCount(result.requests)} ok, ${formatCount(result.rps)} req/s, ${formatCounts(result.statuses)}, ${result.errors} errors`);
  };
  await setupStep(
    'join (admitted)',
    (user) => ({ method: 'POST', path: '/queue/token', headers: { authorization: `Bearer ${user.token}` }, json: { concertId } }),
    (user, r) => {
      const answer = r?.status === 201 ? r.json<JoinAnswer>() : undefined;
      if (answer?.status === 'admitted') user.queueToken = answer.token;
    },
    201,
  );
  await setupStep(
    `charge ${PRICE}`,
    (user) =>
      user.queueToken === undefined
        ? undefined
        : { method: 'POST', path: '/balance/charge', headers: { authorization: `Bearer ${user.token}` }, json: { amount: PRICE } },
    (user, r) => (user.charge = r === undefined ? NO_ANSWER : r.status === 200 ? 'ok' : 'refused'),
    200,
  );
  await setupStep(
    'hold 1 seat',
    (user, index) =>
      user.charge !== 'ok' || user.queueToken === undefined
        ? undefined
        : {
            method: 'POST',
            path: '/reservations',
            headers: { authorization: `Bearer ${user.token}`, 'queue-token': user.queueToken },
            json: { concertId, seatNumber: index + 1 },
          },
    (user, r) => (user.reservationId = r?.status === 201 ? r.json<{ reservationId?: string }>()?.reservationId : undefined),
    201,
  );

  // Part 3: pay the holds, each once, PAYMENTS_PER_STEP per step.
  const held = payUsers.filter((user) => user.reservationId !== undefined);
  const paymentOutcomes = new Map<string, string>();
  for (const [k, clients] of PAY_CLIENTS.entries()) {
    const slice = held.slice(k * perStep, (k + 1) * perStep);
    const reservationOf = (request: RequestSpec): string => (request.json as { reservationId: string }).reservationId;
    let next = 0;
    const ceiling = await trivial('3 payment', clients);
    const payment = await measure(
      '3 payment',
      {
        name: 'POST /payment {reservationId}',
        concurrency: clients,
        durationMs: DURATION_MS,
        next: () => {
          const user = slice[next++];
          return user && { method: 'POST', path: '/payment', headers: { authorization: `Bearer ${user.token}` }, json: { reservationId: user.reservationId } };
        },
        expect: (r) => r.status === 201,
        label: labelWithCode,
        onResponse: (r, request) => paymentOutcomes.set(reservationOf(request), labelWithCode(r)),
        onError: (_error, request) => paymentOutcomes.set(reservationOf(request), NO_ANSWER),
      },
      ceiling,
    );
    payment.row.goal = checkoutGoal('payment', latencyLabel(LATENCY));
  }
  const room = await concertStats(worker.url, bench.adminToken, concertId);
  const probe = PROBE_OPS > 0 ? { label: mode, ...(await probeCheckout(worker.url, bench, { label: mode, runLatency: LATENCY, ops: PROBE_OPS, log })) } : undefined;
  await worker.stop();
  return { mode, worker, concertId, charges, payUsers, paymentOutcomes, setup, room, paymentsPerStep: perStep, unavailable, probe };
}

/** Holds to prepare per payment step: what `chargesPerSecond` fills in one step, within [MIN, --payments]. */
function paymentsPerStep(chargesPerSecond: number): number {
  const fill = Number.isFinite(chargesPerSecond) ? Math.ceil(chargesPerSecond * (DURATION_MS / 1000) * 0.8) : PAYMENTS_PER_STEP;
  return Math.min(PAYMENTS_PER_STEP, Math.max(MIN_PAYMENTS_PER_STEP, fill));
}

// ─── Checks (Postgres, queried directly) ─────────────────────────────────────────────────────────

const LEDGER_SQL = `
WITH b AS (SELECT user_id, amount FROM balances WHERE user_id LIKE $1),
     l AS (SELECT user_id, sum(delta) AS total, count(*) AS n FROM balance_ledger WHERE user_id LIKE $1 GROUP BY user_id)
SELECT count(*)                                                             AS users,
       count(*) FILTER (WHERE coalesce(b.amount, 0) <> coalesce(l.total, 0)) AS mismatched,
       count(*) FILTER (WHERE b.amount < 0)                                 AS negative,
       coalesce(sum(l.n), 0)                                                AS "ledgerRows"
  FROM b FULL JOIN l USING (user_id)`;

const SEATS_SQL = `
SELECT (SELECT count(*) FROM reservation_seats WHERE active) AS "activeRows",
       (SELECT count(*) FROM (SELECT seat_id FROM reservation_seats WHERE active
                               GROUP BY seat_id HAVING count(*) > 1) t)    AS "seatsWithSeveral"`;

const BALANCES_SQL = `SELECT user_id, amount FROM balances WHERE user_id LIKE $1`;

const RESERVATIONS_SQL = `
SELECT r.id, r.status, p.id IS NOT NULL AS paid,
       (SELECT count(*) FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
         WHERE rs.reservation_id = r.id AND rs.active AND s.status = 'sold') AS sold
  FROM reservations r LEFT JOIN payments p ON p.reservation_id = r.id
 WHERE r.concert_id = $1`;

interface LedgerCheck {
  users: number;
  mismatched: number;
  negative: number;
  ledgerRows: number;
}

interface ModeCheck {
  mode: WorkerMode;
  /** Charge users whose balance is not their 200 answers (plus at most their unanswered charges). */
  chargeUsers: number;
  chargesAnswered200: number;
  chargeBalanceTotal: number;
  chargeUsersOff: number;
  /** Paying users whose balance is not PRICE − PRICE·paid. */
  payUsersOff: number;
  reservations: number;
  answered201: number;
  answered201NotConfirmed: number;
  refusedButPaid: number;
  noAnswer: number;
  paidRows: number;
  confirmed: number;
  soldSeats: number;
  roomSold: number;
  ok: boolean;
}

async function checkPostgres(databaseUrl: string, runs: readonly ModeRun[]): Promise<{ ledger: LedgerCheck; seats: { activeRows: number; seatsWithSeveral: number }; modes: ModeCheck[] }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const numbers = <T>(row: Record<string, unknown> | undefined): T =>
      Object.fromEntries(Object.entries(row ?? {}).map(([key, value]) => [key, Number(value)])) as T;
    const ledger = numbers<LedgerCheck>((await client.query<Record<string, unknown>>(LEDGER_SQL, [`${USER_PREFIX}%`])).rows[0]);
    const seats = numbers<{ activeRows: number; seatsWithSeveral: number }>((await client.query<Record<string, unknown>>(SEATS_SQL)).rows[0]);
    const modes: ModeCheck[] = [];
    for (const run of runs) {
      const balances = new Map(
        (await client.query<{ user_id: string; amount: string }>(BALANCES_SQL, [`${USER_PREFIX}${run.mode}-%`])).rows.map((r) => [r.user_id, Number(r.amount)]),
      );
      let chargesAnswered200 = 0;
      let chargeBalanceTotal = 0;
      let chargeUsersOff = 0;
      for (const [userId, { ok, noAnswer }] of run.charges) {
        const balance = balances.get(userId) ?? 0;
        chargesAnswered200 += ok;
        chargeBalanceTotal += balance;
        if (balance < ok || balance > ok + noAnswer) chargeUsersOff++;
      }
      const reservations = (await client.query<{ id: string; status: string; paid: boolean; sold: string }>(RESERVATIONS_SQL, [run.concertId])).rows;
      const byId = new Map(reservations.map((r) => [r.id, r]));
      let answered201 = 0;
      let answered201NotConfirmed = 0;
      let refusedButPaid = 0;
      let noAnswer = 0;
      for (const [reservationId, outcome] of run.paymentOutcomes) {
        const row = byId.get(reservationId);
        const paid = row?.status === 'confirmed' && row.paid && Number(row.sold) === 1;
        if (outcome === '201') {
          answered201++;
          if (!paid) answered201NotConfirmed++;
        } else if (outcome === NO_ANSWER) noAnswer++;
        else if (row?.paid || row?.status === 'confirmed') refusedButPaid++;
      }
      let payUsersOff = 0;
      for (const user of run.payUsers) {
        // A charge with no answer may or may not have landed; every other user's balance is known.
        if (user.charge === NO_ANSWER) continue;
        const row = user.reservationId === undefined ? undefined : byId.get(user.reservationId);
        // Refused charges (e.g. 503, fail closed) must have written nothing.
        const expected = user.charge === 'ok' && !row?.paid ? PRICE : 0;
        if ((balances.get(user.userId) ?? 0) !== expected) payUsersOff++;
      }
      const paidRows = reservations.filter((r) => r.paid).length;
      const confirmed = reservations.filter((r) => r.status === 'confirmed').length;
      const soldSeats = reservations.reduce((sum, r) => sum + Number(r.sold), 0);
      const ok =
        chargeUsersOff === 0 &&
        payUsersOff === 0 &&
        answered201NotConfirmed === 0 &&
        refusedButPaid === 0 &&
        paidRows === confirmed &&
        soldSeats === confirmed &&
        paidRows >= answered201 &&
        paidRows <= answered201 + noAnswer &&
        run.room.seats.sold === confirmed;
      modes.push({
        mode: run.mode,
        chargeUsers: run.charges.size,
        chargesAnswered200,
        chargeBalanceTotal,
        chargeUsersOff,
        payUsersOff,
        reservations: reservations.length,
        answered201,
        answered201NotConfirmed,
        refusedButPaid,
        noAnswer,
        paidRows,
        confirmed,
        soldSeats,
        roomSold: run.room.seats.sold,
        ok,
      });
    }
    return { ledger, seats, modes };
  } finally {
    await client.end();
  }
}

// ─── Report ──────────────────────────────────────────────────────────────────────────────────────

function printAnomalies(rows: readonly Row[], fences: readonly FenceCheck[], runs: readonly ModeRun[]): void {
  const lines: string[] = [];
  const normal = new Set(['granted', 'OK', '200', '201', '404']);
  for (const row of rows) {
    const odd = Object.entries(row.outcomes).filter(([label]) => !normal.has(label) || (label === '404' && !row.step.startsWith('trivial')));
    if (odd.length > 0) lines.push(`${row.mode} ${row.step} c=${row.clients}: ${formatCounts(Object.fromEntries(odd))}`);
    if (row.errors > 0) lines.push(`${row.mode} ${row.step} c=${row.clients}: ${formatCount(row.errors)} operations got no answer / threw`);
  }
  for (const f of fences) {
    if (f.outOfOrder > 0 || f.unseen !== 0) lines.push(`wait lock c=${f.contenders}: fences out of order ${f.outOfOrder}, grants unseen ${f.unseen}`);
  }
  for (const run of runs) {
    for (const result of run.setup) {
      if (result.expected !== result.requests || result.errors > 0) {
        lines.push(`${run.mode} set-up ${result.name}: ${formatCounts(result.statuses)}, ${result.errors} errors`);
        for (const sample of result.samples) lines.push(`    HTTP ${sample.status} ${sample.body}`);
      }
    }
    if (run.worker.logs.count > 0) {
      lines.push(`${run.mode}: the runtime printed ${formatCount(run.worker.logs.count)} warning/error line(s); first ones:`);
      for (const line of run.worker.logs.first) lines.push(`    ${line}`);
    }
  }
  console.log('');
  if (lines.length === 0) console.log('Anomalies: none (no non-2xx answers, no LOCK_TIMEOUT, no transport errors, no runtime warnings).');
  else {
    console.log('Anomalies:');
    for (const line of lines) console.log(`  ${line}`);
  }
}

function printRawSamples(raw: readonly { mode: WorkerMode; result: LoadResult }[]): void {
  const lines: string[] = [];
  for (const { mode, result } of raw) {
    for (const [message, n] of Object.entries(result.errorMessages)) lines.push(`  ${mode} ${result.name} c=${result.concurrency}: ${n} × ${message}`);
    for (const sample of result.samples) lines.push(`  ${mode} ${result.name} c=${result.concurrency}: HTTP ${sample.status} ${sample.body}`);
  }
  if (lines.length > 0) {
    console.log('\nUnexpected answers and transport errors (samples):');
    for (const line of lines) console.log(line);
  }
}

/** Issue 19's checkout goals, one line per step judged (workerd; see ./lib/goals.ts). */
function printCheckoutGoals(rows: readonly Row[]): void {
  const judged = rows.filter((row) => row.goal && row.mode !== 'node' && judgedAt(row.goal, row.mode, row.clients));
  if (judged.length === 0) {
    console.log(
      `\nGoals (issue 19): none judged in this run — charge and payment ratios at 50 clients without --latency (charges: --charge-clients 50), ` +
        `p50 at 10 clients with --latency neon=20,redis=10; workerd mode only.`,
    );
    return;
  }
  printTable(
    'Goals (issue 19): workerd; ratios to the trivial 404 measured just before at the same clients, p50 with --latency',
    ['step', ...rightAligned('clients'), 'goal', 'measured', CALLS_HEADER, 'verdict'],
    judged.map((row) => {
      const ratio = row.ceiling ? row.perSecond / row.ceiling.perSecond : Number.NaN;
      const met = row.goal!.met({ ratio, p50: row.latencyMs.p50, p99: row.latencyMs.p99 });
      return [
        row.step,
        formatCount(row.clients),
        row.goal!.text,
        `${formatRatio(ratio)} trivial, p50 ${formatMs(row.latencyMs.p50)} ms, p99 ${formatMs(row.latencyMs.p99)} ms`,
        formatCalls(row.calls),
        met ? 'met' : 'NOT MET',
      ];
    }),
  );
}

async function main({ bench, startedAt, elapsedSeconds }: BenchRun): Promise<void> {
  if (LATENCY) {
    await setLatency(bench.stack, LATENCY);
    log(`latency on: ${latencyLabel(LATENCY)}`);
  }
  const rows: Row[] = [];
  const raw: { mode: WorkerMode; result: LoadResult; trivial: LoadResult | undefined }[] = [];
  const fences = await lockPart(bench, rows);
  const runs: ModeRun[] = [];
  for (const mode of MODES) runs.push(await runMode(mode, bench, rows, raw));
  const checks = await checkPostgres(bench.stack.databaseUrl, runs);
  const elapsedS = elapsedSeconds();

  console.log(
    `bench:locks — ${DURATION_MS / 1000} s per step; wait lock from Node with 1/10/100 contenders on one key; ` +
      `charges by ${CHARGE_CLIENTS.join(' and ')} users; payments of distinct holds (${runs.map((r) => `${r.mode} ${formatCount(r.paymentsPerStep)}`).join(', ')} per step) at ${PAY_CLIENTS.join(' and ')} clients; ` +
      `modes ${MODES.join(' and ')}. One 2-core machine for client, Worker, Postgres and Redis: read the ratio columns.`,
  );
  printRunSettings(bench, runs.map((run) => run.worker), {
    'Upstash INCR': 'ceiling of part 1: redis.incr() on one key through getRedis() (src/lib/redis.ts) → Upstash REST adapter → redis-server, from this Node process',
    'WaitLock acquire→release':
      'new WaitLock({ redis }) from src/lib/locks with its defaults (timeout 5 s, lease 10 s, polls 10–250 ms, head 10 ms), same client; ' +
      'every contender loops acquire(key) → grant.release() on ONE key; latency = acquire',
    'trivial 404': TRIVIAL.description,
    ...Object.fromEntries(HTTP_CEILINGS.map((kind) => [kind.name, kind.description])),
    'POST /balance/charge': `{amount: 1}, client i always as user ${USER_PREFIX}<mode>-charge-i: one balance lock per user, never contended`,
    'POST /payment':
      `{reservationId} of a distinct held 1-seat reservation (price ${PRICE}) of a distinct admitted user charged exactly ${PRICE}; each paid once; ` +
      `the step ends when its holds are used up or at --duration. Holds per step = the charges/s of part 2 (same mode) × duration × 0.8, ` +
      `within [${MIN_PAYMENTS_PER_STEP}, ${formatCount(PAYMENTS_PER_STEP)}] (--payments): a payment does at least a charge's work, and set-up costs 3 requests a hold`,
  }, { latency: describeLatency(LATENCY) });
  for (const run of runs) {
    console.log(`\nSet-up of part 3, ${run.mode} (not benchmark figures): ` +
      run.setup.map((r) => `${r.name}: ${formatCount(r.expected)}/${formatCount(r.requests)} ok at ${formatCount(r.rps)} req/s`).join('; '));
  }

  printMainTable(rows);
  printCeilingTable(rows, runs);
  printCheckoutGoals(rows);
  printDependentCalls(
    'Dependent calls per checkout operation (probe: 1 client, sequential, traced by the adapters)',
    runs.flatMap((run) => (run.probe ? [run.probe] : [])),
  );
  console.log(
    `Payment steps: ${rows
      .filter((row) => row.part === '3 payment' && row.ceiling !== undefined && !row.isCeiling)
      .map((row) => `${row.mode} c=${row.clients} ${row.stoppedBy === 'exhausted' ? 'used up its holds' : `stopped by ${row.stoppedBy}`} after ${formatCount(row.count)} payments`)
      .join('; ')}.`,
  );

  console.log('\nChecks (Postgres queried directly after the run)');
  console.log(`  ledger: ${LEDGER_SQL.trim().replace(/\s+/g, ' ')}  [$1 = '${USER_PREFIX}%']`);
  console.log(`  seats:  ${SEATS_SQL.trim().replace(/\s+/g, ' ')}`);
  const { ledger, seats } = checks;
  const ledgerOk = ledger.mismatched === 0 && ledger.negative === 0;
  console.log(
    `  each bench user's balance = the sum of their ledger deltas: ${ledgerOk ? 'yes' : 'NO'} — ${formatCount(ledger.users)} users, ` +
      `${formatCount(ledger.ledgerRows)} ledger rows, ${formatCount(ledger.mismatched)} mismatched, ${formatCount(ledger.negative)} negative`,
  );
  const seatsOk = seats.seatsWithSeveral === 0;
  console.log(
    `  no seat has more than one active reservation_seats row: ${seatsOk ? 'yes' : `NO — ${formatCount(seats.seatsWithSeveral)} seats`} ` +
      `(${formatCount(seats.activeRows)} active rows in all)`,
  );
  const fencesOk = fences.every((f) => f.outOfOrder === 0 && f.unseen === 0);
  console.log(
    `  wait lock fences: ${fences.map((f) => `c=${f.contenders}: ${formatCount(f.grants)} grants, fences ${f.firstFence}..${f.lastFence}, out of order ${f.outOfOrder}, unseen ${f.unseen}`).join('; ')} → ${fencesOk ? 'ok' : 'MISMATCH'}`,
  );
  for (const c of checks.modes) {
    console.log(
      `  ${c.mode}: charges: ${formatCount(c.chargesAnswered200)} answered 200, the ${c.chargeUsers} users' balances sum to ${formatCount(c.chargeBalanceTotal)}, ` +
        `users whose balance is not their 200s: ${c.chargeUsersOff}`,
    );
    console.log(
      `    payments: ${formatCount(c.answered201)} answered 201 (not confirmed+paid+sold in Postgres: ${c.answered201NotConfirmed}), refused but paid ${c.refusedButPaid}, ` +
        `no answer ${c.noAnswer}; Postgres: ${formatCount(c.reservations)} reservations, ${formatCount(c.confirmed)} confirmed, ${formatCount(c.paidRows)} payment rows, ` +
        `${formatCount(c.soldSeats)} sold seats; room sold ${formatCount(c.roomSold)}; paying users with a wrong balance ${c.payUsersOff} → ${c.ok ? 'ok' : 'MISMATCH'}`,
    );
  }
  if (!ledgerOk || !seatsOk || !fencesOk || checks.modes.some((c) => !c.ok)) process.exitCode = 1;
  printRawSamples(raw);
  printAnomalies(rows, fences, runs);
  console.log(`\nTotal ${elapsedS.toFixed(0)} s (stack, lock steps, Worker start-ups, set-up and ${rows.length} table rows).`);

  const written = await writeJsonReport({
    benchmark: 'locks',
    startedAt: startedAt.toISOString(),
    durationPerStepS: DURATION_MS / 1000,
    contenders: CONTENDERS,
    chargeUsers: CHARGE_USERS,
    chargeClients: CHARGE_CLIENTS,
    dependentCalls: runs.flatMap((run) => (run.probe ? [run.probe] : [])),
    latency: LATENCY ?? null,
    payClients: PAY_CLIENTS,
    maxPaymentsPerStep: PAYMENTS_PER_STEP,
    paymentsPerStep: Object.fromEntries(runs.map((r) => [r.mode, r.paymentsPerStep])),
    modes: MODES,
    stack: bench.describe(),
    workers: runs.map((run) => jsonWorker(run.worker)),
    trivial: TRIVIAL.description,
    ceilings: Object.fromEntries(HTTP_CEILINGS.map((kind) => [kind.name, kind.description])),
    unavailableCeilings: Object.fromEntries(runs.map((run) => [run.mode, Object.fromEntries(run.unavailable)])),
    table: rows.map(({ ceiling, ceilings, goal, ...row }) => ({
      ...row,
      ...(goal && row.mode !== 'node' && judgedAt(goal, row.mode, row.clients)
        ? { goal: goal.text, goalMet: goal.met({ ratio: ceiling ? row.perSecond / ceiling.perSecond : Number.NaN, p50: row.latencyMs.p50, p99: row.latencyMs.p99 }) }
        : {}),
      ceilingPerSecond: ceiling?.perSecond,
      ratioToCeiling: ceiling ? row.perSecond / ceiling.perSecond : undefined,
      ...(ceilings ? { ratioToEachCeiling: Object.fromEntries([...ceilings].map(([name, c]) => [name, row.perSecond / c.perSecond])) } : {}),
    })),
    httpResults: raw.map(jsonResult),
    setup: runs.map((run) => ({ mode: run.mode, concertId: run.concertId, steps: run.setup.map((result) => jsonResult({ mode: run.mode, result, trivial: undefined })) })),
    checks: { ...checks, fences, ledgerSql: LEDGER_SQL.trim(), seatsSql: SEATS_SQL.trim(), reservationsSql: RESERVATIONS_SQL.trim() },
    elapsedSeconds: elapsedS,
  });
  if (written) log(`wrote ${written}`);
}

await runBenchmark(log, main);
