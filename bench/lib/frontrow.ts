/**
 * Frontrow-specific pieces of the HTTP benchmarks: the throwaway stack with migrations, the bindings
 * the Worker gets, user tokens, and the few admin/API calls a benchmark makes to set itself up.
 */
import type { ConcertStats } from '../../src/routes/admin.ts';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { migrate as migrateHere } from '../../scripts/migrate.ts';
import { stopProcessGroup, trackChild, waitForExit } from '../../scripts/stack/processes.ts';
import type { Stack } from '../../scripts/stack/index.ts';
import { signUserToken } from '../../src/lib/auth.ts';
import { onCleanup } from './cleanup.ts';
import { workerRootFlag } from './worker.ts';
import { groupCpuMs, groupCpuMsByCommand } from './cpu.ts';
import type { LoadResponse } from './load.ts';

/** The stack's URLs (what `npm run stack` prints). */
export type StackInfo = Omit<Stack, 'stop'>;

/** The local stack, migrated, plus the bindings a Worker under test needs to use it. */
export interface BenchStack {
  stack: StackInfo;
  /** Every binding the Worker gets (secrets included): pass to `startWorker({ vars })`. */
  vars: Record<string, string>;
  authSecret: string;
  adminToken: string;
  /** CPU ms used so far by the stack's process group: PostgreSQL, redis-server and both adapters. */
  cpuMs(): number;
  /** The same by command: `postgres`, `redis-server`, `node` (scripts/stack-cli.ts with both adapters). */
  cpuMsByCommand(): Map<string, number>;
  /** Names and non-secret values, for the report. */
  describe(): Record<string, string>;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

function withoutKeys(env: NodeJS.ProcessEnv, keys: readonly string[]): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const key of keys) delete copy[key];
  return copy;
}

/**
 * Starts a throwaway PostgreSQL + redis-server with the Neon WebSocket and Upstash REST adapters
 * (never the machine's own servers on 5432/6379) by running `scripts/stack-cli.ts` (`npm run stack`)
 * as a child process group, applies the migrations, and makes fresh secrets. The adapters thus run
 * outside the benchmark's process: they do not take the load generator's CPU, and the stack's CPU can
 * be measured on its own. Stopped by {@link onCleanup}.
 */
export async function startBenchStack(log: (message: string) => void): Promise<BenchStack> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/stack-cli.ts')], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Without these, startStack() would use the servers they name instead of throwaway ones.
    env: withoutKeys(process.env, ['DATABASE_URL', 'UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN']),
  });
  // If this process dies without cleaning up, the whole group gets SIGTERM: stack-cli stops the
  // servers itself, and the reapers (its own and ours) SIGKILL whatever is left after a grace period.
  trackChild(child, 'SIGTERM', { group: true });
  onCleanup('stack', async () => {
    try {
      process.kill(child.pid!, 'SIGTERM'); // stack-cli stops postgres and redis-server in order
    } catch {
      // already gone
    }
    await waitForExit(child, 15_000);
    await stopProcessGroup(child, 5_000); // anything it left behind
  });
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr.push(chunk);
    for (const line of chunk.split('\n')) if (line.trim() && /error|fail/i.test(line)) log(line.trim());
  });
  const stack = await new Promise<StackInfo>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      try {
        resolve(JSON.parse(out) as StackInfo);
      } catch {
        // not all of it yet
      }
    });
    child.once('exit', (code) => reject(new Error(`the stack exited during start-up (${code}):\n${stderr.join('')}`)));
  });
  log(`stack up: postgres ${stack.postgresKind} ${stack.databaseUrl}, redis via ${stack.upstashUrl}`);
  // The Worker under test may be built from another checkout (--worker-root): its schema, then.
  const workerRoot = workerRootFlag();
  const migrate = workerRoot
    ? ((await import(pathToFileURL(path.join(workerRoot, 'scripts/migrate.ts')).href)) as { migrate: typeof migrateHere }).migrate
    : migrateHere;
  const applied = await migrate(stack.databaseUrl);
  log(`migrations${workerRoot ? ` of ${workerRoot}` : ''}: ${applied.length} applied`);
  const secret = (): string => randomBytes(32).toString('base64url');
  const authSecret = secret();
  const adminToken = secret();
  const vars = {
    DATABASE_URL: stack.databaseUrl,
    NEON_WS_PROXY: stack.neonWsProxy,
    UPSTASH_REDIS_REST_URL: stack.upstashUrl,
    UPSTASH_REDIS_REST_TOKEN: stack.upstashToken,
    DEV_AUTH: 'true',
    ADMIN_TOKEN: adminToken,
    AUTH_SECRET: authSecret,
    QUEUE_TOKEN_SECRET: secret(),
    ENTRY_POW_SECRET: secret(),
  };
  return {
    stack,
    vars,
    authSecret,
    adminToken,
    cpuMs: () => groupCpuMs(child.pid!),
    cpuMsByCommand: () => groupCpuMsByCommand(child.pid!),
    describe: () => ({
      process: 'node scripts/stack-cli.ts (npm run stack) in a process group of its own; DATABASE_URL / UPSTASH_* from the environment ignored',
      postgres: `${stack.postgresKind} ${stack.databaseUrl}, reached by the Worker through the Neon WS adapter ${stack.neonWsProxy || '(none)'}`,
      redis: `redis-server behind the Upstash REST adapter ${stack.upstashUrl}`,
      secrets: 'AUTH_SECRET, QUEUE_TOKEN_SECRET, ENTRY_POW_SECRET, ADMIN_TOKEN: fresh random 32 bytes each; DEV_AUTH=true',
    }),
  };
}

