/**
 * `npm run bench:holds` (issue 4): seat holds per second on one concert, 200 concurrent admitted
 * users over 5,000 seats.
 *
 * Per mode (`wrangler dev`, then the same bundle on workerd without wrangler's proxy; see
 * bench/lib/worker.ts):
 *  1. a concert with 5,000 seats whose sales are open, admitting 100,000 a window, so every user who
 *     joins is admitted at once;
 *  2. the trivial ceiling at 200 clients (DESIGN.md §9);
 *  3. setup: 1,250 users join (`POST /queue/token`, 201 admitted), measured at 200 clients too;
 *  4. holds: 200 clients take users from a shared list; each client holds seats for its user one
 *     at a time, one seat a request, four per user (the per-user cap), then takes the next user. Every
 *     request names the next seat nobody has asked for yet, so all 5,000 should answer 201 and none
 *     409; the step ends when every seat has been asked for (or at `--max-hold-seconds`);
 *  5. checks: a direct Postgres query that no seat has more than one active `reservation_seats` row,
 *     that the seats held there are exactly the ones answered 201, and that the room agrees.
 *
 * Flags: `--duration <s>` for the trivial step (default 10), `--max-hold-seconds <s>` (default 90),
 * `--seats 5000`, `--clients 200`, `--mode wrangler|workerd|both` (default both), `--json <file>`.
 */
import pg from 'pg';
import { flagValue, intFlag, writeJsonReport } from './lib/cli.ts';
import { interrupted } from './lib/cleanup.ts';
import { TRIVIAL_DESCRIPTION, TRIVIAL_PATH, concertStats, createConcert, labelWithCode, userToken } from './lib/frontrow.ts';
import type { BenchStack, ConcertStats, JoinAnswer } from './lib/frontrow.ts';
import { NO_ANSWER, runLoad } from './lib/load.ts';
import type { LoadResult } from './lib/load.ts';
import { formatCounts, jsonResult, jsonWorker, printAnomalies, printLoadTable, printRunSettings } from './lib/report.ts';
import type { Measured } from './lib/report.ts';
import { runBenchmark } from './lib/run.ts';
import type { BenchRun } from './lib/run.ts';
import { formatCount } from './lib/table.ts';
import { parseModes, startWorker } from './lib/worker.ts';
import type { WorkerMode, WorkerUnderTest } from './lib/worker.ts';

const DURATION_MS = intFlag('duration', 10) * 1000;
const MAX_HOLD_MS = intFlag('max-hold-seconds', 60) * 1000;
const SEATS = intFlag('seats', 5000);
const CLIENTS = intFlag('clients', 200);
const MODES = parseModes(flagValue('mode'));
flagValue('json'); // fail on a bare --json now, not after the run

/** The per-user cap (DESIGN.md §3). */
const SEATS_PER_USER = 4;
const USERS = Math.ceil(SEATS / SEATS_PER_USER);
/** Joins are set-up, but bounded all the same. */
const MAX_JOIN_MS = 120_000;

const log = (message: string): void => console.error(`[bench:holds] ${message}`);

interface Admitted {
  userToken: string;
  queueToken: string;
}

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

