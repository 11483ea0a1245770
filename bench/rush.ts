/**
 * `npm run bench:rush` (issue 11): the whole on-sale, the way it happens, checked for correctness and
 * fairness while it does.
 *
 * Starts the throwaway stack and the Worker (`--mode workerd`, the default, or `wrangler`; or targets
 * `--base-url`, see below), measures the ceilings at the rush's client count (the generator against
 * a plain Node server, the trivial 404, one DO RPC with one SQLite write; bench/lib/ceilings.ts,
 * bench/lib/generator-ceiling.ts), then plays `--fans` fans against one concert of `--seats` seats
 * with at most `--clients` requests in flight (one closed-loop generator shared by every fan,
 * bench/lib/dispatch.ts). Each fan:
 *
 *  1. gets a user token (`POST /auth/dev-token`) and charges 4 × the seat price (`POST /balance/charge`);
 *     (every write carries an Idempotency-Key; a 503, 429 or 409 REQUEST_IN_PROGRESS is sent again after its Retry-After, at
 *     most 3 times, as the contract asks of clients: each one still counts as a 5xx and fails the run,
 *     but the rush goes on and is measured whole);
 *  2. joins the line (`POST /queue/token`) before sales open: the concert is created after the
 *     charges, to open a few seconds after everyone is in line and the sockets are open (the lead is
 *     estimated from the charge rate; `--lead-seconds` sets it);
 *  3. waits for admission on the queue WebSocket (bench/lib/sockets.ts), as many as the open-file
 *     limit allows (`maxSockets`); the others poll `GET /queue/status`. The status contract advises no
 *     interval (no Retry-After or poll hint on a 200), so a poller waits a quarter of its estimated
 *     wait, at least 1 s (the admission snapshot's max-age: a faster poll cannot learn more) and at
 *     most 10 s, and honours Retry-After on a 429/503;
 *  4. once admitted, reads the seat map (`GET /concerts/:id/seats`), holds 1–4 free seats at random
 *     (`POST /reservations`; on 409 SEAT_UNAVAILABLE drops the seats named and picks others, at most 5
 *     tries, re-reading the map when it runs out), then pays (`POST /payment`), except a share of
 *     fans (`--abandon-share`) who walk away from their hold so that expiry runs. A fan who finds no
 *     seat free while some are held looks again 5 s later, three looks at most, within their
 *     session; a fan told `sold_out`, or who sees every seat sold, stops.
 *
 * Then, after every session has ended (the concert's `--session-seconds`), the checks: DESIGN.md §6
 * through the tests' own checker (test/helpers/invariant-rules.ts: one live reservation per seat,
 * sold ⇔ confirmed ⇔ one payment ⇔ one ledger debit, balances = ledgers, points conserved, the room's
 * map, seat owners, holds and finished sessions = Postgres), no fan left in a non-terminal state
 * (a live session, a pending or held hold, a held reservation), every seat sold or accounted for, and
 * FIFO admission, judged on the room's own line (its SQLite, read through the bench-only
 * `POST /__bench/room-state`): the admitted places are exactly the first k by rank, with admission
 * times that never go down along rank; the client's view is checked too (every fan seen admitted
 * ranks before every fan never admitted). Rank is the order of joining, except within a pre-queue
 * drawn at opening, whose order is recomputed from the seed `GET /concerts/:id/opening` reveals
 * (checked against the commitment read before opening). Exit code 1 on any violation, any 5xx or
 * unanswered request, a fan left unfinished, or broken FIFO.
 *
 * Flags: `--fans N` (10,000) `--seats S` (1,000) `--clients C` (500) `--mode workerd|wrangler`
 * (workerd) `--base-url URL` `--json FILE` `--abandon-share X` (0.1) `--price P` (100)
 * `--admit-per-window` (250) `--window-seconds` (10) `--session-seconds` (90) `--hold-seconds` (30)
 * `--ceiling-seconds` (5) `--warmup` (3) `--lead-seconds` (estimated) `--max-seconds` (1200)
 * `--opening-order shuffle|fifo` (shuffle, the API's default) `--lobby-shards K` (1: joins go to the
 * room; K > 1: through K lobby objects, and the join requests per object per second are printed).
 * `--proof-of-work` (issue 20): the concert asks for a proof of work at cost `--pow-cost` (20); after
 * the charges every fan fetches a challenge (`GET /queue/challenge`) and solves it with the native
 * solver (bench/lib/entry-pow.ts, node:crypto) before the joins phase, whose joins carry it; the
 * solver's CPU per 1,000 places (what a scripted attacker pays) is printed beside the join rate.
 *
 * `--latency neon=MS,redis=MS` adds that much to every Postgres round trip and Upstash request in the
 * local adapters (bench/lib/wire.ts), from before the ceilings to the end; the round trips they
 * counted during the rush are printed per request of each kind. `--worker-root DIR` builds the Worker
 * from another checkout. Checkout's p99 (hold and payment) is printed on a line of its own.
 *
 * `--base-url` runs the fans against a service already running (ADMIN_TOKEN and DATABASE_URL from
 * the environment; DEV_AUTH on): ceilings and room checks need the bench entry's `/__bench/*` routes
 * and are reported as not measured / not checked where it has none; no CPU figures.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { flagValue, intFlag, writeJsonReport } from './lib/cli.ts';
import { DO_WRITE, TRIVIAL, ceilingLoad, probeCeiling, warmUp } from './lib/ceilings.ts';
import { interrupted } from './lib/cleanup.ts';
import { runFramed } from './lib/run.ts';
import { Dispatcher } from './lib/dispatch.ts';
import { GENERATOR_CEILING_DESCRIPTION, generatorCeiling } from './lib/generator-ceiling.ts';
import { callJson, concertStats, createConcert, labelWithCode, openingDraw, startBenchStack } from './lib/frontrow.ts';
import type { BenchStack, ConcertStats, OpeningDraw } from './lib/frontrow.ts';
import { auditDraw, type FetchJson } from '../src/lib/draw-audit.ts';
import { rankOfPlace } from '../src/lib/opening-shuffle.ts';
import { runLoad } from './lib/load.ts';
import type { LoadResponse, LoadResult, RequestSpec } from './lib/load.ts';
import { formatCounts } from './lib/report.ts';
import { maxSockets, openFileLimit, openSockets } from './lib/sockets.ts';
import type { SocketCrowd } from './lib/sockets.ts';
import { summarize } from './lib/stats.ts';
import type { Summary } from './lib/stats.ts';
import { LATENCY_COLUMNS, formatCount, formatMs, formatRatio, latencyCells, printTable, rightAligned } from './lib/table.ts';
import { parseModes, startWorker } from './lib/worker.ts';
import type { WorkerMode, WorkerUnderTest } from './lib/worker.ts';
import { findViolationsWith } from '../test/helpers/invariant-rules.ts';
import { describeLatency, latencyFlag, latencyLabel, readWire, setLatency } from './lib/wire.ts';
import { attemptMs, entryProofField, solveEntryChallenge, type EntryChallenge } from './lib/entry-pow.ts';
import type { WireCounts } from './lib/wire.ts';
import type { QueryFn, RoomView, Violation } from '../test/helpers/invariant-rules.ts';

const log = (message: string): void => console.error(`[bench:rush] ${message}`);

function shareFlag(name: string, fallback: number): number {
  const raw = flagValue(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new Error(`--${name} must be a number in [0, 1], got "${raw}"`);
  return value;
}

const FANS = intFlag('fans', 10_000);
const SEATS = intFlag('seats', 1_000);
const CLIENTS = intFlag('clients', 500);
/** Descriptors one request in flight may hold in workerd: its connection and up to two outgoing fetches. */
const FDS_PER_REQUEST = 3;
const BASE_URL = flagValue('base-url');
const [MODE] = parseModes(flagValue('mode') ?? 'workerd') as [WorkerMode];
if (flagValue('mode') === 'both') throw new Error('--mode is workerd or wrangler for bench:rush (one rush per run)');
const ABANDON_SHARE = shareFlag('abandon-share', 0.1);
const PRICE = intFlag('price', 100);
function openingOrderFlag(): 'shuffle' | 'fifo' {
  const raw = flagValue('opening-order') ?? 'shuffle';
  if (raw !== 'shuffle' && raw !== 'fifo') throw new Error(`--opening-order is shuffle or fifo, got "${raw}"`);
  return raw;
}
const OPENING_ORDER = openingOrderFlag();
/** Issue 20: fans solve a proof of work (native solver) before joining. */
const PROOF_OF_WORK = process.argv.slice(2).includes('--proof-of-work');
const POW_COST = intFlag('pow-cost', 20);
const QUEUE = {
  ...(PROOF_OF_WORK ? { entry: { proofOfWork: { cost: POW_COST } } } : {}),
  openingOrder: OPENING_ORDER,
  lobbyShards: intFlag('lobby-shards', 1),
  admitPerWindow: intFlag('admit-per-window', 250),
  windowSeconds: intFlag('window-seconds', 10),
  sessionSeconds: intFlag('session-seconds', 90),
  holdSeconds: intFlag('hold-seconds', 30),
};
const CEILING_MS = intFlag('ceiling-seconds', 5) * 1000;
const WARMUP_S = intFlag('warmup', 3, { min: 0 });
const LEAD_S = flagValue('lead-seconds') === undefined ? undefined : intFlag('lead-seconds', 0, { min: 0 });
const MAX_MS = intFlag('max-seconds', 1200) * 1000;
const LATENCY = latencyFlag();
if (LATENCY && BASE_URL) throw new Error('--latency needs the local stack: it cannot be used with --base-url');
flagValue('json'); // fail on a bare --json now, not after the run