/** A user token for `userId`, signed exactly as the app's own `POST /auth/dev-token` does. */
export async function userToken(authSecret: string, userId: string): Promise<string> {
  return (await signUserToken(authSecret, userId)).token;
}

/** JSON request to the Worker that must answer `expectStatus`; returns the parsed body. */
export async function callJson<T>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; headers?: Record<string, string>; body?: unknown; expectStatus: number },
): Promise<T> {
  const response = await fetch(new URL(path, baseUrl), {
    method,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...opts.headers,
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (response.status !== opts.expectStatus) {
    throw new Error(`${method} ${path}: expected ${opts.expectStatus}, got ${response.status}: ${text.slice(0, 500)}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Queue settings an admin may set on a concert (DESIGN.md §3). */
export interface QueueSettings {
  admitPerWindow?: number;
  windowSeconds?: number;
  maxActive?: number | null;
  sessionSeconds?: number;
  holdSeconds?: number;
  paused?: boolean;
  openingOrder?: 'shuffle' | 'fifo';
  /** Issue 20: a proof of work asked on joining. */
  entry?: { proofOfWork: { cost: number; surgeJoinsPerSecond?: number } | null };
}

/** `GET /concerts/:id/opening`: the pre-queue draw's commitment, and its seed once sales have opened. */
export interface OpeningDraw {
  order: 'shuffle' | 'fifo';
  commitment: string;
  seed: string | null;
  prequeueSize: number | null;
}

export function openingDraw(baseUrl: string, concertId: string): Promise<OpeningDraw> {
  return callJson<OpeningDraw>(baseUrl, 'GET', `/concerts/${concertId}/opening`, { expectStatus: 200 });
}

/**
 * Creates a concert through `POST /admin/concerts` and returns its id. It starts at `startsAt`
 * (its date is that day, UTC) or, by default, 30 days after sales open.
 */
export async function createConcert(
  baseUrl: string,
  adminToken: string,
  opts: { title: string; seats: number; price: number; salesOpenAt: Date; queue?: QueueSettings; startsAt?: Date },
): Promise<string> {
  const startsAt = opts.startsAt ?? new Date(Math.max(opts.salesOpenAt.getTime(), Date.now()) + 30 * 24 * 3600 * 1000);
  const concert = await callJson<{ id: string }>(baseUrl, 'POST', '/admin/concerts', {
    token: adminToken,
    expectStatus: 201,
    body: {
      title: opts.title,
      venue: 'Bench Hall',
      date: startsAt.toISOString().slice(0, 10),
      startsAt: startsAt.toISOString(),
      salesOpenAt: opts.salesOpenAt.toISOString(),
      seats: { count: opts.seats, price: opts.price },
      ...(opts.queue ? { queue: opts.queue } : {}),
    },
  });
  return concert.id;
}

export type { ConcertStats };

export function concertStats(baseUrl: string, adminToken: string, concertId: string): Promise<ConcertStats> {
  return callJson<ConcertStats>(baseUrl, 'GET', `/admin/concerts/${concertId}/stats`, { token: adminToken, expectStatus: 200 });
}

/** "201", "409 SEAT_TAKEN": the status, and on a refusal the problem's `code` when it has one. */
export function labelWithCode(response: LoadResponse): string {
  if (response.status < 300) return String(response.status);
  const code = response.json<{ code?: string }>()?.code;
  return code ? `${response.status} ${code}` : String(response.status);
}

/** The body of `POST /queue/token` (201). */
export interface JoinAnswer {
  token: string;
  position: number;
  status: string;
  estimatedWaitSeconds: number;
}

/** The trivial request every figure is compared with; see {@link TRIVIAL_DESCRIPTION}. */
export const TRIVIAL_PATH = '/__bench/no-such-route';

export const TRIVIAL_DESCRIPTION =
  `GET ${TRIVIAL_PATH} → the app's 404 ROUTE_NOT_FOUND problem: the full middleware chain (request id, ` +
  'secure headers, JSON request log, lazy db, body limit) and no I/O. Cheaper than GET /openapi.json, which ' +
  'builds the whole OpenAPI document from the zod schemas on every request.';
