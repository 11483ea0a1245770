/**
 * `npm run bench:indexes` (issue 4): what each lookup index of migrations/0001_init.sql buys on the
 * seed's volumes — 10,000 concerts / 500,000 seats for the seat lookups, 500,000 concerts for the
 * date lookup — measured as PostgreSQL's own `EXPLAIN ANALYZE` "Execution Time" (server side: no
 * network, no driver, no planning).
 *
 * Every variant runs inside a transaction that drops the indexes it goes without (`DROP INDEX`,
 * `ALTER TABLE … DROP CONSTRAINT` for the unique key) and ends in ROLLBACK, so the schema afterwards is
 * the migrated one, byte for byte; the script checks that at the end.
 *
 * The two seat indexes both lead with `concert_id`, so either one serves both seat lookups. Dropping
 * only the index under test would therefore measure it against its sibling, not against a sequential
 * scan. Each seat lookup is reported both ways: no index → only this index (what the index buys on its
 * own, the seed's comparison), and only the other index → both (what it adds to the migrated schema).
 * The no-index case is measured twice: as the planner plans it (a parallel sequential scan with the
 * default settings) and with parallel workers off, which on a 2-core machine is often the faster one.
 *
 * Uses DATABASE_URL when set (everything happens in a throwaway schema that is dropped afterwards),
 * otherwise a throwaway PostgreSQL cluster of its own. `--runs N` (default 50), `--warmups N`
 * (default 5), `--json <file>`.
 */
import pg from 'pg';
import { migrate } from '../scripts/migrate.ts';
import { POSTGRES_BIN_DIRS, findPostgresBinDir, startPostgresCluster } from '../scripts/stack/postgres.ts';
import { flagValue, intFlag, writeJsonReport } from './lib/cli.ts';
import { summarize } from './lib/stats.ts';
import type { Summary } from './lib/stats.ts';
import { formatCount, formatMs, formatRatio, printTable } from './lib/table.ts';

/** The seed's volumes (issue 4). */
const SEAT_CONCERTS = 10_000;
const SEATS_PER_CONCERT = 50;
const DATE_CONCERTS = 500_000;
/** Concert dates are spread uniformly over ten years, 2026-01-01 .. 2035-12-31: ~137 concerts a date at 500,000. */
const FIRST_DATE = '2026-01-01';
const DAYS = 3_652;
/** Seat status mix, cumulative: 75 % available, 5 % held, 20 % sold. */
const AVAILABLE_BELOW = 0.75;
const HELD_BELOW = 0.8;

const RUNS = intFlag('runs', 50);
const WARMUPS = intFlag('warmups', 5);
flagValue('json'); // fail on a bare --json now, not after the load

const log = (message: string): void => console.error(`[bench:indexes] ${message}`);

// ─── Queries and variants ────────────────────────────────────────────────────────────────────────

const DROP = {
  status: 'DROP INDEX seats_concert_status_idx',
  seatKey: 'ALTER TABLE seats DROP CONSTRAINT seats_concert_seat_number_key',
  date: 'DROP INDEX concerts_date_idx',
} as const;

/** A schema variant: the indexes it keeps, named for the reader, and the statements that remove the rest. */
interface Variant {
  key: string;
  label: string;
  drop: readonly string[];
  /** SET LOCAL statements for this variant only (undone by the ROLLBACK). */
  settings?: readonly string[];
  /** The plan should scan this index (or the table, for 'Seq Scan'); anything else is flagged. */
  expect: string;
}

interface QuerySpec {
  key: string;
  name: string;
  /** The index under test. */
  index: string;
  sql: string;
  variants: readonly Variant[];
  /** [before, after] variant keys of each reported comparison. */
  comparisons: readonly (readonly [string, string])[];
}

const STATUS_ONLY = 'only (concert_id, status)';
const SEAT_KEY_ONLY = 'only unique (concert_id, seat_number)';
const BOTH = 'both (as migrated)';
/**
 * On a 2-core machine a parallel sequential scan (the planner's choice by default) is often slower than
 * a plain one, so the no-index case is also measured with parallel workers off.
 */
const SERIAL = ['SET LOCAL max_parallel_workers_per_gather = 0'] as const;
const NO_SEAT_INDEX = [DROP.status, DROP.seatKey];