/** Seats a fan tries to hold at most (DESIGN.md §3: at most 4 per person). */
const MAX_SEATS_PER_FAN = 4;
const HOLD_TRIES = 5;
/** A fan who sees only held seats looks again this much later, at most this many times. */
const SEAT_RETRY_MS = 5_000;
const SEAT_LOOKS = 3;
const REQUEST_TIMEOUT_MS = 120_000;

// ─── The target: a Worker this run started, or one at --base-url ─────────────────────────────────

interface Target {
  url: string;
  adminToken: string;
  query: QueryFn;
  worker?: WorkerUnderTest;
  bench?: BenchStack;
  close(): Promise<void>;
}

async function postgresQuery(databaseUrl: string): Promise<{ query: QueryFn; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return {
    query: async <Row extends Record<string, unknown>>(text: string, values: unknown[] = []) => (await client.query<Row & pg.QueryResultRow>(text, values)).rows,
    close: () => client.end(),
  };
}

async function startTarget(): Promise<Target> {
  if (BASE_URL) {
    const adminToken = process.env.ADMIN_TOKEN;
    const databaseUrl = process.env.DATABASE_URL;
    if (!adminToken || !databaseUrl) throw new Error('--base-url needs ADMIN_TOKEN and DATABASE_URL in the environment');
    const pgc = await postgresQuery(databaseUrl);
    return { url: BASE_URL, adminToken, query: pgc.query, close: pgc.close };
  }
  const bench = await startBenchStack(log);
  if (LATENCY) {
    await setLatency(bench.stack, LATENCY);
    log(`latency on: ${latencyLabel(LATENCY)}`);
  }
  const worker = await startWorker({ mode: MODE, vars: bench.vars, log });
  const pgc = await postgresQuery(bench.stack.databaseUrl);
  return { url: worker.url, adminToken: bench.adminToken, query: pgc.query, worker, bench, close: pgc.close };
}

// ─── Per-endpoint tallies ─────────────────────────────────────────────────────────────────────────

interface Tally {
  latencies: number[];
  labels: Map<string, number>;
  noAnswer: number;
}

const tallies = new Map<string, Tally>();
const progress = { joined: 0, admitted: 0, holds: 0, seatsSold: 0, buyers: 0, errors: 0, fiveXx: 0 };

function tally(endpoint: string): Tally {
  let t = tallies.get(endpoint);
  if (!t) tallies.set(endpoint, (t = { latencies: [], labels: new Map(), noAnswer: 0 }));
  return t;
}

let dispatcher: Dispatcher;

/** Times a 503 (fail closed, Retry-After: DESIGN.md §2) or 429 is sent again; each is still counted. */
const RETRIES = 3;

/**
 * Answers the contract tells a client to send again after Retry-After: 503 (nothing written), 429,
 * and 409 REQUEST_IN_PROGRESS (the same Idempotency-Key still in flight, e.g. claimed by an attempt
 * that then failed closed and could not release its claim).
 */
function retryable(response: LoadResponse): boolean {
  if (response.status === 503 || response.status === 429) return true;
  return response.status === 409 && response.json<{ code?: string }>()?.code === 'REQUEST_IN_PROGRESS';
}

/**
 * One request through the shared generator, counted under `endpoint`; undefined when it got no
 * answer. A 503 or 429 is sent again after its Retry-After, as the contract tells clients to (the
 * writes carry an Idempotency-Key, so a retry has one effect), up to {@link RETRIES} times: every
 * 5xx still counts against the run, but the fan goes on, so the rest of the rush is measured too.
 */
async function call(endpoint: string, request: RequestSpec): Promise<LoadResponse | undefined> {
  for (let attempt = 0; ; attempt++) {
    // A fresh object per send: the dispatcher tells requests apart by identity.
    const response = await callOnce(endpoint, { ...request });
    if (!response || !retryable(response) || attempt >= RETRIES) return response;
    await sleep(retryAfterMs(response));
  }
}

