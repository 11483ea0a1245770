/**
 * `npm run bench:offers` (issue 18 item 9): what deciding waitlist offers costs in the transaction
 * that frees the seats, before and after seat_runs, in the same run on the same states.
 *
 * A sold-out room (every seat sold) with a waitlist of entries wanting 1–4 seats, half of them
 * together, frees seats at once in clumps of 1–4 adjacent ones (a wave of expiries or refunds); in
 * the same transaction `decideOffers` offers them. Scenarios (`--scenarios seats:entries:freed,…`,
 * default 1000:100:160,50000:5000:8000, the second the figure, the first the same shape at
 * the 1,000 seats of bench:holds and bench:rush) each run twice on identical states:
 *
 * - before: the room schema without the seat_runs table and triggers, and the search that read the
 *   whole free map for every together offer (`adjacentSeatsByScan`, kept for this and the tests);
 * - after: the current schema and search.
 *
 * Both must decide the very same offers; the script checks that and exits 1 otherwise. It runs the
 * room's own functions (src/durable-objects/concert-room) in Node over `node:sqlite` in memory,
 * through a thin SqlStorage adapter: the SQL and the algorithm are the room's, the SQLite build and
 * the storage layer are Node's (workerd adds a disk write per commit, the same for both). Times are
 * wall-clock per call, after one untimed pass of each variant; `--runs N` (default 3) states per
 * scenario and variant, the median reported.
 * `--json <file>` writes the figures.
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { ROOM_MIGRATIONS } from '../src/durable-objects/concert-room/schema.ts';
import { adjacentSeatsByScan, decideOffers, type WaitlistOffer } from '../src/durable-objects/concert-room/waitlist.ts';
import { flagValue, intFlag, writeJsonReport } from './lib/cli.ts';
import { formatCount, formatMs, formatRatio, printTable } from './lib/table.ts';
import { seededRandom } from '../test/helpers/seeded-random.ts';

type Variant = 'before' | 'after';

interface Scenario {
  seats: number;
  entries: number;
  freed: number;
}

interface Measured {
  variant: Variant;
  offers: number;
  /** ms to free the seats (the UPDATEs, with whatever triggers the schema has). */
  freeMs: number;
  /** ms of the one decideOffers call. */
  decideMs: number;
}