interface ModeOutcome {
  mode: WorkerMode;
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

async function runMode(mode: WorkerMode, bench: BenchStack, rows: Measured[]): Promise<{ worker: WorkerUnderTest; outcome: ModeOutcome }> {
  const worker = await startWorker({ mode, vars: bench.vars, log });
  const common = {
    baseUrl: worker.url,
    concurrency: CLIENTS,
    signal: interrupted,
    serverCpuMs: () => worker.cpuMs(),
    stackCpuMs: () => bench.cpuMs(),
  };
  const concertId = await createConcert(worker.url, bench.adminToken, {
    title: `bench:holds ${mode}`,
    seats: SEATS,
    price: 100,
    salesOpenAt: new Date(Date.now() - 60_000),
    queue: { admitPerWindow: 100_000 },
  });
  log(`${mode}: concert ${concertId}, ${formatCount(SEATS)} seats, sales open, 100,000 admitted a window`);

  const record = (result: LoadResult, trivial: LoadResult | undefined): LoadResult => {
    rows.push({ mode, result, trivial });
    log(
      `${mode}: ${result.name} c=${result.concurrency}: ${formatCount(result.requests)} in ${result.elapsedS.toFixed(1)} s, ` +
        `${formatCount(result.rps)} req/s, p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms, ` +
        `${result.errors} errors (stopped by ${result.stoppedBy})`,
    );
    return result;
  };

  log(`${mode}: trivial 404, ${CLIENTS} clients, ${DURATION_MS / 1000} s`);
  const trivial = record(
    await runLoad({
      name: 'trivial 404',
      ...common,
      durationMs: DURATION_MS,
      next: () => ({ path: TRIVIAL_PATH }),
      expect: (r) => r.status === 404,
    }),
    undefined,
  );

  // Set-up: every user joins and is admitted at once.
  const admitted: Admitted[] = [];
  let nextJoiner = 0;
  log(`${mode}: ${formatCount(USERS)} users join (admitted at once), ${CLIENTS} clients`);
  record(
    await runLoad({
      name: 'join (admitted)',
      ...common,
      durationMs: MAX_JOIN_MS,
      maxRequests: USERS,
      next: async () => {
        if (nextJoiner >= USERS) return undefined;
        const userId = `bench-holds-${mode}-${nextJoiner++}`;
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
    }),
    trivial,
  );
  if (interrupted.aborted) throw new Error('interrupted');

  // Holds: each client works through one user's four seats at a time.
  const current: { user: Admitted | undefined; held: number }[] = Array.from({ length: CLIENTS }, () => ({ user: undefined, held: 0 }));
  let nextUser = 0;
  let nextSeat = 1;
  /** Seat number → "201", "503 DEPENDENCY_UNAVAILABLE", "no answer", … */
  const seatOutcomes = new Map<number, string>();
  const seatOf = (request: { json?: unknown }): number => (request.json as { seatNumber: number }).seatNumber;
  log(`${mode}: holds, ${CLIENTS} clients, one seat a request, ${SEATS_PER_USER} per user, until all ${formatCount(SEATS)} seats are asked for`);
  const holds = record(
    await runLoad({
      name: 'hold 1 seat',
      ...common,
      durationMs: MAX_HOLD_MS,
      // Holds queue for the room's few Postgres connections: measure long waits rather than cut them.
      timeoutMs: 30_000,
      next: (client) => {
        const state = current[client]!;
        if (nextSeat > SEATS) return undefined;
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
    }),
    trivial,
  );

  const seatsAsked = nextSeat - 1;
  const { heldSeatNumbers, ...postgres } = await checkPostgres(bench.stack.databaseUrl, concertId);
  const seatCheck = checkSeats(seatOutcomes, heldSeatNumbers);
  const room = await concertStats(worker.url, bench.adminToken, concertId);
  await worker.stop();
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
    room.seats.available === SEATS - live;
  return {
    worker,
    outcome: { mode, concertId, admitted: admitted.length, holds, seatsAsked, seatCheck, postgres, room, ok },
  };
}

async function main({ bench, startedAt, elapsedSeconds }: BenchRun): Promise<void> {
  const rows: Measured[] = [];
  const workers: WorkerUnderTest[] = [];
  const outcomes: ModeOutcome[] = [];
  for (const mode of MODES) {
    const done = await runMode(mode, bench, rows);
    workers.push(done.worker);
    outcomes.push(done.outcome);
  }
  const elapsedS = elapsedSeconds();

  // ─── Report ──────────────────────────────────────────────────────────────────────────────────
  console.log(
    `bench:holds — one concert of ${formatCount(SEATS)} seats per mode, ${CLIENTS} concurrent clients, ` +
      `${formatCount(USERS)} admitted users × ${SEATS_PER_USER} seats, modes ${MODES.join(' and ')}. ` +
      'One machine for client, Worker, Postgres and Redis: read the ratio columns, not the absolute figures.',
  );
  printRunSettings(bench, workers, {
    'trivial 404': `${TRIVIAL_DESCRIPTION} ${DURATION_MS / 1000} s.`,
    'join (admitted)': `POST /queue/token by ${formatCount(USERS)} distinct users on an open concert: 201 admitted (set-up, measured too)`,
    'hold 1 seat':
      'POST /reservations {concertId, seatNumber} with the user token and admitted Queue-Token; each seat asked for once, ' +
      `in order; four per user, one at a time; stops when all seats are asked for (cap ${MAX_HOLD_MS / 1000} s)`,
  });

  printLoadTable('Throughput and latency (× trivial = req/s ÷ trivial req/s, same mode and clients, same run)', rows);

  console.log("\nChecks (Postgres queried directly after each mode; then the room's own counts)");
  console.log(`  counts: ${CHECK_SQL.trim().replace(/\s+/g, ' ')}`);
  console.log(`  seats:  ${HELD_SEATS_SQL}`);
  for (const o of outcomes) {
    const { postgres: p, seatCheck: c } = o;
    console.log(
      `  ${o.mode}: ${formatCount(o.admitted)} users admitted; ${formatCount(o.seatsAsked)} of ${formatCount(SEATS)} seats asked for, once each: ` +
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
        `${o.seatsAsked < SEATS ? `; NOTE: stopped after ${formatCount(o.seatsAsked)} of ${formatCount(SEATS)} seats (${o.holds.stoppedBy}); the rest stay available` : ''}`,
    );
    if (!o.ok) process.exitCode = 1;
  }
  printAnomalies(rows, workers);
  console.log(`\nTotal ${elapsedS.toFixed(0)} s (stack, Worker start-ups, set-up and ${rows.length} steps).`);

  const written = await writeJsonReport({
    benchmark: 'holds',
    startedAt: startedAt.toISOString(),
    seats: SEATS,
    users: USERS,
    clients: CLIENTS,
    trivialDurationS: DURATION_MS / 1000,
    maxHoldSeconds: MAX_HOLD_MS / 1000,
    modes: MODES,
    stack: bench.describe(),
    workers: workers.map(jsonWorker),
    trivial: TRIVIAL_DESCRIPTION,
    results: rows.map(jsonResult),
    checks: outcomes.map(({ holds: _holds, ...rest }) => ({ ...rest, checkSql: CHECK_SQL.trim(), heldSeatsSql: HELD_SEATS_SQL })),
    elapsedSeconds: elapsedS,
  });
  if (written) log(`wrote ${written}`);
}

await runBenchmark(log, main);