async function callOnce(endpoint: string, request: RequestSpec): Promise<LoadResponse | undefined> {
  const t = tally(endpoint);
  try {
    const response = await dispatcher.send(request);
    t.latencies.push(response.latencyMs);
    const label = labelWithCode(response);
    t.labels.set(label, (t.labels.get(label) ?? 0) + 1);
    if (response.status >= 500) {
      progress.fiveXx++;
      progress.errors++;
      if (progress.fiveXx <= 5) log(`${endpoint}: ${response.status} ${response.body.slice(0, 300)}`);
    }
    return response;
  } catch (error) {
    t.noAnswer++;
    progress.errors++;
    if (t.noAnswer <= 3) log(`${endpoint}: no answer: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/** The bench's own solving (--proof-of-work): the attacker's cost, from the generator's CPU. */
const powSolve = { solved: 0, attempts: 0, cpuMs: 0 };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Seconds a 429/503 asks to wait (Retry-After), at least 1. */
function retryAfterMs(response: LoadResponse): number {
  const header = response.headers['retry-after'];
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return Math.max(1, Number.isFinite(seconds) ? seconds : 1) * 1000;
}

// ─── Fans ────────────────────────────────────────────────────────────────────────────────────────

interface QueueStatus {
  status: 'waiting' | 'admitted' | 'completed' | 'expired' | 'sold_out';
  position: number;
  estimatedWaitSeconds: number;
  sessionExpiresAt: string | null;
}

type Outcome =
  | 'bought'
  | 'abandoned its hold'
  | 'sold out while waiting'
  | 'sold out once admitted'
  | 'no seat in 5 tries'
  | 'only held seats left'
  | 'session ended'
  | 'refused (4xx)'
  | 'failed (5xx or no answer)';

interface Fan {
  index: number;
  userId: string;
  token?: string;
  queueToken?: string;
  /** The place in line the join gave (the queue token's `seq`). */
  seq?: number;
  /** When the fan's join was sent (ms, performance.now()). */
  joinSentAt?: number;
  /** When the fan learnt it was admitted (ms, performance.now()), and whether it ever was. */
  admittedSeenAt?: number;
  /** Resolves with the first status that ends the wait (admitted or final); set by socket or poll. */
  admission?: Promise<QueueStatus | undefined>;
  settle?: (status: QueueStatus | undefined) => void;
  viaSocket: boolean;
  outcome?: Outcome;
  seatsBought: number;
  /** The solved proof of work the join carries (--proof-of-work). */
  altcha?: string;
}

/** The `seq` claim of a queue token (its payload, not verified: the bench only reads its own token). */
function seqOf(queueToken: string): number {
  const payload = JSON.parse(Buffer.from(queueToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { seq?: unknown };
  if (typeof payload.seq !== 'number') throw new Error('queue token without a numeric seq');
  return payload.seq;
}

const WAIT_OVER = new Set(['admitted', 'sold_out', 'completed', 'expired']);

function statusSeen(fan: Fan, status: QueueStatus | undefined): void {
  if (status !== undefined && !WAIT_OVER.has(status.status)) return;
  if (status?.status === 'admitted' && fan.admittedSeenAt === undefined) {
    fan.admittedSeenAt = performance.now();
    progress.admitted++;
  }
  fan.settle?.(status);
  fan.settle = undefined;
}

/** Polls `GET /queue/status` until the wait is over; see the file comment for the interval. */
async function poll(fan: Fan): Promise<void> {
  while (fan.settle) {
    const response = await call('GET /queue/status', { path: '/queue/status', headers: { 'queue-token': fan.queueToken! } });
    if (!fan.settle) return; // a socket message settled it meanwhile
    if (!response) return statusSeen(fan, undefined);
    if (response.status === 429 || response.status === 503) {
      await sleep(retryAfterMs(response));
      continue;
    }
    const status = response.status === 200 ? response.json<QueueStatus>() : undefined;
    if (!status) return statusSeen(fan, undefined);
    statusSeen(fan, status);
    if (!fan.settle) return;
    await sleep(Math.min(10_000, Math.max(1_000, (status.estimatedWaitSeconds * 1000) / 4)));
  }
}

interface Seat {
  seatNumber: number;
  status: string;
}

interface Rush {
  concertId: string;
  sessionEndsAt: (status: QueueStatus) => number;
  soldOutAt?: number;
}

function pickRandom<T>(items: T[], n: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}

/** After admission: seat map, hold (up to 5 tries), pay or walk away. */
async function shop(fan: Fan, rush: Rush, admitted: QueueStatus): Promise<Outcome> {
  const auth = { authorization: `Bearer ${fan.token!}` };
  const sessionEnd = rush.sessionEndsAt(admitted);
  const want = 1 + Math.floor(Math.random() * MAX_SEATS_PER_FAN);
  let free: number[] = [];
  const readMap = async (): Promise<Outcome | undefined> => {
    for (let look = 1; ; look++) {
      const response = await call('GET /concerts/:id/seats', { path: `/concerts/${rush.concertId}/seats` });
      if (!response) return 'failed (5xx or no answer)';
      if (response.status !== 200) return response.status >= 500 ? 'failed (5xx or no answer)' : 'refused (4xx)';
      const seats = response.json<{ seats: Seat[] }>()?.seats ?? [];
      free = seats.filter((seat) => seat.status === 'available').map((seat) => seat.seatNumber);
      if (free.length > 0) return undefined;
      if (!seats.some((seat) => seat.status === 'held')) return 'sold out once admitted';
      // Only held seats left: some may come back when their holds expire. A few looks, not a
      // refresh loop: thousands of admitted fans refreshing would be the whole load.
      if (look >= SEAT_LOOKS) return 'only held seats left';
      if (Date.now() + SEAT_RETRY_MS >= sessionEnd) return 'session ended';
      await sleep(SEAT_RETRY_MS);
    }
  };
  let reservationId: string | undefined;
  for (let attempt = 1; attempt <= HOLD_TRIES && reservationId === undefined; attempt++) {
    if (free.length === 0) {
      const stop = await readMap();
      if (stop) return stop;
    }
    const seatNumbers = pickRandom(free, want);
    const response = await call('POST /reservations', {
      method: 'POST',
      path: '/reservations',
      headers: { ...auth, 'queue-token': fan.queueToken!, 'idempotency-key': `${fan.userId}-hold-${attempt}` },
      json: { concertId: rush.concertId, seatNumbers },
    });
    if (!response || response.status >= 500) return 'failed (5xx or no answer)';
    if (response.status === 201) {
      reservationId = response.json<{ reservationId: string }>()?.reservationId;
      break;
    }
    const problem = response.json<{ code?: string; seats?: number[] }>();
    if (response.status === 409 && problem?.code === 'SEAT_UNAVAILABLE') {
      const taken = new Set(problem.seats ?? seatNumbers);
      free = free.filter((seat) => !taken.has(seat));
      continue;
    }
    if (response.status === 403 && problem?.code === 'NOT_ADMITTED') return 'session ended';
    return 'refused (4xx)';
  }
  if (reservationId === undefined) return 'no seat in 5 tries';
  progress.holds++;
  if (Math.random() < ABANDON_SHARE) return 'abandoned its hold';
  const paid = await call('POST /payment', { method: 'POST', path: '/payment', headers: { ...auth, 'idempotency-key': `${fan.userId}-pay` }, json: { reservationId } });
  if (!paid || paid.status >= 500) return 'failed (5xx or no answer)';
  if (paid.status !== 201) return paid.json<{ code?: string }>()?.code === 'RESERVATION_EXPIRED' ? 'session ended' : 'refused (4xx)';
  const seats = paid.json<{ amount: number }>()!.amount / PRICE;
  fan.seatsBought = seats;
  progress.buyers++;
  progress.seatsSold += seats;
  if (progress.seatsSold >= SEATS && rush.soldOutAt === undefined) rush.soldOutAt = Date.now();
  return 'bought';
}

/** Runs `work` on every item, all at once (the dispatcher bounds what is in flight); seconds taken. */
async function phase<T>(name: string, items: readonly T[], work: (item: T) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  log(`${name}: ${formatCount(items.length)} fans`);
  await Promise.all(items.map(work));
  const seconds = (performance.now() - t0) / 1000;
  log(`${name}: done in ${seconds.toFixed(1)} s (${formatCount(items.length / seconds)}/s)`);
  return seconds;
}

// ─── Lobby shards (issue 14) ─────────────────────────────────────────────────────────────────────

interface JoinObjects {
  /** Join requests the room served during the joins phase: single joins plus lobby batches, per second. */
  roomPerSecond: number;
  room: { join: number; joinBatch: number; joinedInBatches: number };
  /** Join requests each lobby served, per second. */
  lobbiesPerSecond: number[];
}

async function joinRequestsPerObject(url: string, concertId: string, seconds: number): Promise<JoinObjects> {
  const counts = await callJson<{ room: JoinObjects['room']; lobbies: { joins: number; batches: number }[] }>(url, 'POST', '/__bench/request-counts', {
    body: { concertId, lobbyShards: QUEUE.lobbyShards > 1 ? QUEUE.lobbyShards : 0 },
    expectStatus: 200,
  });
  return {
    room: counts.room,
    roomPerSecond: (counts.room.join + counts.room.joinBatch) / seconds,
    lobbiesPerSecond: counts.lobbies.map((lobby) => lobby.joins / seconds),
  };
}

/**
 * How far places are from the order joins were sent in: `places`, the largest |seq − arrival rank|;
 * `ms`, the longest a fan's join was sent after one that got a later place. With one room both come
 * only from the network; lobbies add their gathering and the order in which their batches reach the room.
 */
function orderError(fans: readonly Fan[]): { places: number; ms: number } {
  const joined = fans.filter((fan) => fan.seq !== undefined && fan.joinSentAt !== undefined);
  const byArrival = [...joined].sort((a, b) => a.joinSentAt! - b.joinSentAt!);
  let places = 0;
  byArrival.forEach((fan, i) => (places = Math.max(places, Math.abs(fan.seq! - (i + 1)))));
  let ms = 0;
  let latestSent = Number.NEGATIVE_INFINITY;
  for (const fan of [...joined].sort((a, b) => a.seq! - b.seq!)) {
    ms = Math.max(ms, latestSent - fan.joinSentAt!);
    latestSent = Math.max(latestSent, fan.joinSentAt!);
  }
  return { places, ms };
}

// ─── Checks ──────────────────────────────────────────────────────────────────────────────────────

interface FifoCheck {
  /** Where the verdict comes from. */
  source: string;
  /** The pre-queue draw: the seed revealed after opening hashes to the commitment read before it. */
  draw: { order: string; prequeueSize: number | null; commitmentHolds: boolean };
  admitted: number;
  /** Admitted places that are not among the first `admitted` seqs (a later fan went in before an earlier one). */
  admittedOutOfPrefix: number;
  /** Places admitted at an earlier time than a place with a lower seq. */
  admissionTimeInversions: number;
  /** Client's view: fans seen admitted who joined after a fan never admitted. */
  clientViolations: number;
  /** Client's view, for the record only (observation latency is noisy): fans who saw admission before a fan ahead of them. */
  clientObservedOutOfOrder: number;
  /** Fans whose join seq names another user in the room's line. */
  seqMismatches: number;
  exact: boolean;
}

/**
 * Admission order against the order the API promises: by rank, which is the order of joining except
 * that the pre-queue's places are drawn (recomputed here from the revealed seed, with the same
 * published function anyone would use).
 */
function checkFifo(line: RoomView['line'], fans: readonly Fan[], before: OpeningDraw, after: OpeningDraw): FifoCheck {
  const commitmentHolds = after.commitment === before.commitment && (after.seed === null || createHash('sha256').update(Buffer.from(after.seed, 'hex')).digest('hex') === before.commitment);
  const drawn = after.order === 'shuffle' && after.seed !== null && after.prequeueSize !== null;
  const rankOf = (seq: number) => (drawn ? rankOfPlace({ seed: after.seed!, prequeueSize: after.prequeueSize! }, seq) : seq);
  const rows = [...line].sort((a, b) => rankOf(a.seq) - rankOf(b.seq));
  const admittedRows = rows.filter((row) => row.admitted_at !== null);
  let admittedOutOfPrefix = 0;
  rows.forEach((row, i) => {
    if (row.admitted_at !== null && i >= admittedRows.length) admittedOutOfPrefix++;
  });
  let admissionTimeInversions = 0;
  let latest = Number.NEGATIVE_INFINITY;
  for (const row of admittedRows) {
    if (row.admitted_at! < latest) admissionTimeInversions++;
    latest = Math.max(latest, row.admitted_at!);
  }
  const bySeq = new Map(rows.map((row) => [row.seq, row.user_id]));
  const joined = fans.filter((fan) => fan.seq !== undefined).sort((a, b) => rankOf(a.seq!) - rankOf(b.seq!));
  const seqMismatches = joined.filter((fan) => bySeq.get(fan.seq!) !== fan.userId).length;
  const firstNever = joined.find((fan) => fan.admittedSeenAt === undefined);
  const firstNeverRank = firstNever ? rankOf(firstNever.seq!) : Number.POSITIVE_INFINITY;
  const clientViolations = joined.filter((fan) => fan.admittedSeenAt !== undefined && rankOf(fan.seq!) > firstNeverRank).length;
  let clientObservedOutOfOrder = 0;
  let seen = Number.NEGATIVE_INFINITY;
  for (const fan of joined) {
    if (fan.admittedSeenAt === undefined) continue;
    if (fan.admittedSeenAt < seen) clientObservedOutOfOrder++;
    seen = Math.max(seen, fan.admittedSeenAt);
  }
  return {
    source: "the room's own line (SQLite via POST /__bench/room-state): seq = order of joining, admitted_at = when admitted; ranks from GET /concerts/:id/opening",
    draw: { order: after.order, prequeueSize: after.prequeueSize, commitmentHolds },
    admitted: admittedRows.length,
    admittedOutOfPrefix,
    admissionTimeInversions,
    clientViolations,
    clientObservedOutOfOrder,
    seqMismatches,
    exact: commitmentHolds && admittedOutOfPrefix === 0 && admissionTimeInversions === 0 && clientViolations === 0 && seqMismatches === 0,
  };
}

async function readRoomState(url: string, concertId: string): Promise<RoomView> {
  return callJson<RoomView>(url, 'POST', '/__bench/room-state', { body: { concertId }, expectStatus: 200 });
}

/** What is still in a non-terminal state: live sessions, pending or held holds, held reservations. */
async function unfinished(target: Target, concertId: string, room: RoomView | undefined): Promise<{ sessions: number; holds: number; reservations: number }> {
  const [row] = await target.query<{ n: string }>(`SELECT count(*) AS n FROM reservations WHERE concert_id = $1 AND status = 'held'`, [concertId]);
  return {
    sessions: room ? room.line.filter((place) => place.status === 'admitted').length : Number.NaN,
    holds: room ? room.holds.filter((hold) => hold.status === 'pending' || hold.status === 'held').length : Number.NaN,
    reservations: Number(row?.n ?? 0),
  };
}

// ─── Report ──────────────────────────────────────────────────────────────────────────────────────

interface EndpointRow {
  endpoint: string;
  requests: number;
  latencyMs: Summary;
  ok2xx: number;
  refused4xx: Record<string, number>;
  failed5xx: number;
  failed5xxByCode: Record<string, number>;
  noAnswer: number;
}

function endpointRows(): EndpointRow[] {
  return [...tallies.entries()].map(([endpoint, t]) => {
    let ok2xx = 0;
    let failed5xx = 0;
    const refused4xx: Record<string, number> = {};
    const failed5xxByCode: Record<string, number> = {};
    for (const [label, n] of t.labels) {
      const status = Number(label.split(' ')[0]);
      if (status < 400) ok2xx += n;
      else if (status >= 500) {
        failed5xx += n;
        failed5xxByCode[label] = n;
      } else refused4xx[label] = n;
    }
    return { endpoint, requests: t.latencies.length, latencyMs: summarize(t.latencies), ok2xx, refused4xx, failed5xx, failed5xxByCode, noAnswer: t.noAnswer };
  });
}

interface CpuRow {
  group: string;
  ms: number;
}

function cpuSample(target: Target): Map<string, number> {
  const sample = new Map<string, number>();
  const client = process.cpuUsage();
  sample.set('generator (this Node process)', (client.user + client.system) / 1000);
  if (target.worker) sample.set(`${target.worker.mode} (the Worker's process group)`, target.worker.cpuMs());
  if (target.bench) {
    const byCommand = target.bench.cpuMsByCommand();
    sample.set('Postgres', byCommand.get('postgres') ?? 0);
    sample.set('Redis', byCommand.get('redis-server') ?? 0);
    let adapters = 0;
    for (const [command, ms] of byCommand) if (command !== 'postgres' && command !== 'redis-server') adapters += ms;
    sample.set('adapters (Neon + Upstash, node)', adapters);
  }
  return sample;
}

function cpuDiff(before: Map<string, number>, after: Map<string, number>): CpuRow[] {
  return [...after.entries()].map(([group, ms]) => ({ group, ms: ms - (before.get(group) ?? 0) }));
}

/** Counts between two readings of the adapters. */
function wireDiff(before: WireCounts | undefined, after: WireCounts | undefined): WireCounts | undefined {
  if (!before || !after) return undefined;
  return Object.fromEntries(Object.entries(after).map(([kind, n]) => [kind, n - (before[kind as keyof WireCounts] ?? 0)]));
}

// ─── Main ────────────────────────────────────────────────────────────────────────────────────────

async function main(target: Target): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  const base = { baseUrl: target.url, concurrency: CLIENTS, signal: interrupted, serverCpuMs: target.worker && (() => target.worker!.cpuMs()), stackCpuMs: target.bench && (() => target.bench!.cpuMs()) };

  // Ceilings at the rush's client count, measured before it on the same Worker.
  await warmUp({ ...base }, WARMUP_S, log);
  log(`ceilings: generator, trivial 404, DO write; ${CLIENTS} clients, ${CEILING_MS / 1000} s each`);
  const ceilings: { name: string; description: string; result?: LoadResult; reason?: string }[] = [];
  ceilings.push({ name: 'generator (plain Node 404)', description: GENERATOR_CEILING_DESCRIPTION, result: await generatorCeiling({ concurrency: CLIENTS, durationMs: CEILING_MS, signal: interrupted }) });
  for (const kind of [TRIVIAL, DO_WRITE]) {
    const probe = await probeCeiling(target.url, kind);
    if (!probe.ok) ceilings.push({ name: kind.name, description: kind.description, reason: probe.reason });
    else ceilings.push({ name: kind.name, description: kind.description, result: await runLoad(ceilingLoad(kind, { ...base, durationMs: CEILING_MS })) });
  }
  for (const c of ceilings) log(`  ${c.name}: ${c.result ? `${formatCount(c.result.rps)} req/s, p50 ${formatMs(c.result.latencyMs.p50)} ms, p99 ${formatMs(c.result.latencyMs.p99)} ms` : `n/a (${c.reason})`}`);

  // The rush: one generator for every fan, from the first token to the last payment.
  dispatcher = new Dispatcher();
  const cpuBefore = cpuSample(target);
  const wireBefore = target.bench ? await readWire(target.bench.stack) : undefined;
  const loadBefore = os.loadavg()[0]!;
  const rushStartedAt = performance.now();
  const generator = dispatcher.run({ ...base, name: 'rush', durationMs: MAX_MS, timeoutMs: REQUEST_TIMEOUT_MS });
  const progressTimer = setInterval(() => {
    log(
      `progress ${((performance.now() - rushStartedAt) / 1000).toFixed(0)} s: joined ${formatCount(progress.joined)}, admitted ${formatCount(progress.admitted)}, ` +
        `held ${formatCount(progress.holds)}, sold ${formatCount(progress.seatsSold)}/${formatCount(SEATS)} seats (${formatCount(progress.buyers)} buyers), ` +
        `errors ${progress.errors} (5xx ${progress.fiveXx}), queued ${formatCount(dispatcher.backlog)}`,
    );
  }, 2_000);
  const runPrefix = `rush-${startedAt.getTime().toString(36)}`;
  const fans: Fan[] = Array.from({ length: FANS }, (_, index) => ({ index, userId: `${runPrefix}-${index}`, viaSocket: false, seatsBought: 0 }));
  let crowd: SocketCrowd | undefined;
  const rush: Rush = {
    concertId: '',
    sessionEndsAt: (status) => (status.sessionExpiresAt ? Date.parse(status.sessionExpiresAt) : Date.now() + QUEUE.sessionSeconds * 1000),
  };
  let concertId = '';
  let salesOpenAt = 0;
  let drawBefore: OpeningDraw | undefined;
  let joinSeconds = Number.NaN;
  let joinObjects: JoinObjects | undefined;
  let leadNote = '';
  try {
    const tokenSeconds = await phase('user tokens (POST /auth/dev-token)', fans, async (fan) => {
      const r = await call('POST /auth/dev-token', { method: 'POST', path: '/auth/dev-token', json: { userId: fan.userId } });
      fan.token = r?.status === 200 || r?.status === 201 ? r.json<{ token: string }>()?.token : undefined;
    });
    await phase('charges (POST /balance/charge)', fans.filter((fan) => fan.token), async (fan) => {
      const r = await call('POST /balance/charge', {
        method: 'POST',
        path: '/balance/charge',
        headers: { authorization: `Bearer ${fan.token!}`, 'idempotency-key': `${fan.userId}-charge` },
        json: { amount: MAX_SEATS_PER_FAN * PRICE },
      });
      if (r?.status !== 200) fan.token = undefined; // cannot pay: leaves the rush here
    });
    const ready = fans.filter((fan) => fan.token);
    // Each request in flight holds descriptors in the runtime too (its connection and the fetches it
    // makes to the adapters): counted out of the socket budget, or workerd runs out of descriptors
    // mid-rush and dies (seen at 500 clients with 9,479 sockets open).
    const limit = openFileLimit();
    const socketBudget = Math.min(ready.length, maxSockets(MODE, limit === undefined ? undefined : limit - CLIENTS * FDS_PER_REQUEST));
    // A join is a token's signing plus one room RPC: at most 2 token issues (the rates measured here,
    // 2026-11-25); sockets open at 300–450/s. A few seconds to spare. (Not from the charges: their
    // retries after a 503 would stretch the estimate by the Retry-After waits.)
    // With --proof-of-work the fans also fetch and solve a challenge each before joining (1.5× the
    // solver's time measured here, plus a challenge request costing about a join).
    const solveSeconds = PROOF_OF_WORK ? (ready.length * POW_COST * attemptMs() * 1.5) / 1000 + tokenSeconds * (ready.length / FANS) : 0;
    const lead = LEAD_S ?? Math.ceil(tokenSeconds * (ready.length / FANS) * 2 + socketBudget / 300 + 5 + solveSeconds);
    salesOpenAt = Date.now() + lead * 1000;
    concertId = await createConcert(target.url, target.adminToken, {
      title: `bench:rush ${formatCount(FANS)} fans, ${formatCount(SEATS)} seats`,
      seats: SEATS,
      price: PRICE,
      salesOpenAt: new Date(salesOpenAt),
      queue: QUEUE,
    });
    log(`concert ${concertId}: ${formatCount(SEATS)} seats at ${PRICE}; sales open in ${lead} s; queue ${JSON.stringify(QUEUE)}`);
    drawBefore = await openingDraw(target.url, concertId);
    rush.concertId = concertId;
    if (PROOF_OF_WORK) {
      // Solved before the joins, so the joins phase measures joins, not the generator's hashing.
      await phase('challenges (GET /queue/challenge) and native solves', ready, async (fan) => {
        const r = await call('GET /queue/challenge', { method: 'GET', path: `/queue/challenge?concertId=${concertId}`, headers: { authorization: `Bearer ${fan.token!}` } });
        const challenge = r?.status === 200 ? r.json<{ challenge?: EntryChallenge }>()?.challenge : undefined;
        if (!challenge) return;
        const before = process.cpuUsage();
        const solution = solveEntryChallenge(challenge);
        const used = process.cpuUsage(before);
        powSolve.cpuMs += (used.user + used.system) / 1000;
        powSolve.attempts += solution.attempts;
        powSolve.solved++;
        fan.altcha = entryProofField(challenge, solution);
      });
      log(`proof of work: ${formatCount(powSolve.solved)} solved at cost ${POW_COST}, ${(powSolve.cpuMs / 1000).toFixed(1)} CPU-s (${(powSolve.cpuMs / powSolve.solved).toFixed(1)} CPU-s per 1,000 places), ${(powSolve.attempts / powSolve.solved).toFixed(0)} attempts each on average`);
    }

    joinSeconds = await phase('joins (POST /queue/token)', ready, async (fan) => {
      fan.joinSentAt = performance.now();
      const json = fan.altcha ? { concertId, altcha: fan.altcha } : { concertId };
      const r = await call('POST /queue/token', { method: 'POST', path: '/queue/token', headers: { authorization: `Bearer ${fan.token!}` }, json });
      const body = r?.status === 201 ? r.json<{ token: string; status: string }>() : undefined;
      if (!body) return;
      fan.queueToken = body.token;
      fan.seq = seqOf(body.token);
      fan.admission = new Promise((resolve) => (fan.settle = resolve));
      progress.joined++;
      if (body.status !== 'waiting') statusSeen(fan, { status: body.status as QueueStatus['status'], position: 0, estimatedWaitSeconds: 0, sessionExpiresAt: null });
    });
    joinObjects = await joinRequestsPerObject(target.url, concertId, joinSeconds);
    const inLine = ready.filter((fan) => fan.queueToken).sort((a, b) => a.seq! - b.seq!);
    const socketFans = inLine.slice(0, socketBudget);
    log(`opening ${formatCount(socketFans.length)} queue WebSockets; ${formatCount(inLine.length - socketFans.length)} fans beyond the open-file budget poll`);
    const fallBack = (fan: Fan): void => {
      if (!fan.settle) return;
      fan.viaSocket = false;
      void poll(fan);
    };
    crowd = await openSockets({
      baseUrl: target.url,
      tokens: socketFans.map((fan) => fan.queueToken!),
      concurrency: 100,
      log,
      signal: interrupted,
      onMessage: (i, data) => {
        const fan = socketFans[i]!;
        fan.viaSocket = true;
        statusSeen(fan, JSON.parse(data) as QueueStatus);
      },
      onDrop: (i) => fallBack(socketFans[i]!),
    });
    for (const fan of socketFans) if (!fan.viaSocket) fallBack(fan);
    for (const fan of inLine.slice(socketBudget)) void poll(fan);
    const openIn = (salesOpenAt - Date.now()) / 1000;
    leadNote =
      openIn >= 0
        ? `everyone in line and ${formatCount(crowd.open)} sockets open ${openIn.toFixed(1)} s before opening`
        : `NOTE: sales opened ${(-openIn).toFixed(1)} s before the sockets were all open (lead too short)`;
    log(leadNote);

    await Promise.all(
      inLine.map(async (fan) => {
        const status = await fan.admission!;
        if (!status) fan.outcome = 'failed (5xx or no answer)';
        else if (status.status === 'admitted') fan.outcome = await shop(fan, rush, status);
        else fan.outcome = status.status === 'sold_out' ? 'sold out while waiting' : 'session ended';
      }),
    );
    for (const fan of fans) fan.outcome ??= 'failed (5xx or no answer)';
  } finally {
    clearInterval(progressTimer);
    dispatcher.close();
  }
  const rushResult = await generator;
  const rushSeconds = (performance.now() - rushStartedAt) / 1000;
  const cpu = cpuDiff(cpuBefore, cpuSample(target));
  const wireAfter = target.bench ? await readWire(target.bench.stack) : undefined;
  const loadAfter = os.loadavg()[0]!;
  await crowd?.close();

  // After every session has ended: nothing may be left in a non-terminal state.
  let room: RoomView | undefined;
  let roomReason: string | undefined;
  try {
    room = await readRoomState(target.url, concertId);
  } catch (error) {
    roomReason = error instanceof Error ? error.message : String(error);
  }
  const lastSessionEnd = Math.max(0, ...(room?.line ?? []).map((place) => place.session_expires_at ?? 0));
  const waitMs = Math.max(0, lastSessionEnd - Date.now());
  if (waitMs > 0) log(`waiting ${(waitMs / 1000).toFixed(0)} s for the last session to end before checking`);
  await sleep(waitMs);
  let left = await unfinished(target, concertId, room);
  const settleDeadline = Date.now() + 30_000;
  for (;;) {
    if (room) room = await readRoomState(target.url, concertId);
    left = await unfinished(target, concertId, room);
    if ((left.sessions === 0 || Number.isNaN(left.sessions)) && (left.holds === 0 || Number.isNaN(left.holds)) && left.reservations === 0) break;
    if (Date.now() > settleDeadline) break;
    await sleep(500);
  }

  log('invariant checker (test/helpers/invariant-rules.ts)');
  const userIds = fans.map((fan) => fan.userId);
  const violations: Violation[] = room
    ? await findViolationsWith({ query: target.query, readRoom: (id) => readRoomState(target.url, id) }, { concertIds: [concertId], userIds }, 10_000)
    : [];
  const fifo = room && drawBefore ? checkFifo(room.line, fans, drawBefore, await openingDraw(target.url, concertId)) : undefined;
  const drawAudit = OPENING_ORDER === 'shuffle' ? await verifyDraw(target.url, concertId, fans) : undefined;
  const stats: ConcertStats = await concertStats(target.url, target.adminToken, concertId);
  const totalS = (performance.now() - t0) / 1000;

  // ─── Print ─────────────────────────────────────────────────────────────────────────────────────
  const rows = endpointRows();
  const fiveXx = rows.reduce((n, row) => n + row.failed5xx, 0);
  const noAnswer = rows.reduce((n, row) => n + row.noAnswer, 0);
  const outcomes: Record<string, number> = {};
  for (const fan of fans) outcomes[fan.outcome!] = (outcomes[fan.outcome!] ?? 0) + 1;
  const joinOrderError = orderError(fans);
  const soldOutS = rush.soldOutAt === undefined ? undefined : (rush.soldOutAt - salesOpenAt) / 1000;
  console.log(
    `bench:rush — ${formatCount(FANS)} fans, ${formatCount(SEATS)} seats, ${CLIENTS} clients, ${target.worker ? `mode ${target.worker.mode}` : `base URL ${target.url}`}, ` +
      `abandon share ${ABANDON_SHARE}, queue ${JSON.stringify(QUEUE)}. One machine for client, Worker, Postgres and Redis: read the ceilings beside the figures.`,
  );
  console.log(`\nRush (${startedAt.toISOString()}, ${rushSeconds.toFixed(0)} s from the first token to the last fan done; ${totalS.toFixed(0)} s in all)`);
  console.log(`  joins: ${formatCount(progress.joined)} in ${joinSeconds.toFixed(1)} s = ${formatCount(progress.joined / joinSeconds)} joins/s; ${leadNote}`);
  if (PROOF_OF_WORK) {
    console.log(
      `  proof of work (cost ${POW_COST}): ${formatCount(powSolve.solved)} solved by the native solver in ${(powSolve.cpuMs / 1000).toFixed(1)} CPU-s = ` +
        `${(powSolve.cpuMs / powSolve.solved).toFixed(1)} CPU-s per 1,000 places, ${(powSolve.attempts / powSolve.solved).toFixed(0)} attempts each on average`,
    );
  }
  if (joinObjects) {
    const lobbies = joinObjects.lobbiesPerSecond;
    console.log(
      `  join requests per object per second: room ${joinObjects.roomPerSecond.toFixed(1)} ` +
        `(${formatCount(joinObjects.room.join)} single joins, ${formatCount(joinObjects.room.joinBatch)} lobby batches carrying ${formatCount(joinObjects.room.joinedInBatches)})` +
        (lobbies.length ? `; lobbies (${lobbies.length}) ${lobbies.map((rate) => rate.toFixed(0)).join(' / ')}` : '; no lobbies (--lobby-shards 1)'),
    );
  }
  console.log(`  order error of places against join send order: at most ${formatCount(joinOrderError.places)} places, ${joinOrderError.ms.toFixed(0)} ms`);
  console.log(`  opening → sold out: ${soldOutS === undefined ? `NOT SOLD OUT by the fans (room: sold ${formatCount(stats.seats.sold)})` : `${soldOutS.toFixed(1)} s`} (client clock: the payment that sold the last seat)`);
  console.log(`  fans: ${formatCounts(outcomes)}`);
  console.log(`  seats: sold ${formatCount(stats.seats.sold)}, held ${formatCount(stats.seats.held)}, available ${formatCount(stats.seats.available)} (room); bought by fans told 201: ${formatCount(progress.seatsSold)}; revenue ${formatCount(stats.revenue)}`);
  console.log(`  line: waiting ${formatCount(stats.waiting)}, admitted ${formatCount(stats.admitted)} (completed ${formatCount(stats.completed)}, expired ${formatCount(stats.expired)}, active ${formatCount(stats.active)})`);
  console.log(`  generator: ${formatCount(rushResult.requests)} requests at ${formatCount(rushResult.rps)} req/s average over the rush, client CPU ${rushResult.clientCpuPct.toFixed(0)} % of a core`);

  const hold = rows.find((row) => row.endpoint === 'POST /reservations');
  const pay = rows.find((row) => row.endpoint === 'POST /payment');
  const p = (row: EndpointRow | undefined, q: 'p50' | 'p99'): string => (row ? `${formatMs(row.latencyMs[q])} ms` : 'n/a');
  console.log(
    `  checkout p99: hold (POST /reservations) ${p(hold, 'p99')}, payment (POST /payment) ${p(pay, 'p99')} ` +
      `(p50 ${p(hold, 'p50')} / ${p(pay, 'p50')}); latency ${latencyLabel(LATENCY)}; load average 1 min ${loadBefore.toFixed(2)} at the start of the rush, ${loadAfter.toFixed(2)} at its end`,
  );
  console.log(`  distance: ${describeLatency(LATENCY)}`);
  const wire = wireDiff(wireBefore, wireAfter);
  if (wire) {
    console.log(
      `  round trips the adapters counted during the rush: Postgres on the room's WebSockets ${formatCount(wire.pgWsRoundTrips ?? 0)} ` +
        `(+${formatCount(wire.pgWsConnections ?? 0)} connections), Neon HTTP ${formatCount(wire.pgHttpRequests ?? 0)}, Upstash ${formatCount(wire.redisRequests ?? 0)} ` +
        `for ${formatCount(rushResult.requests)} requests of every kind (per kind: bench:holds and bench:locks)`,
    );
  }
  printTable(
    'Per endpoint (latency from send to last byte; 4xx by code)',
    ['endpoint', ...rightAligned('requests'), ...LATENCY_COLUMNS, ...rightAligned('2xx'), '4xx', '5xx', ...rightAligned('no answer')],
    rows.map((row) => [row.endpoint, formatCount(row.requests), ...latencyCells(row.latencyMs), formatCount(row.ok2xx), formatCounts(row.refused4xx), row.failed5xx === 0 ? '0' : formatCounts(row.failed5xxByCode), formatCount(row.noAnswer)]),
  );
  printTable(
    `CPU per process group during the rush (${rushSeconds.toFixed(0)} s wall; 2 cores = 200 %)`,
    ['group', ...rightAligned('CPU s', '% of a core', 'ms / request')],
    cpu.map((row) => [row.group, (row.ms / 1000).toFixed(1), `${((row.ms / 1000 / rushSeconds) * 100).toFixed(0)} %`, formatMs(row.ms / rushResult.requests)]),
  );
  const trivial = ceilings.find((c) => c.name === TRIVIAL.name)?.result;
  printTable(
    `Ceilings at ${CLIENTS} clients, measured just before the rush (${CEILING_MS / 1000} s each)`,
    ['ceiling', ...rightAligned('req/s', '× trivial'), ...LATENCY_COLUMNS, ...rightAligned('server CPU', 'srv ms/req', 'client CPU'), 'answers'],
    ceilings.map((c) =>
      c.result
        ? [c.name, formatCount(c.result.rps), trivial ? formatRatio(c.result.rps / trivial.rps) : '–', ...latencyCells(c.result.latencyMs), `${c.result.serverCpuPct.toFixed(0)} %`, formatMs(c.result.serverCpuMsPerRequest), `${c.result.clientCpuPct.toFixed(0)} %`, formatCounts(c.result.statuses)]
        : [c.name, 'n/a', '', '', '', '', '', '', '', '', c.reason ?? ''],
    ),
  );
  if (trivial) console.log(`The rush averaged ${formatRatio(rushResult.rps / trivial.rps)} of the trivial ceiling's req/s (every endpoint together, waits included).`);

  console.log('\nFairness (admission in rank order: the pre-queue in the order drawn at opening, everyone after by arrival)');
  if (fifo) {
    console.log(`  source: ${fifo.source}`);
    console.log(
      `  opening order ${fifo.draw.order}; pre-queue ${fifo.draw.prequeueSize === null ? 'not drawn' : formatCount(fifo.draw.prequeueSize)}; ` +
        `revealed seed matches the commitment published before opening: ${fifo.draw.commitmentHolds ? 'yes' : 'NO'}`,
    );
    console.log(
      `  ${formatCount(fifo.admitted)} admitted; admitted places outside the first ${formatCount(fifo.admitted)} by rank: ${fifo.admittedOutOfPrefix}; ` +
        `admitted earlier than a place ahead of them: ${fifo.admissionTimeInversions}; join seq naming another user: ${fifo.seqMismatches}`,
    );
    console.log(
      `  client view: fans seen admitted who joined after a fan never admitted: ${fifo.clientViolations}; ` +
        `seen admitted before someone ahead of them (observation latency, not judged): ${formatCount(fifo.clientObservedOutOfOrder)}`,
    );
    console.log(`  → ${fifo.exact ? 'FIFO exact (by rank)' : 'FIFO BROKEN'}`);
  } else console.log(`  not checked: the room's line could not be read (${roomReason})`);

  if (drawAudit) {
    console.log(`\nverify-draw (src/lib/draw-audit.ts, as npm run verify-draw)${drawAudit.fanSeq === undefined ? '' : ` with the queue token of place ${drawAudit.fanSeq}`}`);
    for (const check of drawAudit.clean.checks.filter((c) => !c.ok)) console.log(`  FAIL ${check.name}: ${check.detail}`);
    console.log(`  → ${drawAudit.clean.ok ? 'OK' : 'FAILED'} (rank table digest ${drawAudit.clean.rankTableDigest ?? '–'}); with one byte of one leaf changed: ${drawAudit.tampered === undefined ? 'nothing drawn to change' : drawAudit.tampered.ok ? 'still OK (BROKEN)' : 'FAILED, as it must'}`);
  }

  console.log('\nInvariants (DESIGN.md §6, test/helpers/invariant-rules.ts) and end state');
  if (!room) console.log(`  room checks skipped: ${roomReason}`);
  console.log(`  violations: ${violations.length}`);
  if (target.worker) {
    // What the runtime said (warnings and errors; errors first): the first place to look for any 5xx.
    console.log(`  worker log: ${formatCount(target.worker.logs.count)} warning/error lines during the run`);
    for (const line of target.worker.logs.first) console.log(`    ${line}`);
  }
  for (const v of violations.slice(0, 20)) console.log(`    ${v.rule}: ${JSON.stringify(v.detail).slice(0, 400)}`);
  console.log(`  non-terminal after the last session ended: live sessions ${left.sessions}, pending/held holds ${left.holds}, held reservations in Postgres ${left.reservations}`);
  const accounted = stats.seats.sold + stats.seats.available + stats.seats.held === SEATS && stats.seats.held === 0;
  console.log(`  seats: ${stats.seats.sold === SEATS ? 'all sold' : accounted ? `${formatCount(stats.seats.available)} left available, none held` : 'NOT ACCOUNTED FOR'}`);
  console.log(`  5xx: ${fiveXx}; requests with no answer: ${noAnswer}; socket failures: ${crowd ? formatCounts(crowd.failures) : '–'}, drops ${crowd?.dropped() ?? 0}`);

  const failures = [
    ...(violations.length > 0 ? [`${violations.length} invariant violation(s)`] : []),
    ...(fiveXx > 0 ? [`${fiveXx} × 5xx`] : []),
    ...(noAnswer > 0 ? [`${noAnswer} request(s) with no answer`] : []),
    ...(fifo && !fifo.exact ? ['FIFO broken'] : []),
    ...(drawAudit && (!drawAudit.clean.ok || drawAudit.tampered?.ok) ? ['verify-draw failed'] : []),
    ...(left.sessions > 0 || left.holds > 0 || left.reservations > 0 ? ['fans left in a non-terminal state'] : []),
    ...(!accounted ? ['seats not accounted for'] : []),
    ...(outcomes['failed (5xx or no answer)'] ? [`${outcomes['failed (5xx or no answer)']} fan(s) failed`] : []),
  ];
  console.log(`\n${failures.length === 0 ? 'PASS' : `FAIL: ${failures.join('; ')}`}`);
  if (failures.length > 0) process.exitCode = 1;

  const written = await writeJsonReport({
    benchmark: 'rush',
    startedAt: startedAt.toISOString(),
    fans: FANS,
    seats: SEATS,
    clients: CLIENTS,
    mode: target.worker?.mode,
    baseUrl: BASE_URL,
    abandonShare: ABANDON_SHARE,
    price: PRICE,
    queue: QUEUE,
    concertId,
    joinsPerSecond: progress.joined / joinSeconds,
    proofOfWork: PROOF_OF_WORK ? { cost: POW_COST, ...powSolve, cpuSecondsPer1000Places: powSolve.cpuMs / powSolve.solved } : null,
    joinObjects,
    joinOrderError,
    joined: progress.joined,
    openingToSoldOutSeconds: soldOutS,
    lead: leadNote,
    outcomes,
    seatsBoughtByFans: progress.seatsSold,
    stats,
    endpoints: rows,
    latency: LATENCY ?? null,
    checkoutP99Ms: { hold: hold?.latencyMs.p99, payment: pay?.latencyMs.p99 },
    loadAverage1m: { start: loadBefore, end: loadAfter },
    adapterRoundTrips: wire,
    cpu: cpu.map((row) => ({ ...row, pctOfCore: (row.ms / 1000 / rushSeconds) * 100 })),
    rush: { requests: rushResult.requests, rps: rushResult.rps, seconds: rushSeconds, clientCpuPct: rushResult.clientCpuPct },
    ceilings: ceilings.map((c) => ({ name: c.name, description: c.description, reason: c.reason, rps: c.result?.rps, latencyMs: c.result?.latencyMs, clientCpuPct: c.result?.clientCpuPct, serverCpuMsPerRequest: c.result?.serverCpuMsPerRequest })),
    fifo,
    violations,
    nonTerminal: left,
    fiveXx,
    noAnswer,
    sockets: crowd ? { open: crowd.open, failures: crowd.failures, dropped: crowd.dropped() } : undefined,
    failures,
    elapsedSeconds: totalS,
  });
  if (written) log(`wrote ${written}`);
}

await runFramed(log, async () => {
  const target = await startTarget();
  try {
    await main(target);
  } finally {
    await target.close();
  }
});

/**
 * The rush's draw checked as an outsider would (`npm run verify-draw`), with one drawn fan's queue
 * token, then again with one byte of one published leaf changed, which must fail.
 */
async function verifyDraw(baseUrl: string, concertId: string, fans: readonly Fan[]) {
  const fan = fans.find((f) => f.queueToken !== undefined && f.seq === 1) ?? fans.find((f) => f.queueToken !== undefined);
  let changed = false;
  const get =
    (tamper: boolean): FetchJson =>
    async (path, headers = {}) => {
      const response = await fetch(new URL(path, baseUrl), { headers });
      const body = (await response.json().catch(() => null)) as { leaves?: string[] } | null;
      if (tamper && body?.leaves?.length) {
        body.leaves[0] = (body.leaves[0]![0] === '0' ? '1' : '0') + body.leaves[0]!.slice(1);
        changed = true;
      }
      return { status: response.status, body };
    };
  const options = { concertId, ...(fan?.queueToken ? { queueToken: fan.queueToken } : {}) };
  const clean = await auditDraw(get(false), options);
  const tampered = await auditDraw(get(true), options);
  // Nobody drawn (no leaves): there was nothing to change.
  return { fanSeq: fan?.seq, clean, tampered: changed ? tampered : undefined };
}
