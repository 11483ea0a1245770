/**
 * `npm run bench:holds` (issues 4 and 8): seat holds on small and large venues, the seat map and the
 * seed's by-date call, and payment confirmations with many open queue WebSockets.
 *
 * Per mode (`wrangler dev`, then the same bundle on workerd without wrangler's proxy; see
 * bench/lib/worker.ts), every part opening with its two ceilings (trivial 404 and DO write,
 * bench/lib/ceilings.ts) measured right before, at the same clients:
 *
 *  A. Seat map and by-date: a seed-sized concert (`--seatmap-seats`, default 50, as the seed's
 *     concerts), sales open, on a date no other concert has; `GET /concerts/:id/seats` and `GET
 *     /reservations/:date` on that same concert over and over ("cached": whatever the app caches, it
 *     can cache here; an edge cache for both is being added in issue 8).
 *  B. Holds, for each seat count (`--seat-counts`, default 1,000 and 50,000): a concert with that many
 *     seats, sales open, admitting 100,000 a window; `--holds` ÷ 4 users join (201 admitted, measured
 *     too), then the clients take users from a shared list and hold that user's four seats one request
 *     at a time (the per-user cap), each request the next seat nobody has asked for, seats 1..`--holds`
 *     (default: the smallest seat count, so every size holds the same number); until all are asked for
 *     or `--max-hold-seconds`. Postgres is then queried directly: no seat has more than one active
 *     `reservation_seats` row, the seats held are exactly those answered 201, and the room agrees.
 *  C. Payments with open WebSockets: a concert of 2 × `--payments` seats; that many users join
 *     (admitted), are charged the price and hold one seat each (set-up); the line is paused and
 *     `--sockets` more users (default 10,000) join and wait. `POST /payment` pays `--payments` holds
 *     with no socket open; then every waiting user opens `GET /queue/ws?token=…` and the other
 *     `--payments` holds are paid with them all open. Each payment ends a session, so the room
 *     announces to every socket.
 *
 * A scale table compares each step at the large size (seats, sockets) with the small one (goal: at
 * most 1.3× the cost), and issue 8's goals (workerd, 50 clients) are printed with the figures.
 *
 * Flags: `--duration <s>` per timed step (default 10), `--max-hold-seconds <s>` (default 60),
 * `--seat-counts 1000,50000`, `--holds <n>`, `--seatmap-seats 50`, `--payments 300`, `--sockets 10000`
 * (0 skips part C's socket step), `--clients 50`, `--mode wrangler|workerd|both` (default both),
 * `--warmup <s>` (default 3), `--parts A,B,C` (default all), `--latency neon=MS,redis=MS` (round-trip
 * latency the adapters add, ./lib/wire.ts; issue 19's p50 goals at `--clients 10 --latency
 * neon=20,redis=10`), `--worker-root DIR` (the Worker from another checkout), `--probe-ops 10` (0: no
 * probe), `--json <file>`. Every step also prints the Postgres and Redis round trips the adapters
 * counted per request, and per mode a probe (./lib/checkout-probe.ts) sends charges, holds and
 * payments one at a time and shows which of those round trips ran one after another.
 */
import pg from 'pg';
import { flagValue, intFlag, intListFlag, writeJsonReport } from './lib/cli.ts';
import { DO_WRITE, TRIVIAL, ceilingLoad, warmUp } from './lib/ceilings.ts';
import type { Ceilings } from './lib/ceilings.ts';
import { interrupted } from './lib/cleanup.ts';
import { callJson, concertStats, createConcert, labelWithCode, userToken } from './lib/frontrow.ts';
import type { BenchStack, ConcertStats, JoinAnswer } from './lib/frontrow.ts';
import os from 'node:os';
import { GOALS, checkoutGoal, jsonGoals, printGoalSummary, printScaleTable, scalePairs } from './lib/goals.ts';
import { NO_ANSWER, runLoad } from './lib/load.ts';
import type { LoadResponse, LoadResult, LoadStep, RequestSpec } from './lib/load.ts';
import { formatCounts, jsonResult, jsonWorker, printAnomalies, printLoadTable, printRunSettings } from './lib/report.ts';
import type { Measured } from './lib/report.ts';
import { runBenchmark } from './lib/run.ts';
import type { BenchRun } from './lib/run.ts';
import { FDS_PER_SOCKET, maxSockets, openFileLimit, openSockets } from './lib/sockets.ts';
import { formatCount } from './lib/table.ts';
import { parseModes, startWorker } from './lib/worker.ts';
import { printDependentCalls, probeCheckout } from './lib/checkout-probe.ts';
import type { DependentCalls } from './lib/checkout-probe.ts';
import { callsPerOp, describeLatency, latencyFlag, latencyLabel, readWire, setLatency } from './lib/wire.ts';
import type { WorkerMode, WorkerUnderTest } from './lib/worker.ts';