/** Just enough of SqlStorage for the room's functions: exec with bindings, cursors read whole. */
function sqlStorage(db: DatabaseSync): SqlStorage {
  const statements = new Map<string, StatementSync>();
  const exec = (query: string, ...bindings: unknown[]) => {
    let statement = statements.get(query);
    if (!statement) {
      statement = db.prepare(query);
      statements.set(query, statement);
    }
    const rows = statement.all(...(bindings as SQLInputValue[]));
    return {
      toArray: () => rows,
      one: () => {
        if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}`);
        return rows[0];
      },
      [Symbol.iterator]: () => rows[Symbol.iterator](),
    };
  };
  return { exec } as unknown as SqlStorage;
}


/** The schema as it was before seat_runs: the same steps, without the table and its triggers. */
const BEFORE_SEAT_RUNS = `DROP TRIGGER seat_runs_update; DROP TRIGGER seat_runs_delete; DROP TRIGGER seat_runs_insert; DROP TABLE seat_runs;`;

function measure(scenario: Scenario, variant: Variant, seed: number): { measured: Measured; decided: string[] } {
  const db = new DatabaseSync(':memory:');
  try {
    for (const step of ROOM_MIGRATIONS) db.exec(step);
    if (variant === 'before') db.exec(BEFORE_SEAT_RUNS);
    const next = seededRandom(seed);
    db.exec('BEGIN');
    // Sections of 500 seats, as a venue's blocks; every seat sold: the waitlist is open.
    const insertSeat = db.prepare(`INSERT INTO seats (seat_number, seat_id, section, price, status) VALUES (?, ?, ?, 100, 'sold')`);
    for (let n = 1; n <= scenario.seats; n++) insertSeat.run(n, n, `S${Math.ceil(n / 500)}`);
    const insertEntry = db.prepare(`INSERT INTO waitlist (user_id, seq_order, seats, together, status, created_at) VALUES (?, ?, ?, ?, 'waiting', 0)`);
    for (let i = 1; i <= scenario.entries; i++) insertEntry.run(`fan-${i}`, i, 1 + Math.floor(next() * 4), next() < 0.5 ? 1 : 0);
    db.exec('COMMIT');

    // Clumps of 1–4 adjacent seats, as holds of 1–4 seats end, until `freed` seats are free.
    const free = new Set<number>();
    while (free.size < scenario.freed) {
      const first = 1 + Math.floor(next() * scenario.seats);
      const size = 1 + Math.floor(next() * 4);
      for (let n = first; n < first + size && n <= scenario.seats && free.size < scenario.freed; n++) free.add(n);
    }
    const numbers = [...free];
    const sql = sqlStorage(db);
    db.exec('BEGIN');
    const freeStart = performance.now();
    for (let i = 0; i < numbers.length; i += 500) {
      const chunk = numbers.slice(i, i + 500);
      db.prepare(`UPDATE seats SET status = 'available' WHERE seat_number IN (${chunk.map(() => '?').join(', ')})`).run(...chunk);
    }
    const decideStart = performance.now();
    const offers: WaitlistOffer[] = decideOffers(sql, {
      now: 1,
      offerSeconds: 600,
      ...(variant === 'before' ? { adjacent: adjacentSeatsByScan } : {}),
    });
    const end = performance.now();
    db.exec('COMMIT');
    return {
      measured: { variant, offers: offers.length, freeMs: decideStart - freeStart, decideMs: end - decideStart },
      decided: offers.map((offer) => `${offer.userId}:${offer.seats.map((seat) => seat.seatNumber).join('.')}`),
    };
  } finally {
    db.close();
  }
}

const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
};

function parseScenarios(raw: string): Scenario[] {
  return raw.split(',').map((part) => {
    const [seats, entries, freed] = part.split(':').map((x) => Number(x.replace(/_/g, '')));
    if (![seats, entries, freed].every((x) => Number.isInteger(x) && x! > 0) || freed! > seats!) throw new Error(`bad scenario "${part}" (seats:entries:freed)`);
    return { seats: seats!, entries: entries!, freed: freed! };
  });
}

const scenarios = parseScenarios(flagValue('scenarios') ?? '1000:100:160,50000:5000:8000');
const runs = intFlag('runs', 3);
// One untimed pass of each variant first, so neither pays for the JIT warming up.
measure(scenarios[0]!, 'before', 1);
measure(scenarios[0]!, 'after', 1);
const report: { scenario: Scenario; before: Measured[]; after: Measured[] }[] = [];
let identical = true;
for (const scenario of scenarios) {
  const results: Record<Variant, Measured[]> = { before: [], after: [] };
  for (let run = 0; run < runs; run++) {
    const seed = 18_009 + run;
    const before = measure(scenario, 'before', seed);
    const after = measure(scenario, 'after', seed);
    results.before.push(before.measured);
    results.after.push(after.measured);
    if (before.decided.join() !== after.decided.join()) {
      identical = false;
      console.error(`different offers: ${formatCount(scenario.seats)} seats, run ${run + 1} (${before.decided.length} before, ${after.decided.length} after)`);
    }
  }
  report.push({ scenario, ...results });
}

const rows = report.flatMap(({ scenario, before, after }) => {
  const row = (variant: Variant, measured: Measured[]) => {
    const decide = median(measured.map((m) => m.decideMs));
    const offers = median(measured.map((m) => m.offers));
    return [
      `${formatCount(scenario.seats)} / ${formatCount(scenario.entries)} / ${formatCount(scenario.freed)}`,
      variant,
      formatCount(offers),
      formatMs(median(measured.map((m) => m.freeMs))),
      formatMs(decide),
      formatMs(decide / offers),
    ];
  };
  const speedUp = median(before.map((m) => m.decideMs)) / median(after.map((m) => m.decideMs));
  return [row('before', before), [...row('after', after), formatRatio(speedUp)]];
});
printTable(
  `Waitlist offers decided in the transaction that frees the seats (median of ${runs} states; node:sqlite in memory)`,
  [
    'seats / entries / freed',
    'search',
    { header: 'offers', align: 'right' },
    { header: 'free ms', align: 'right' },
    { header: 'decide ms', align: 'right' },
    { header: 'ms / offer', align: 'right' },
    { header: 'decide, before ÷ after', align: 'right' },
  ],
  rows,
);
console.log(identical ? '\nsame offers before and after in every state' : '\nOFFERS DIFFER (see above)');
await writeJsonReport({ runs, identical, report });
if (!identical) process.exitCode = 1;
