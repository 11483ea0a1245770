/**
 * The ceilings every HTTP figure stands beside, measured in the same run by the same generator
 * against the same Worker at the same concurrency (DESIGN.md §9), through the bench-only routes of
 * ./probe-entry.ts:
 *
 * - trivial 404: the app's full middleware chain and no I/O;
 * - DO write: one RPC to a bench-only SQLite-backed Durable Object doing one upsert — the room's
 *   ceiling, since every room request is at least a DO RPC and most write;
 * - Postgres over Neon's HTTP path (`SELECT 1` with `createSql`), one Upstash command (`INCR` with
 *   `getRedis`), and one Postgres transaction from a Durable Object's warm pool (bench:locks).
 *
 * A ceiling whose route does not answer 200 when probed once before the run is reported as n/a with
 * the reason (e.g. the Neon adapter's HTTP endpoint missing) instead of failing the benchmark.
 */
import { TRIVIAL_DESCRIPTION, TRIVIAL_PATH } from './frontrow.ts';
import { runLoad } from './load.ts';
import type { LoadResult, LoadStep } from './load.ts';

/** What a ceiling step needs besides its request: the caller's base URL, clients, clock and CPU sources. */
export type CeilingStep = Omit<LoadStep, 'name' | 'next' | 'expect' | 'label' | 'onResponse' | 'onError'>;

export interface CeilingKind {
  /** Shown in tables. */
  name: string;
  method: 'GET' | 'POST';
  path: string;
  expectStatus: number;
  description: string;
}

export const TRIVIAL: CeilingKind = { name: 'trivial 404', method: 'GET', path: TRIVIAL_PATH, expectStatus: 404, description: TRIVIAL_DESCRIPTION };

export const DO_WRITE: CeilingKind = {
  name: 'DO write',
  method: 'POST',
  path: '/__bench/do-write',
  expectStatus: 200,
  description:
    'POST /__bench/do-write (bench-only route, bench/lib/probe-entry.ts) → one RPC to the bench-only BenchProbe Durable Object ' +
    '(SQLite-backed, one object for all requests, like one concert\'s room) → one `INSERT … ON CONFLICT (id) DO UPDATE` on one row: the room\'s ceiling',
};

export const PG_HTTP: CeilingKind = {
  name: 'Postgres HTTP SELECT 1',
  method: 'POST',
  path: '/__bench/pg-http',
  expectStatus: 200,
  description:
    "POST /__bench/pg-http → createSql(env)`SELECT 1` (src/db/http.ts): one statement over Neon's HTTP query path, locally " +
    "the Neon adapter's POST /sql on the NEON_WS_PROXY port",
};

export const UPSTASH: CeilingKind = {
  name: 'Upstash INCR (Worker)',
  method: 'POST',
  path: '/__bench/redis',
  expectStatus: 200,
  description: "POST /__bench/redis → getRedis(env).incr() (src/lib/redis.ts, the app's shared client) → Upstash REST adapter → redis-server",
};

export const PG_TX: CeilingKind = {
  name: 'DO Postgres tx',
  method: 'POST',
  path: '/__bench/pg-tx',
  expectStatus: 200,
  description:
    'POST /__bench/pg-tx → one RPC to BenchProbe → BEGIN; SELECT 1; COMMIT on a pool of 8 the object keeps (createPool + withTransaction, ' +
    "as the room does for holds). Not one of the room's own RPCs: the two that run a Postgres transaction (hold, cancel) need an admitted " +
    'user and a free seat, or a live hold, so they are the figures measured, not a ceiling',
};

/** A load step for `kind`. */
export function ceilingLoad(kind: CeilingKind, step: CeilingStep): LoadStep {
  return {
    ...step,
    name: kind.name,
    next: () => ({ method: kind.method, path: kind.path }),
    expect: (r) => r.status === kind.expectStatus,
  };
}

/** Whether a ceiling's route answers as it should: one request before the run. */
export async function probeCeiling(baseUrl: string, kind: CeilingKind): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const response = await fetch(new URL(kind.path, baseUrl), { method: kind.method, signal: AbortSignal.timeout(15_000) });
    const body = await response.text();
    if (response.status === kind.expectStatus) return { ok: true };
    let reason = body.slice(0, 300);
    try {
      const error = (JSON.parse(body) as { error?: unknown }).error;
      if (typeof error === 'string') reason = error;
    } catch {
      // not JSON: keep the text
    }
    return { ok: false, reason: `${kind.method} ${kind.path} answered ${response.status}: ${reason.trim()}` };
  } catch (error) {
    return { ok: false, reason: `${kind.method} ${kind.path}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** The two ceilings of bench:queue and bench:holds, measured together right before the steps they bound. */
export interface Ceilings {
  trivial: LoadResult;
  doWrite: LoadResult;
}

/**
 * Warms a freshly started Worker up before anything is measured: JIT, connection pools, the probe
 * object's creation. Without it the first ceiling of a run reads up to 3× low. Not reported.
 */
export async function warmUp(step: Omit<CeilingStep, 'durationMs'>, seconds: number, log: (message: string) => void): Promise<void> {
  if (seconds <= 0) return;
  log(`warm-up: trivial 404 and DO write, ${step.concurrency} clients, ${seconds} s each (not reported)`);
  for (const kind of [TRIVIAL, DO_WRITE]) {
    await runLoad(ceilingLoad(kind, { ...step, durationMs: seconds * 1000 }));
  }
}