const DURATION_MS = intFlag('duration', 10) * 1000;
const MAX_HOLD_MS = intFlag('max-hold-seconds', 60) * 1000;
const SEAT_COUNTS = intListFlag('seat-counts', [1000, 50_000]);
const HOLDS = Math.min(intFlag('holds', Math.min(...SEAT_COUNTS)), Math.min(...SEAT_COUNTS));
const SEATMAP_SEATS = intFlag('seatmap-seats', 50);
const PAYMENTS = intFlag('payments', 300);
const SOCKETS_ASKED = intFlag('sockets', 10_000, { min: 0 });
const CLIENTS = intFlag('clients', 50);
const WARMUP_S = intFlag('warmup', 3, { min: 0 });
const MODES = parseModes(flagValue('mode'));
const LATENCY = latencyFlag();
const PROBE_OPS = intFlag('probe-ops', 10, { min: 0 });
/** Goals of the cached reads and joins are judged without --latency only; checkout's by ./lib/goals.ts checkoutGoal. */
const NEAR = LATENCY === undefined;
const PARTS = new Set((flagValue('parts') ?? 'A,B,C').toUpperCase().split(','));
for (const part of PARTS) if (!['A', 'B', 'C'].includes(part)) throw new Error(`--parts takes A, B and C separated by commas, got "${part}"`);
flagValue('json'); // fail on a bare --json now, not after the run

/**
 * Sockets part C opens in `mode`: `--sockets`, capped by the open-file limit (the runtime holds 2–4
 * descriptors per socket and past the limit refuses every connection), with the reason when capped.
 */
function socketsFor(mode: WorkerMode): { sockets: number; note: string | undefined } {
  const sockets = Math.min(SOCKETS_ASKED, maxSockets(mode));
  const note =
    sockets < SOCKETS_ASKED
      ? `${mode}: ${formatCount(SOCKETS_ASKED)} sockets asked for, capped at ${formatCount(sockets)}: the open-file limit is ` +
        `${formatCount(openFileLimit() ?? 0)} (ulimit -n, not raisable here) and ${mode === 'wrangler' ? "wrangler's proxy workerd" : 'workerd'} holds ` +
        `${FDS_PER_SOCKET[mode]} descriptors per WebSocket; past the limit it refuses every connection`
      : undefined;
  return { sockets, note };
}

/** The per-user cap (DESIGN.md §3). */
const SEATS_PER_USER = 4;
const USERS = Math.ceil(HOLDS / SEATS_PER_USER);
/** Set-up steps are bounded all the same. */
const MAX_SETUP_MS = 180_000;
/** Clients of set-up steps (joins, charges, set-up holds). */
const SETUP_CLIENTS = 100;
/** Seat price, and what each paying user is charged first: exactly enough. */
const PRICE = 100;
/** Settings that keep the room quiet during a run: no window closes, no session or hold ends. */
const QUIET_QUEUE = { admitPerWindow: 100_000, windowSeconds: 3600, sessionSeconds: 3600, holdSeconds: 3600 } as const;

const log = (message: string): void => console.error(`[bench:holds] ${message}`);

/** Every concert of a run starts on a day of its own, so `GET /reservations/:date` finds exactly one. */
let concertDays = 0;
function nextConcertStart(): Date {
  const day = new Date();
  day.setUTCHours(20, 0, 0, 0);
  day.setUTCDate(day.getUTCDate() + 400 + concertDays++);
  return day;
}

interface Admitted {
  userToken: string;
  queueToken: string;
}

// ─── Checks of part B (Postgres, queried directly) ────────────────────────────────────────────────

/** What Postgres says about one concert's seats after the run. */
interface PostgresCheck {
  /** Seat numbers with an active reservation_seats row. */
  heldSeatNumbers: Set<number>;
  seats: number;
  seatsWithSeveralLive: number;
  seatsWithOneLive: number;
  seatsMarkedHeld: number;
  heldReservations: number;
  maxLiveSeatsPerUser: number;
}

const CHECK_SQL = `
WITH s AS (SELECT id, status FROM seats WHERE concert_id = $1),
     live AS (SELECT rs.seat_id, count(*) AS n
                FROM reservation_seats rs JOIN s ON s.id = rs.seat_id
               WHERE rs.active
               GROUP BY rs.seat_id),
     per_user AS (SELECT r.user_id, count(*) AS n
                    FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id AND rs.active
                   WHERE r.concert_id = $1
                   GROUP BY r.user_id)
SELECT (SELECT count(*) FROM s)                                   AS seats,
       (SELECT count(*) FROM live WHERE n > 1)                    AS "seatsWithSeveralLive",
       (SELECT count(*) FROM live WHERE n = 1)                    AS "seatsWithOneLive",
       (SELECT count(*) FROM s WHERE status = 'held')             AS "seatsMarkedHeld",
       (SELECT count(*) FROM reservations
         WHERE concert_id = $1 AND status = 'held')               AS "heldReservations",
       (SELECT coalesce(max(n), 0) FROM per_user)                 AS "maxLiveSeatsPerUser"`;

const HELD_SEATS_SQL = `SELECT s.seat_number FROM seats s JOIN reservation_seats rs ON rs.seat_id = s.id AND rs.active WHERE s.concert_id = $1`;