/** The two no-index variants: as the planner plans it, and without parallel workers. */
function withoutIndex(label: string, drop: readonly string[]): Variant[] {
  return [
    { key: 'none', label, drop, expect: 'Seq Scan' },
    { key: 'serial', label: `${label}, no parallel workers`, drop, settings: SERIAL, expect: 'Seq Scan' },
  ];
}

const SEAT_QUERIES: readonly QuerySpec[] = [
  {
    key: 'available-seats',
    name: 'available seats of a concert',
    index: 'seats_concert_status_idx',
    sql: `SELECT id, seat_number, section, price FROM seats
           WHERE concert_id = $1 AND status = 'available' ORDER BY seat_number`,
    variants: [
      ...withoutIndex('no seat index', NO_SEAT_INDEX),
      { key: 'this', label: STATUS_ONLY, drop: [DROP.seatKey], expect: 'seats_concert_status_idx' },
      { key: 'other', label: SEAT_KEY_ONLY, drop: [DROP.status], expect: 'seats_concert_seat_number_key' },
      { key: 'both', label: BOTH, drop: [], expect: 'seats_concert_status_idx' },
    ],
    comparisons: [
      ['none', 'this'],
      ['serial', 'this'],
      ['other', 'both'],
    ],
  },
  {
    key: 'seat-by-number',
    name: 'one seat by (concert, number)',
    index: 'seats_concert_seat_number_key',
    sql: `SELECT id, status, price FROM seats WHERE concert_id = $1 AND seat_number = $2`,
    variants: [
      ...withoutIndex('no seat index', NO_SEAT_INDEX),
      { key: 'this', label: SEAT_KEY_ONLY, drop: [DROP.status], expect: 'seats_concert_seat_number_key' },
      { key: 'other', label: STATUS_ONLY, drop: [DROP.seatKey], expect: 'seats_concert_status_idx' },
      { key: 'both', label: BOTH, drop: [], expect: 'seats_concert_seat_number_key' },
    ],
    comparisons: [
      ['none', 'this'],
      ['serial', 'this'],
      ['other', 'both'],
    ],
  },
];

const DATE_QUERY: QuerySpec = {
  key: 'concerts-on-date',
  name: 'concerts on a date',
  index: 'concerts_date_idx',
  sql: `SELECT id, title, venue, date, starts_at, seat_count FROM concerts
         WHERE date = $1 ORDER BY starts_at, id`,
  variants: [
    ...withoutIndex('no date index', [DROP.date]),
    { key: 'both', label: 'concerts_date_idx (as migrated)', drop: [], expect: 'concerts_date_idx' },
  ],
  comparisons: [
    ['none', 'both'],
    ['serial', 'both'],
  ],
};

// ─── EXPLAIN ANALYZE ─────────────────────────────────────────────────────────────────────────────

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Parallel Aware'?: boolean;
  'Workers Launched'?: number;
  'Actual Rows': number;
  'Actual Loops': number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

interface ExplainOutput {
  Plan: PlanNode;
  'Planning Time': number;
  'Execution Time': number;
}

/** "Sort → Bitmap Heap Scan on concerts → Bitmap Index Scan using concerts_date_idx". */
function describePlan(node: PlanNode): string {
  // FORMAT JSON says "Seq Scan" plus "Parallel Aware" where the text format says "Parallel Seq Scan".
  const type = `${node['Parallel Aware'] ? 'Parallel ' : ''}${node['Node Type']}`;
  const label = node['Index Name']
    ? `${type} using ${node['Index Name']}`
    : node['Relation Name']
      ? `${type} on ${node['Relation Name']}`
      : node['Workers Launched'] !== undefined
        ? `${type} (${node['Workers Launched']} workers)`
        : type;
  const children = node.Plans ?? [];
  return children.length === 0 ? label : `${label} → ${children.map(describePlan).join(' + ')}`;
}

interface VariantResult {
  query: string;
  queryName: string;
  variant: string;
  indexes: string;
  /** Distinct plans seen over the measured runs, with how many runs used each. */
  plans: { plan: string; runs: number }[];
  /** Whether every measured run's plan scanned what the variant expects. */
  planAsExpected: boolean;
  expected: string;
  rowsMean: number;
  executionMs: Summary;
  planningMs: Summary;
  /** Shared buffers (8 kB pages) touched per run, hit + read, including parallel workers. */
  buffersMean: number;
  buffersReadMean: number;
}

