/**
 * The Worker entry the HTTP benchmarks run (bench/lib/bench-config.ts points a generated wrangler
 * config at it): the app exactly as `src/index.ts` exports it, plus a few `POST /__bench/*` routes
 * that exist only here, for the ceilings every figure is compared with (DESIGN.md §9) and for filling
 * a line fast. Production never serves these: its wrangler.toml points at src/index.ts.
 *
 * - `POST /__bench/do-write`: one RPC to the {@link BenchProbe} Durable Object, which does one SQLite
 *   `INSERT … ON CONFLICT DO UPDATE`: the room's ceiling (a room request is at least this).
 * - `POST /__bench/pg-http`: `SELECT 1` through Neon's HTTP query path (`createSql` from
 *   src/db/http.ts), as Worker routes reach Postgres. 503 with the error when that path fails.
 * - `POST /__bench/pg-tx`: one RPC to {@link BenchProbe}, which runs `BEGIN; SELECT 1; COMMIT` on a
 *   warm pool it keeps (`createPool` + `withTransaction`, as the room does for holds): the floor of a
 *   room RPC that writes to Postgres.
 * - `POST /__bench/redis`: one Upstash `INCR` through the app's shared client (`getRedis`).
 * - `POST /__bench/room-state {concertId}`: the room's seat map (its own `seats()` RPC) plus its seat
 *   links, holds and line straight from its SQLite, through a bench-only subclass of the room
 *   ({@link ConcertRoom} below): what bench:rush holds against Postgres and checks admission order
 *   with, as the tests do with `runInDurableObject` (test/helpers/invariant-rules.ts).
 * - `POST /__bench/request-counts {concertId, lobbyShards}`: the join requests the concert's room and
 *   each of its lobbies have served since they started (their own in-memory counts).
 * - `POST /__bench/fill-line {concertId, prefix, from, count, parallel?}`: `join(prefix + i)` on the
 *   concert's room for i in [from, from + count), `parallel` RPCs in flight (default 16). Answers
 *   `{joined, rejoined, failed, ms}`. Filling a line of 100,000 this way skips HTTP, user tokens and
 *   queue-token signing; each join is still the room's own RPC.
 *
 * Every other request goes to the app unchanged (GET requests without even a URL parse).
 */
import { DurableObject } from 'cloudflare:workers';
import app, { ConcertRoom as AppConcertRoom } from '../../src/index.ts';
import { createPool, type Pool } from '../../src/db/client.ts';
import { createSql } from '../../src/db/http.ts';
import { withTransaction } from '../../src/db/transaction.ts';
import { getRedis } from '../../src/lib/redis.ts';
import { readRoomTables } from '../../test/helpers/invariant-rules.ts';
import type { RoomView } from '../../test/helpers/invariant-rules.ts';

export * from '../../src/index.ts';

/** The app's bindings plus the probe's own Durable Object (bench/lib/bench-config.ts adds it). */
interface ProbeEnv extends Env {
  BENCH_PROBE: DurableObjectNamespace<BenchProbe>;
}

/**
 * The app's room with one read-only RPC more, for the benchmarks' checks. The bench config binds
 * CONCERT_ROOM to this class (the entry's own export wins over the re-exported one of the same
 * name), so every room of a benchmark run is the app's room plus this method; production never has it.
 */
export class ConcertRoom extends AppConcertRoom {
  benchTables(): Omit<RoomView, 'seats'> {
    return readRoomTables(this.ctx.storage.sql);
  }
}

/** The one probe object every ceiling request goes to, as one concert's requests go to one room. */
const PROBE_NAME = 'ceiling';

/** A bench-only Durable Object: SQLite-backed like the room, with nothing else in it. */
export class BenchProbe extends DurableObject<ProbeEnv> {
  private readonly sql: SqlStorage;
  private pool: Pool | undefined;