async function checkPostgres(databaseUrl: string, concertId: string): Promise<PostgresCheck> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const row = (await client.query<Record<string, string>>(CHECK_SQL, [concertId])).rows[0]!;
    const counts = Object.fromEntries(Object.entries(row).map(([key, value]) => [key, Number(value)])) as Omit<PostgresCheck, 'heldSeatNumbers'>;
    const held = await client.query<{ seat_number: number }>(HELD_SEATS_SQL, [concertId]);
    return { ...counts, heldSeatNumbers: new Set(held.rows.map((r) => Number(r.seat_number))) };
  } finally {
    await client.end();
  }
}

/** Seat by seat: what the client was told against what Postgres holds. */
interface SeatCheck {
  answered201: number;
  answered201NotHeld: number;
  refused: number;
  refusedButHeld: number;
  noAnswer: number;
  noAnswerHeld: number;
  neverAskedButHeld: number;
}

function checkSeats(outcomes: ReadonlyMap<number, string>, held: ReadonlySet<number>): SeatCheck {
  const check: SeatCheck = { answered201: 0, answered201NotHeld: 0, refused: 0, refusedButHeld: 0, noAnswer: 0, noAnswerHeld: 0, neverAskedButHeld: 0 };
  for (const [seat, outcome] of outcomes) {
    const isHeld = held.has(seat);
    if (outcome === '201') {
      check.answered201++;
      if (!isHeld) check.answered201NotHeld++;
    } else if (outcome === NO_ANSWER) {
      check.noAnswer++;
      if (isHeld) check.noAnswerHeld++;
    } else {
      check.refused++;
      if (isHeld) check.refusedButHeld++;
    }
  }
  for (const seat of held) if (!outcomes.has(seat)) check.neverAskedButHeld++;
  return check;
}

interface HoldOutcome {
  mode: WorkerMode;
  seats: number;
  concertId: string;
  admitted: number;
  holds: LoadResult;
  seatsAsked: number;
  seatCheck: SeatCheck;
  postgres: Omit<PostgresCheck, 'heldSeatNumbers'>;
  room: ConcertStats;
  ok: boolean;
}

/** The non-201 answers of a holds result. */
function refusals(statuses: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(statuses).filter(([label]) => label !== '201'));
}

// ─── Part C's outcome ────────────────────────────────────────────────────────────────────────────

interface PaymentOutcome {
  mode: WorkerMode;
  concertId: string;
  /** Set-up steps (joins, charges, holds, waiting joins): rates printed, not goal figures. */
  setup: LoadResult[];
  sockets: {
    asked: number;
    open: number;
    failures: Record<string, number>;
    openSeconds: number;
    /** Pushes the sockets received during the payment step with them open. */
    pushesDuringPayments: number;
    dropped: number;
    /** Why fewer sockets than `--sockets` were opened, if they were. */
    note: string | undefined;
  };
  payments: { withoutSockets: LoadResult | undefined; withSockets: LoadResult | undefined };
  /** Payments answered 201, and seats the room counts sold (undefined when it did not answer). */
  paid: number;
  room: ConcertStats | undefined;
  ok: boolean;
}

// ─── One mode ────────────────────────────────────────────────────────────────────────────────────

interface ModeRun {
  worker: WorkerUnderTest;
  holds: HoldOutcome[];
  payment: PaymentOutcome | undefined;
  probe: { label: string; latency: string; results: DependentCalls[] } | undefined;
}