/**
 * Runs `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of `spec.sql` once per parameter set, inside a
 * transaction that first drops what `variant` goes without and then rolls back. The first `warmups`
 * parameter sets are run but not counted.
 */
async function measureVariant(
  client: pg.Client,
  spec: QuerySpec,
  variant: Variant,
  params: readonly (readonly unknown[])[],
  warmups: number,
): Promise<VariantResult> {
  const execution: number[] = [];
  const planning: number[] = [];
  const rows: number[] = [];
  const buffers: number[] = [];
  const reads: number[] = [];
  const plans = new Map<string, number>();
  let asExpected = true;
  await client.query('BEGIN');
  try {
    for (const statement of [...(variant.settings ?? []), ...variant.drop]) await client.query(statement);
    for (const [i, values] of params.entries()) {
      const result = await client.query<{ 'QUERY PLAN': ExplainOutput[] }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${spec.sql}`,
        [...values],
      );
      const explain = result.rows[0]?.['QUERY PLAN'][0];
      if (!explain) throw new Error(`EXPLAIN returned nothing for ${spec.key}`);
      if (i < warmups) continue;
      const plan = describePlan(explain.Plan);
      plans.set(plan, (plans.get(plan) ?? 0) + 1);
      if (!plan.includes(variant.expect)) asExpected = false;
      execution.push(explain['Execution Time']);
      planning.push(explain['Planning Time']);
      rows.push(explain.Plan['Actual Rows'] * explain.Plan['Actual Loops']);
      const hit = explain.Plan['Shared Hit Blocks'] ?? 0;
      const read = explain.Plan['Shared Read Blocks'] ?? 0;
      buffers.push(hit + read);
      reads.push(read);
    }
  } finally {
    await client.query('ROLLBACK');
  }
  return {
    query: spec.key,
    queryName: spec.name,
    variant: variant.key,
    indexes: variant.label,
    plans: [...plans].map(([plan, runs]) => ({ plan, runs })).sort((a, b) => b.runs - a.runs),
    planAsExpected: asExpected,
    expected: variant.expect,
    rowsMean: summarize(rows).mean,
    executionMs: summarize(execution),
    planningMs: summarize(planning),
    buffersMean: summarize(buffers).mean,
    buffersReadMean: summarize(reads).mean,
  };
}

async function measureQuery(
  client: pg.Client,
  spec: QuerySpec,
  params: readonly (readonly unknown[])[],
): Promise<VariantResult[]> {
  const results: VariantResult[] = [];
  for (const variant of spec.variants) {
    const t0 = Date.now();
    const result = await measureVariant(client, spec, variant, params, WARMUPS);
    log(`${spec.key} / ${variant.label}: mean ${formatMs(result.executionMs.mean)} ms (${Date.now() - t0} ms)`);
    results.push(result);
  }
  return results;
}

// ─── Data ────────────────────────────────────────────────────────────────────────────────────────

/**
 * Inserts `count` concerts on dates drawn uniformly from the ten-year range, in one set-based
 * statement. Dates are random per row, so one date's concerts are scattered over the table the way
 * concerts created over time for many dates would be.
 */
async function insertConcerts(client: pg.Client, count: number, firstNumber: number): Promise<void> {
  await client.query(
    `INSERT INTO concerts (title, venue, date, starts_at, sales_open_at, seat_count)
     SELECT 'Bench concert #' || n, 'Venue ' || (n % 997), d,
            (d + time '20:00') AT TIME ZONE 'UTC',
            ((d - 30) + time '10:00') AT TIME ZONE 'UTC',
            $4
       FROM (SELECT n, $3::date + floor(random() * $5)::int AS d
               FROM generate_series($1::int, $2::int) AS n) AS g`,
    [firstNumber, firstNumber + count - 1, FIRST_DATE, SEATS_PER_CONCERT, DAYS],
  );
}

/**
 * 50 seats for every concert there is, each concert's seats inserted together (as POST
 * /admin/concerts does, so they share heap pages), sections and prices by seat number, statuses drawn
 * per seat from the status mix.
 */
async function insertSeats(client: pg.Client): Promise<void> {
  await client.query(
    `INSERT INTO seats (concert_id, seat_number, section, price, status)
     SELECT concert_id, s,
            CASE WHEN s <= 10 THEN 'front' ELSE 'general' END,
            CASE WHEN s <= 10 THEN 900 ELSE 500 END,
            CASE WHEN r < $1 THEN 'available' WHEN r < $2 THEN 'held' ELSE 'sold' END
       FROM (SELECT c.id AS concert_id, s, random() AS r
               FROM concerts AS c CROSS JOIN LATERAL generate_series(1, c.seat_count) AS s) AS g`,
    [AVAILABLE_BELOW, HELD_BELOW],
  );
}

/** A date `days` after FIRST_DATE, as YYYY-MM-DD. */
function dateAfterFirst(days: number): string {
  const date = new Date(`${FIRST_DATE}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

async function count(client: pg.Client, table: 'concerts' | 'seats'): Promise<number> {
  const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]?.n ?? 0);
}

/** Index and constraint definitions of the bench schema, to prove every ROLLBACK restored them. */
async function schemaFingerprint(client: pg.Client, schema: string): Promise<string> {
  const result = await client.query<{ line: string }>(
    `SELECT 'index ' || indexname || ': ' || indexdef AS line FROM pg_indexes WHERE schemaname = $1
     UNION ALL
     SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(c.oid)
       FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace WHERE n.nspname = $1
     ORDER BY 1`,
    [schema],
  );
  return result.rows.map((row) => row.line).join('\n');
}

// ─── Database lifetime ───────────────────────────────────────────────────────────────────────────

const SCHEMA = `bench_indexes_${process.pid}`;

interface Database {
  /** The server's URL, and the same with search_path set to the bench schema. */
  url: string;
  schemaUrl: string;
  kind: 'external DATABASE_URL' | 'throwaway cluster';
  stop(): Promise<void>;
}

let database: Database | undefined;
let client: pg.Client | undefined;
let schemaCreated = false;
let interrupted = false;
let cleaning: Promise<void> | undefined;

function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  const existing = parsed.searchParams.get('options');
  parsed.searchParams.set('options', `${existing ? `${existing} ` : ''}-c search_path=${schema}`);
  return parsed.toString();
}