  constructor(ctx: DurableObjectState, env: ProbeEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`);
  }

  /** One SQLite write: an upsert of one row. Returns the row's new count. */
  write(): number {
    return this.sql
      .exec<{ n: number }>(`INSERT INTO probe (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1 RETURNING n`)
      .one().n;
  }

  /** One Postgres transaction (`BEGIN; SELECT 1; COMMIT`) on a pool kept for the object's lifetime. */
  async pgTransaction(): Promise<number> {
    // As many connections as the room keeps (ROOM_POOL_SIZE, 8 at the time of writing).
    this.pool ??= createPool(this.env, { max: 8 });
    return withTransaction(this.pool, async (client) => {
      const result = await client.query<{ one: number }>('SELECT 1 AS one');
      return Number(result.rows[0]?.one);
    });
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

interface FillRequest {
  concertId: string;
  prefix: string;
  from: number;
  count: number;
  parallel?: number;
}

/** Joins `count` users to one concert's line through the room's `join` RPC, `parallel` at a time. */
async function fillLine(env: ProbeEnv, body: FillRequest): Promise<Response> {
  const t0 = Date.now();
  const room = env.CONCERT_ROOM.getByName(body.concertId);
  const parallel = Math.max(1, Math.min(body.parallel ?? 16, 256));
  let next = body.from;
  const end = body.from + body.count;
  let joined = 0;
  let rejoined = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const i = next++;
      try {
        const result = await room.join(`${body.prefix}${i}`);
        if (!result.ok) {
          failed++;
          firstError ??= result.reason;
        } else if (result.joined) joined++;
        else rejoined++;
      } catch (error) {
        failed++;
        firstError ??= errorText(error);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return json({ joined, rejoined, failed, firstError, ms: Date.now() - t0 });
}

async function probe(path: string, request: Request, env: ProbeEnv): Promise<Response | undefined> {
  switch (path) {
    case '/__bench/do-write':
      return json({ n: await env.BENCH_PROBE.getByName(PROBE_NAME).write() });
    case '/__bench/pg-tx':
      try {
        return json({ one: await env.BENCH_PROBE.getByName(PROBE_NAME).pgTransaction() });
      } catch (error) {
        return json({ error: errorText(error) }, 503);
      }
    case '/__bench/pg-http':
      try {
        const rows = await createSql(env)`SELECT 1 AS one`;
        return json({ one: Number((rows[0] as { one?: unknown } | undefined)?.one) });
      } catch (error) {
        return json({ error: errorText(error) }, 503);
      }
    case '/__bench/redis':
      try {
        return json({ n: await getRedis(env).incr('bench:probe') });
      } catch (error) {
        return json({ error: errorText(error) }, 503);
      }
    case '/__bench/room-state': {
      const { concertId } = await request.json<{ concertId: string }>();
      const room = env.CONCERT_ROOM.getByName(concertId) as unknown as DurableObjectStub<ConcertRoom>;
      const seats = await room.seats();
      if (!Array.isArray(seats)) return json({ error: seats.reason }, 404);
      return json({ seats, ...(await room.benchTables()) } satisfies RoomView);
    }
    case '/__bench/request-counts': {
      const { concertId, lobbyShards } = await request.json<{ concertId: string; lobbyShards: number }>();
      const [room, ...lobbies] = await Promise.all([
        env.CONCERT_ROOM.getByName(concertId).requestCounts(),
        ...Array.from({ length: lobbyShards }, (_, shard) => env.CONCERT_LOBBY.getByName(`${concertId}/${shard}`).requestCounts()),
      ]);
      return json({ room, lobbies });
    }
    case '/__bench/fill-line':
      return fillLine(env, await request.json<FillRequest>());
    default:
      return undefined;
  }
}

export default {
  ...app,
  async fetch(request: Request, env: ProbeEnv, ctx: ExecutionContext): Promise<Response> {
    if (request.method === 'POST') {
      const { pathname } = new URL(request.url);
      if (pathname.startsWith('/__bench/')) {
        const answer = await probe(pathname, request, env);
        if (answer) return answer;
      }
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<ProbeEnv>;