async function runMode(mode: WorkerMode, bench: BenchStack, rows: Measured[]): Promise<ModeRun> {
  const worker = await startWorker({ mode, vars: bench.vars, log });
  const common = {
    baseUrl: worker.url,
    concurrency: CLIENTS,
    signal: interrupted,
    serverCpuMs: () => worker.cpuMs(),
    stackCpuMs: () => bench.cpuMs(),
  };
  await warmUp({ baseUrl: worker.url, concurrency: CLIENTS, signal: interrupted }, WARMUP_S, (m) => log(`${mode}: ${m}`));

  const measure = async (size: string, step: LoadStep, extra: Omit<Measured, 'mode' | 'result' | 'size'>): Promise<LoadResult> => {
    if (interrupted.aborted) throw new Error('interrupted');
    log(`${mode}: ${size}: ${step.name}, ${step.concurrency} clients`);
    const wireBefore = await readWire(bench.stack);
    const result = await runLoad(step);
    const calls = callsPerOp(wireBefore, await readWire(bench.stack), result.requests);
    const load1 = os.loadavg()[0]!;
    rows.push({ mode, result, size, ...extra, calls, load1 });
    log(
      `${mode}: ${size}: ${result.name} c=${result.concurrency}: ${formatCount(result.requests)} in ${result.elapsedS.toFixed(1)} s, ` +
        `${formatCount(result.rps)} req/s, p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms, ` +
        `${result.errors} errors (stopped by ${result.stoppedBy}); load ${load1.toFixed(2)}`,
    );
    return result;
  };
  const ceilings = async (size: string): Promise<Ceilings> => {
    const trivial = await measure(size, ceilingLoad(TRIVIAL, { ...common, durationMs: DURATION_MS }), { trivial: undefined });
    const doWrite = await measure(size, ceilingLoad(DO_WRITE, { ...common, durationMs: DURATION_MS }), { trivial, isDoWriteCeiling: true });
    return { trivial, doWrite };
  };
  const timed = (name: string, step: Omit<LoadStep, keyof typeof common | 'name' | 'durationMs'>): LoadStep => ({ ...common, name, durationMs: DURATION_MS, ...step });

  // ── Part A: the seat map and the seed's by-date call on a seed-sized concert ──
  if (PARTS.has('A')) {
    const size = `seats ${formatCount(SEATMAP_SEATS)}`;
    const startsAt = nextConcertStart();
    const date = startsAt.toISOString().slice(0, 10);
    const concertId = await createConcert(worker.url, bench.adminToken, {
      title: `bench:holds ${mode} seat map`,
      seats: SEATMAP_SEATS,
      price: PRICE,
      salesOpenAt: new Date(Date.now() - 60_000),
      startsAt,
    });
    log(`${mode}: part A: concert ${concertId} on ${date}, ${formatCount(SEATMAP_SEATS)} seats`);
    // One of each first: the room loads from Postgres, and whatever is cached gets cached.
    await callJson(worker.url, 'GET', `/concerts/${concertId}/seats`, { expectStatus: 200 });
    await callJson(worker.url, 'GET', `/reservations/${date}`, { expectStatus: 200 });
    const { trivial, doWrite } = await ceilings(size);
    const seatsOk = (r: LoadResponse): boolean => r.status === 200 && (r.json<{ seats?: unknown[] }>()?.seats?.length ?? -1) === SEATMAP_SEATS;
    await measure(size, timed('seat map (cached)', { next: () => ({ path: `/concerts/${concertId}/seats` }), expect: seatsOk, label: labelWithCode, timeoutMs: 60_000 }), {
      trivial,
      doWrite,
      goal: NEAR ? GOALS.seatMap : undefined,
    });
    await measure(
      size,
      timed('by-date (cached)', {
        next: () => ({ path: `/reservations/${date}` }),
        expect: (r) => r.status === 200 && r.json<{ concertId?: string }>()?.concertId === concertId,
        label: labelWithCode,
        timeoutMs: 60_000,
      }),
      { trivial, doWrite, goal: NEAR ? GOALS.byDate : undefined },
    );
  }

  // ── Part B: holds at each seat count ──
  const holds: HoldOutcome[] = [];
  if (PARTS.has('B')) for (const seats of SEAT_COUNTS) holds.push(await holdPart(mode, worker, bench, seats, { common, measure, ceilings }));

  // ── Part C: payments with and without open WebSockets ──
  const payment = PARTS.has('C') ? await paymentPart(mode, worker, bench, { common, measure, ceilings }) : undefined;

  const probe = PROBE_OPS > 0 ? { label: mode, ...(await probeCheckout(worker.url, bench, { label: mode, runLatency: LATENCY, ops: PROBE_OPS, log })) } : undefined;

  await worker.stop();
  return { worker, holds, payment, probe };
}

interface PartTools {
  common: Pick<LoadStep, 'baseUrl' | 'concurrency' | 'signal' | 'serverCpuMs' | 'stackCpuMs'>;
  measure: (size: string, step: LoadStep, extra: Omit<Measured, 'mode' | 'result' | 'size'>) => Promise<LoadResult>;
  ceilings: (size: string) => Promise<Ceilings>;
}