async function openDatabase(): Promise<Database> {
  const external = process.env.DATABASE_URL?.trim();
  if (external) {
    log('using DATABASE_URL; tables go into a throwaway schema that is dropped at the end');
    return {
      url: external,
      schemaUrl: withSearchPath(external, SCHEMA),
      kind: 'external DATABASE_URL',
      stop: () => Promise.resolve(),
    };
  }
  const binDir = findPostgresBinDir();
  if (!binDir) {
    throw new Error(
      `PostgreSQL server binaries not found on PATH or in ${POSTGRES_BIN_DIRS.join(', ')}. ` +
        'Install them (Debian/Ubuntu: `apt-get install postgresql`) or set DATABASE_URL.',
    );
  }
  const server = await startPostgresCluster(binDir, log);
  return {
    url: server.url,
    schemaUrl: withSearchPath(server.url, SCHEMA),
    kind: 'throwaway cluster',
    stop: () => server.stop(),
  };
}

/** Idempotent: ends our session (which aborts any open transaction), drops the schema, stops the cluster. */
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    await client?.end().catch(() => undefined);
    if (database && schemaCreated && database.kind === 'external DATABASE_URL') {
      const admin = new pg.Client({ connectionString: database.url });
      admin.on('error', () => undefined);
      try {
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
        log(`dropped schema ${SCHEMA}`);
      } catch (error) {
        log(`could not drop schema ${SCHEMA}: ${String(error)}`);
      } finally {
        await admin.end().catch(() => undefined);
      }
    }
    await database?.stop();
  })());
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ─── Main ────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  database = await openDatabase();

  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${SCHEMA}`);
    schemaCreated = true;
  } finally {
    await admin.end();
  }
  await migrate(database.schemaUrl);

  client = new pg.Client({ connectionString: database.schemaUrl });
  client.on('error', (error) => log(`connection error: ${error.message}`));
  await client.connect();
  const db = client;

  const version = (await db.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?';
  const settings = (
    await db.query<{ name: string; setting: string }>(
      `SELECT name, current_setting(name) AS setting FROM pg_settings
        WHERE name IN ('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'jit', 'random_page_cost')
        ORDER BY name`,
    )
  ).rows;
  const fingerprint = await schemaFingerprint(db, SCHEMA);
  const params = RUNS + WARMUPS;

  // Pass 1: the seat lookups, on 10,000 concerts with 50 seats each.
  let t = performance.now();
  await db.query('SELECT setseed(0.42)');
  await insertConcerts(db, SEAT_CONCERTS, 1);
  await insertSeats(db);
  await db.query('VACUUM (ANALYZE) concerts, seats');
  const seatVolumes = { concerts: await count(db, 'concerts'), seats: await count(db, 'seats') };
  const statusMix = (
    await db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM seats GROUP BY status ORDER BY 2 DESC',
    )
  ).rows.map((row) => `${row.status} ${((100 * Number(row.n)) / seatVolumes.seats).toFixed(1)} %`);
  log(
    `pass 1 loaded: ${formatCount(seatVolumes.concerts)} concerts, ${formatCount(seatVolumes.seats)} seats ` +
      `(${statusMix.join(', ')}) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );

  // A different concert (and seat number) every run. Ids are random UUIDs, so id order is a random sample.
  const concertIds = (
    await db.query<{ id: string }>('SELECT id FROM concerts ORDER BY id LIMIT $1', [params])
  ).rows.map((row) => row.id);
  const seatParams: Record<string, unknown[][]> = {
    'available-seats': concertIds.map((id) => [id]),
    'seat-by-number': concertIds.map((id, i) => [id, ((i * 17) % SEATS_PER_CONCERT) + 1]),
  };
  const results: VariantResult[] = [];
  for (const spec of SEAT_QUERIES) results.push(...(await measureQuery(db, spec, seatParams[spec.key] ?? [])));

  // Pass 2: the date lookup, after topping concerts up to 500,000 (the added ones have no seat rows).
  t = performance.now();
  await insertConcerts(db, DATE_CONCERTS - seatVolumes.concerts, seatVolumes.concerts + 1);
  await db.query('VACUUM (ANALYZE) concerts');
  const dateVolumes = {
    concerts: await count(db, 'concerts'),
    dates: Number(
      (await db.query<{ n: string }>('SELECT count(DISTINCT date) AS n FROM concerts')).rows[0]?.n ?? 0,
    ),
  };
  log(
    `pass 2 loaded: ${formatCount(dateVolumes.concerts)} concerts in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const dateParams = Array.from({ length: params }, (_, i) => [dateAfterFirst(Math.floor((i * DAYS) / params))]);
  results.push(...(await measureQuery(db, DATE_QUERY, dateParams)));

  const restored = (await schemaFingerprint(db, SCHEMA)) === fingerprint;
  const elapsedS = (performance.now() - t0) / 1000;

  // ─── Report ──────────────────────────────────────────────────────────────────────────────────
  const find = (query: string, variant: string): VariantResult => {
    const found = results.find((r) => r.query === query && r.variant === variant);
    if (!found) throw new Error(`no result for ${query}/${variant}`);
    return found;
  };
  const comparisons = [...SEAT_QUERIES, DATE_QUERY].flatMap((spec) =>
    spec.comparisons.map(([beforeKey, afterKey]) => {
      const before = find(spec.key, beforeKey);
      const after = find(spec.key, afterKey);
      return {
        query: spec.key,
        queryName: spec.name,
        index: spec.index,
        before: before.indexes,
        after: after.indexes,
        rows: after.rowsMean,
        beforeMeanMs: before.executionMs.mean,
        afterMeanMs: after.executionMs.mean,
        speedup: before.executionMs.mean / after.executionMs.mean,
        beforePages: before.buffersMean,
        afterPages: after.buffersMean,
      };
    }),
  );

  const settingsText = settings.map((s) => `${s.name}=${s.setting}`).join(', ');
  console.log(`bench:indexes — PostgreSQL ${version} (${database.kind}); ${settingsText}`);
  console.log(
    `Figures: mean "Execution Time" of EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) over ${RUNS} runs after ${WARMUPS} ` +
      'warm-ups, a different concert/date each run: server-side time, no network, driver or planning.',
  );
  console.log(
    `Seat lookups: ${formatCount(seatVolumes.concerts)} concerts × ${SEATS_PER_CONCERT} seats = ` +
      `${formatCount(seatVolumes.seats)} seats (${statusMix.join(', ')}).`,
  );
  console.log(
    `Date lookup: measured after topping concerts up to ${formatCount(dateVolumes.concerts)} ` +
      `(the added ones have no seat rows), on random dates over ${formatCount(dateVolumes.dates)} days ` +
      `from ${FIRST_DATE}.`,
  );
  console.log(
    'Without an index = dropped inside a transaction that is rolled back; ' +
      'the before/after columns name the indexes present.',
  );
  console.log(
    '"No parallel workers" = the same scan with max_parallel_workers_per_gather = 0 for that variant only.',
  );

  printTable(
    'Mean execution time, before → after',
    [
      'query',
      'before',
      'after',
      { header: 'rows', align: 'right' },
      { header: 'pages', align: 'right' },
      'before ms',
      'after ms',
      '×',
    ],
    comparisons.map((c) => [
      c.queryName,
      c.before,
      c.after,
      formatCount(c.rows),
      `${formatCount(c.beforePages)} → ${formatCount(c.afterPages)}`,
      formatMs(c.beforeMeanMs),
      formatMs(c.afterMeanMs),
      formatRatio(c.speedup),
    ]),
  );

  console.log(
    'pages = shared buffers touched per run. Where both sides are index plans touching the same few pages, ' +
      'the ratio of tens of microseconds is mostly noise.',
  );

  printTable(
    'Every variant: plan, execution time (ms) and shared buffers (8 kB pages) per run',
    ['query', 'indexes', 'plan', 'mean', 'p50', 'p95', 'max', 'pages', 'check'],
    results.map((r) => [
      r.queryName,
      r.indexes,
      r.plans.map((p) => (r.plans.length > 1 ? `${p.plan} (${p.runs})` : p.plan)).join(' | '),
      formatMs(r.executionMs.mean),
      formatMs(r.executionMs.p50),
      formatMs(r.executionMs.p95),
      formatMs(r.executionMs.max),
      formatCount(r.buffersMean),
      r.planAsExpected ? 'ok' : `expected ${r.expected}`,
    ]),
  );

  console.log('');
  const unexpected = results.filter((r) => !r.planAsExpected);
  for (const r of unexpected) {
    console.log(`NOTE: ${r.queryName} with ${r.indexes}: the planner did not always use ${r.expected}.`);
  }
  console.log(
    restored
      ? 'Schema check: indexes and constraints after the run are identical to the migrated schema.'
      : 'SCHEMA CHECK FAILED: indexes or constraints differ from the migrated schema after the run.',
  );
  console.log(`Total ${elapsedS.toFixed(1)} s (start-up, load and measurement).`);

  const written = await writeJsonReport({
    benchmark: 'indexes',
    startedAt: startedAt.toISOString(),
    postgres: { version, kind: database.kind, settings: Object.fromEntries(settings.map((s) => [s.name, s.setting])) },
    method: {
      measure: 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "Execution Time", ms',
      runs: RUNS,
      warmups: WARMUPS,
      withoutIndex: 'DROP INDEX / ALTER TABLE DROP CONSTRAINT inside a transaction, then ROLLBACK',
      schemaRestored: restored,
    },
    volumes: {
      seatLookups: { ...seatVolumes, seatsPerConcert: SEATS_PER_CONCERT, statusMix },
      dateLookup: { concerts: dateVolumes.concerts, distinctDates: dateVolumes.dates, firstDate: FIRST_DATE },
    },
    queries: Object.fromEntries([...SEAT_QUERIES, DATE_QUERY].map((spec) => [spec.key, spec.sql.replace(/\s+/g, ' ')])),
    comparisons,
    variants: results,
    elapsedSeconds: elapsedS,
  });
  if (written) log(`wrote ${written}`);
  if (!restored) process.exitCode = 1;
}

try {
  await main();
} catch (error) {
  if (!interrupted) {
    console.error(error);
    process.exitCode = 1;
  }
} finally {
  await cleanup();
}