async function holdPart(mode: WorkerMode, worker: WorkerUnderTest, bench: BenchStack, seats: number, { common, measure, ceilings }: PartTools): Promise<HoldOutcome> {
  const size = `seats ${formatCount(seats)}`;
  const concertId = await createConcert(worker.url, bench.adminToken, {
    title: `bench:holds ${mode} ${size}`,
    seats,
    price: PRICE,
    salesOpenAt: new Date(Date.now() - 60_000),
    startsAt: nextConcertStart(),
    queue: QUIET_QUEUE,
  });
  log(`${mode}: part B: concert ${concertId}, ${formatCount(seats)} seats, sales open, 100,000 admitted a window`);
  // The room loads its seat map from Postgres on first use: not part of any measured step.
  await callJson(worker.url, 'GET', `/admin/concerts/${concertId}/stats`, { token: bench.adminToken, expectStatus: 200 });
  const { trivial, doWrite } = await ceilings(size);

  // Every user joins and is admitted at once.
  const admitted: Admitted[] = [];
  let nextJoiner = 0;
  await measure(
    size,
    {
      ...common,
      name: 'join (admitted)',
      durationMs: MAX_SETUP_MS,
      maxRequests: USERS,
      next: async () => {
        if (nextJoiner >= USERS) return undefined;
        const userId = `bench-holds-${mode}-${seats}-${nextJoiner++}`;
        const token = await userToken(bench.authSecret, userId);
        return { method: 'POST', path: '/queue/token', headers: { authorization: `Bearer ${token}` }, json: { concertId } };
      },
      expect: (r) => r.status === 201 && r.json<JoinAnswer>()?.status === 'admitted',
      label: (r) => {
        const status = r.json<JoinAnswer>()?.status;
        return status ? `${r.status} ${status}` : labelWithCode(r);
      },
      onResponse: (r, request) => {
        const answer = r.json<JoinAnswer>();
        if (r.status !== 201 || answer?.status !== 'admitted') return;
        // The user token this join was sent with: the same user holds seats with it.
        const userTokenValue = (request.headers?.authorization ?? '').slice('Bearer '.length);
        admitted.push({ userToken: userTokenValue, queueToken: answer.token });
      },
    },
    { trivial, doWrite },
  );

  // Holds: each client works through one user's four seats at a time.
  const current: { user: Admitted | undefined; held: number }[] = Array.from({ length: CLIENTS }, () => ({ user: undefined, held: 0 }));
  let nextUser = 0;
  let nextSeat = 1;
  /** Seat number → "201", "503 DEPENDENCY_UNAVAILABLE", "no answer", … */
  const seatOutcomes = new Map<number, string>();
  const seatOf = (request: { json?: unknown }): number => (request.json as { seatNumber: number }).seatNumber;
  const holdResult = await measure(
    size,
    {
      ...common,
      name: 'hold 1 seat',
      durationMs: MAX_HOLD_MS,
      // Holds queue for the room's few Postgres connections: measure long waits rather than cut them.
      timeoutMs: 30_000,
      next: (client) => {
        const state = current[client]!;
        if (nextSeat > HOLDS) return undefined;
        if (!state.user || state.held === SEATS_PER_USER) {
          state.user = admitted[nextUser++];
          state.held = 0;
          if (!state.user) return undefined;
        }
        state.held++;
        return {
          method: 'POST',
          path: '/reservations',
          headers: { authorization: `Bearer ${state.user.userToken}`, 'queue-token': state.user.queueToken },
          json: { concertId, seatNumber: nextSeat++ },
        };
      },
      expect: (r) => r.status === 201,
      label: labelWithCode,
      onResponse: (r, request) => seatOutcomes.set(seatOf(request), labelWithCode(r)),
      onError: (_error, request) => seatOutcomes.set(seatOf(request), NO_ANSWER),
    },
    { trivial, doWrite, goal: checkoutGoal('hold', latencyLabel(LATENCY)) },
  );

  const seatsAsked = nextSeat - 1;
  const { heldSeatNumbers, ...postgres } = await checkPostgres(bench.stack.databaseUrl, concertId);
  const seatCheck = checkSeats(seatOutcomes, heldSeatNumbers);
  const room = await concertStats(worker.url, bench.adminToken, concertId);
  const live = postgres.seatsWithOneLive;
  const ok =
    postgres.seatsWithSeveralLive === 0 &&
    seatCheck.answered201NotHeld === 0 &&
    seatCheck.refusedButHeld === 0 &&
    seatCheck.neverAskedButHeld === 0 &&
    postgres.seatsMarkedHeld === live &&
    postgres.heldReservations === live &&
    postgres.maxLiveSeatsPerUser <= SEATS_PER_USER &&
    room.seats.held === live &&
    room.seats.available === seats - live;
  return { mode, seats, concertId, admitted: admitted.length, holds: holdResult, seatsAsked, seatCheck, postgres, room, ok };
}

async function paymentPart(mode: WorkerMode, worker: WorkerUnderTest, bench: BenchStack, { common, measure, ceilings }: PartTools): Promise<PaymentOutcome> {
  const payers = PAYMENTS * 2;
  const concertId = await createConcert(worker.url, bench.adminToken, {
    title: `bench:holds ${mode} payments`,
    seats: payers,
    price: PRICE,
    salesOpenAt: new Date(Date.now() - 60_000),
    startsAt: nextConcertStart(),
    queue: QUIET_QUEUE,
  });
  const { sockets: SOCKETS, note } = socketsFor(mode);
  log(`${mode}: part C: concert ${concertId}, ${formatCount(payers)} seats at ${PRICE}; ${formatCount(payers)} paying users, ${formatCount(SOCKETS)} waiting with sockets`);

  interface Payer {
    token: string;
    queueToken?: string;
    charged?: boolean;
    reservationId?: string;
  }
  const users: Payer[] = await Promise.all(Array.from({ length: payers }, async (_, i) => ({ token: await userToken(bench.authSecret, `bench-holds-${mode}-pay-${i}`) })));
  const setup: LoadResult[] = [];
  /** One set-up request per user that `requestFor` gives one; `onAnswer` gets undefined for no answer. */
  const setupStep = async <U>(name: string, list: readonly U[], requestFor: (user: U, index: number) => RequestSpec | undefined, onAnswer: (user: U, r: LoadResponse | undefined) => void, expectStatus: number) => {
    if (interrupted.aborted) throw new Error('interrupted');
    const userOf = new WeakMap<RequestSpec, U>();
    let next = 0;
    log(`${mode}: set-up: ${name}, ${SETUP_CLIENTS} clients`);
    const result = await runLoad({
      ...common,
      name,
      concurrency: SETUP_CLIENTS,
      durationMs: MAX_SETUP_MS,
      timeoutMs: 30_000,
      next: () => {
        while (next < list.length) {
          const index = next++;
          const request = requestFor(list[index]!, index);
          if (request) {
            userOf.set(request, list[index]!);
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
  const join = (user: { token: string }): RequestSpec => ({ method: 'POST', path: '/queue/token', headers: { authorization: `Bearer ${user.token}` }, json: { concertId } });
  await setupStep('join (admitted)', users, join, (user, r) => {
    const answer = r?.status === 201 ? r.json<JoinAnswer>() : undefined;
    if (answer?.status === 'admitted') user.queueToken = answer.token;
  }, 201);
  await setupStep(
    `charge ${PRICE}`,
    users,
    (user) => (user.queueToken === undefined ? undefined : { method: 'POST', path: '/balance/charge', headers: { authorization: `Bearer ${user.token}` }, json: { amount: PRICE } }),
    (user, r) => (user.charged = r?.status === 200),
    200,
  );
  await setupStep(
    'hold 1 seat',
    users,
    (user, index) =>
      !user.charged || user.queueToken === undefined
        ? undefined
        : { method: 'POST', path: '/reservations', headers: { authorization: `Bearer ${user.token}`, 'queue-token': user.queueToken }, json: { concertId, seatNumber: index + 1 } },
    (user, r) => (user.reservationId = r?.status === 201 ? r.json<{ reservationId?: string }>()?.reservationId : undefined),
    201,
  );

  // The line stops moving, so the socket holders stay waiting whatever the payments free.
  await callJson(worker.url, 'PATCH', `/admin/concerts/${concertId}/queue`, { token: bench.adminToken, body: { paused: true }, expectStatus: 200 });
  const waiters: { token: string; queueToken?: string }[] = await Promise.all(
    Array.from({ length: SOCKETS }, async (_, i) => ({ token: await userToken(bench.authSecret, `bench-holds-${mode}-ws-${i}`) })),
  );
  if (SOCKETS > 0) {
    await setupStep('join (waiting, line paused)', waiters, join, (user, r) => {
      const answer = r?.status === 201 ? r.json<JoinAnswer>() : undefined;
      if (answer?.status === 'waiting') user.queueToken = answer.token;
    }, 201);
  }

  const held = users.filter((user) => user.reservationId !== undefined);
  const outcomes = new Map<string, string>();
  let paid = 0;
  const payStep = (slice: readonly Payer[]): LoadStep => {
    let next = 0;
    return {
      ...common,
      name: 'POST /payment',
      durationMs: DURATION_MS,
      // With thousands of sockets each payment may take the room a long time: measure, do not cut.
      timeoutMs: 180_000,
      next: () => {
        const user = slice[next++];
        return user && { method: 'POST', path: '/payment', headers: { authorization: `Bearer ${user.token}` }, json: { reservationId: user.reservationId } };
      },
      expect: (r) => r.status === 201,
      label: labelWithCode,
      onResponse: (r, request) => {
        outcomes.set((request.json as { reservationId: string }).reservationId, labelWithCode(r));
        if (r.status === 201) paid++;
      },
      onError: (_error, request) => outcomes.set((request.json as { reservationId: string }).reservationId, NO_ANSWER),
    };
  };

  const none = 'sockets 0';
  const c0 = await ceilings(none);
  const withoutSockets = await measure(none, payStep(held.slice(0, PAYMENTS)), { ...c0, goal: checkoutGoal('payment', latencyLabel(LATENCY)) });

  const sockets: PaymentOutcome['sockets'] = { asked: 0, open: 0, failures: {}, openSeconds: 0, pushesDuringPayments: 0, dropped: 0, note };
  let withSockets: LoadResult | undefined;
  const tokens = waiters.flatMap((user) => (user.queueToken ? [user.queueToken] : []));
  if (SOCKETS > 0 && tokens.length > 0) {
    log(`${mode}: opening ${formatCount(tokens.length)} WebSockets on /queue/ws`);
    const crowd = await openSockets({ baseUrl: worker.url, tokens, concurrency: 100, log, signal: interrupted });
    Object.assign(sockets, { asked: tokens.length, open: crowd.open, failures: crowd.failures, openSeconds: crowd.seconds });
    log(`${mode}: ${formatCount(crowd.open)} sockets open in ${crowd.seconds.toFixed(1)} s${Object.keys(crowd.failures).length ? `; failed: ${formatCounts(crowd.failures)}` : ''}`);
    try {
      const size = `sockets ${formatCount(crowd.open)}`;
      const cN = await ceilings(size);
      const before = crowd.pushes();
      withSockets = await measure(size, payStep(held.slice(PAYMENTS, 2 * PAYMENTS)), cN);
      sockets.pushesDuringPayments = crowd.pushes() - before;
      sockets.dropped = crowd.dropped();
    } finally {
      await crowd.close();
    }
  }

  const room = await concertStats(worker.url, bench.adminToken, concertId).catch((error: unknown) => {
    log(`${mode}: part C: room stats failed after the run: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  });
  const noAnswer = [...outcomes.values()].filter((outcome) => outcome === NO_ANSWER).length;
  const ok = room !== undefined && room.seats.sold >= paid && room.seats.sold <= paid + noAnswer;
  return { mode, concertId, setup, sockets, payments: { withoutSockets, withSockets }, paid, room, ok };
}

// ─── Report ──────────────────────────────────────────────────────────────────────────────────────

async function main({ bench, startedAt, elapsedSeconds }: BenchRun): Promise<void> {
  if (LATENCY) {
    await setLatency(bench.stack, LATENCY);
    log(`latency on: ${latencyLabel(LATENCY)}`);
  }
  for (const mode of MODES) {
    const { note } = socketsFor(mode);
    if (note && PARTS.has('C')) log(`NOTE: ${note}`);
  }
  const rows: Measured[] = [];
  const runs: ModeRun[] = [];
  for (const mode of MODES) runs.push(await runMode(mode, bench, rows));
  const elapsedS = elapsedSeconds();
  const pairs = scalePairs(rows);
  const workers = runs.map((run) => run.worker);

  console.log(
    `bench:holds — ${CLIENTS} clients, ${DURATION_MS / 1000} s per timed step, modes ${MODES.join(' and ')}; parts ${[...PARTS].sort().join(', ')}: ` +
      `A seat map + by-date on a ${formatCount(SEATMAP_SEATS)}-seat concert; B ${formatCount(HOLDS)} holds (${formatCount(USERS)} users × ${SEATS_PER_USER}) ` +
      `at ${SEAT_COUNTS.map(formatCount).join(' and ')} seats; C ${formatCount(PAYMENTS)} payments with 0 and with up to ${formatCount(SOCKETS_ASKED)} open queue WebSockets. ` +
      'One machine for client, Worker, Postgres and Redis: read the ratio columns, not the absolute figures.',
  );
  printRunSettings(bench, workers, {
    'trivial 404': TRIVIAL.description,
    'DO write': DO_WRITE.description,
    'seat map (cached)': `GET /concerts/:id/seats of one ${formatCount(SEATMAP_SEATS)}-seat concert (sales open, nothing held), the same concert every request; 200 with every seat`,
    'by-date (cached)': 'GET /reservations/:date (the seed\'s call), the date of that same concert, the only one that day; 200 with its available seats',
    'join (admitted)': `POST /queue/token by ${formatCount(USERS)} distinct users on an open concert: 201 admitted (set-up of B, measured too)`,
    'hold 1 seat':
      'POST /reservations {concertId, seatNumber} with the user token and admitted Queue-Token; seats 1..' +
      `${formatCount(HOLDS)} asked for once each, in order; four per user, one at a time; stops when all are asked for (cap ${MAX_HOLD_MS / 1000} s)`,
    'POST /payment':
      `{reservationId} of a distinct held 1-seat reservation (price ${PRICE}) of a distinct admitted user charged exactly ${PRICE}; ` +
      `each paid once; up to ${formatCount(PAYMENTS)} a step, ends when used up or at --duration (payments in flight finish). ` +
      `Line paused, --sockets users waiting (${formatCount(SOCKETS_ASKED)}, capped by the open-file limit: see below); "sockets N": with N of them holding GET /queue/ws open`,
  }, { latency: describeLatency(LATENCY) });
  for (const run of runs) {
    if (!run.payment) continue;
    const p = run.payment;
    console.log(
      `\nSet-up of part C, ${p.mode} (not goal figures): ` +
        p.setup.map((r) => `${r.name}: ${formatCount(r.expected)}/${formatCount(r.requests)} ok at ${formatCount(r.rps)} req/s`).join('; '),
    );
    if (p.sockets.note) console.log(`  NOTE: ${p.sockets.note}`);
    if (p.sockets.asked > 0) {
      console.log(
        `  sockets: ${formatCount(p.sockets.open)} of ${formatCount(p.sockets.asked)} open in ${p.sockets.openSeconds.toFixed(1)} s` +
          `${Object.keys(p.sockets.failures).length ? ` (failed: ${formatCounts(p.sockets.failures)})` : ''}; ` +
          `pushes received during the payments: ${formatCount(p.sockets.pushesDuringPayments)}; dropped while open: ${p.sockets.dropped}`,
      );
    }
  }

  printLoadTable('Throughput and latency (× trivial / × DO write: ÷ the ceilings measured just before, same mode, clients and part)', rows);
  printScaleTable('Scale: each step at the small and at the large size (seats for holds, open sockets for payments)', pairs);
  printGoalSummary(rows, pairs);
  printDependentCalls(
    'Dependent calls per checkout operation (probe: 1 client, sequential, traced by the adapters)',
    runs.flatMap((run) => (run.probe ? [run.probe] : [])),
  );

  const holdOutcomes = runs.flatMap((run) => run.holds);
  if (holdOutcomes.length > 0) {
    console.log("\nChecks of part B (Postgres queried directly after each concert; then the room's own counts)");
    console.log(`  counts: ${CHECK_SQL.trim().replace(/\s+/g, ' ')}`);
    console.log(`  seats:  ${HELD_SEATS_SQL}`);
  }
  for (const o of holdOutcomes) {
    const { postgres: p, seatCheck: c } = o;
    console.log(
      `  ${o.mode} seats ${formatCount(o.seats)}: ${formatCount(o.admitted)} users admitted; ${formatCount(o.seatsAsked)} of ${formatCount(HOLDS)} seats asked for, once each: ` +
        `${formatCount(c.answered201)} answered 201, ${formatCount(c.refused)} refused (${formatCounts(refusals(o.holds.statuses))}), ` +
        `${formatCount(c.noAnswer)} no answer`,
    );
    console.log(
      `    no seat has more than one active reservation_seats row: ${p.seatsWithSeveralLive === 0 ? 'yes' : `NO — ${formatCount(p.seatsWithSeveralLive)} seats double-booked`}` +
        ` (seats with exactly one: ${formatCount(p.seatsWithOneLive)}; marked held: ${formatCount(p.seatsMarkedHeld)}; ` +
        `held reservations: ${formatCount(p.heldReservations)}; most live seats of one user: ${p.maxLiveSeatsPerUser})`,
    );
    console.log(
      `    seat by seat: answered 201 but not held ${formatCount(c.answered201NotHeld)}; refused but held ${formatCount(c.refusedButHeld)}; ` +
        `never asked but held ${formatCount(c.neverAskedButHeld)}; no answer → held ${formatCount(c.noAnswerHeld)} of ${formatCount(c.noAnswer)}`,
    );
    console.log(
      `    room: available ${formatCount(o.room.seats.available)}, held ${formatCount(o.room.seats.held)}, sold ${formatCount(o.room.seats.sold)} ` +
        `(${o.room.seats.held === p.seatsWithOneLive ? 'same as Postgres' : 'DIFFERS FROM POSTGRES'})`,
    );
    console.log(
      `    → ${o.ok ? 'ok: each seat held at most once; held exactly where the client was told 201 (or got no answer), in Postgres and in the room' : 'MISMATCH (see above)'}` +
        `${o.seatsAsked < HOLDS ? `; NOTE: stopped after ${formatCount(o.seatsAsked)} of ${formatCount(HOLDS)} seats (${o.holds.stoppedBy})` : ''}`,
    );
    if (!o.ok) process.exitCode = 1;
  }
  for (const run of runs) {
    if (!run.payment) continue;
    const p = run.payment;
    console.log(
      `  ${p.mode} payments: ${formatCount(p.paid)} answered 201; room: ${p.room ? `sold ${formatCount(p.room.seats.sold)}, held ${formatCount(p.room.seats.held)}` : 'DID NOT ANSWER'} → ` +
        `${p.ok ? 'ok (sold = payments answered 201, give or take those with no answer)' : 'MISMATCH'}`,
    );
    if (!p.ok) process.exitCode = 1;
  }
  const anomalies = rows.concat(runs.flatMap((run) => (run.payment?.setup ?? []).map((result) => ({ mode: run.payment!.mode, result, trivial: undefined }))));
  printAnomalies(anomalies, workers);
  console.log(`\nTotal ${elapsedS.toFixed(0)} s (stack, Worker start-ups, set-up and ${rows.length} steps).`);

  const written = await writeJsonReport({
    benchmark: 'holds',
    startedAt: startedAt.toISOString(),
    clients: CLIENTS,
    durationPerStepS: DURATION_MS / 1000,
    maxHoldSeconds: MAX_HOLD_MS / 1000,
    seatCounts: SEAT_COUNTS,
    holds: HOLDS,
    users: USERS,
    seatMapSeats: SEATMAP_SEATS,
    payments: PAYMENTS,
    socketsAsked: SOCKETS_ASKED,
    parts: [...PARTS].sort(),
    modes: MODES,
    latency: LATENCY ?? null,
    dependentCalls: runs.flatMap((run) => (run.probe ? [run.probe] : [])),
    stack: bench.describe(),
    workers: workers.map(jsonWorker),
    ceilings: { trivial: TRIVIAL.description, doWrite: DO_WRITE.description },
    results: rows.map(jsonResult),
    scale: pairs.map((pair) => ({ mode: pair.mode, clients: pair.clients, step: pair.step, small: pair.small.size, large: pair.large.size, costRatio: pair.costRatio, cpuRatio: pair.cpuRatio, met: pair.met })),
    goals: jsonGoals(rows, pairs),
    checks: {
      holds: holdOutcomes.map(({ holds: _holds, ...rest }) => ({ ...rest, checkSql: CHECK_SQL.trim(), heldSeatsSql: HELD_SEATS_SQL })),
      payments: runs.flatMap((run) =>
        run.payment ? [{ ...run.payment, payments: undefined, setup: run.payment.setup.map((result) => jsonResult({ mode: run.payment!.mode, result, trivial: undefined })) }] : [],
      ),
    },
    elapsedSeconds: elapsedS,
  });
  if (written) log(`wrote ${written}`);
}

await runBenchmark(log, main);
