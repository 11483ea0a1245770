// The adapters' distance and call counts (scripts/stack/wire.ts), which the benchmarks' --latency and
// calls/op columns rely on: one count and one added latency per round trip, on each of the three
// paths production pays a network hop for (the room's Neon WebSocket, Neon HTTP, Upstash REST).
import { Pool, neon, neonConfig } from '@neondatabase/serverless';
import { Redis } from '@upstash/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack } from '../../scripts/stack/index.ts';
import type { Stack } from '../../scripts/stack/index.ts';

let stack: Stack;

interface WireState {
  latencyMs: number;
  counts: Record<string, number>;
}

async function wire(url: string, body?: unknown): Promise<WireState> {
  const response = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'x-fault-token': stack.faults.token }, body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return response.json<WireState>();
}

async function trace(url: string): Promise<[string, number, number][]> {
  const response = await fetch(`${url}/trace`, { method: 'POST', headers: { 'x-fault-token': stack.faults.token } });
  return (await response.json<{ calls: [string, number, number][] }>()).calls;
}

/** Counts of `kind` gained while `run` ran. */
async function counted(url: string, kinds: string[], run: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = (await wire(url)).counts;
  await run();
  const after = (await wire(url)).counts;
  return Object.fromEntries(kinds.map((kind) => [kind, (after[kind] ?? 0) - (before[kind] ?? 0)]));
}

const LATENCY_MS = 40;

beforeAll(async () => {
  stack = await startStack();
  neonConfig.wsProxy = () => stack.neonWsProxy;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
  neonConfig.fetchEndpoint = `http://${stack.neonWsProxy.split('/')[0]}/sql`;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('adapter distance and call counts', () => {
  it('counts each Postgres round trip on a Neon WebSocket and delays each by the latency', async () => {
    const pool = new Pool({ connectionString: stack.databaseUrl, max: 1 });
    pool.on('error', () => {}); // the socket closing under pool.end() is reported as an idle client's error
    try {
      const client = await pool.connect();
      try {
        await client.query('SELECT 1'); // connected and warm before counting
        await wire(stack.wire.neon, { latencyMs: LATENCY_MS, trace: true });
        await trace(stack.wire.neon);
        const gained = await counted(stack.wire.neon, ['pgWsRoundTrips', 'pgWsConnections'], async () => {
          await client.query('BEGIN'); // simple query
          await client.query('SELECT $1::int AS n', [7]); // extended: Parse … Sync, one round trip
          await client.query('COMMIT');
        });
        expect(gained).toEqual({ pgWsRoundTrips: 3, pgWsConnections: 0 });
        const calls = (await trace(stack.wire.neon)).filter(([kind]) => kind === 'pgWsRoundTrips');
        expect(calls).toHaveLength(3);
        // Lower bounds only: the latency is added once to each round trip, not to each message.
        for (const [, start, end] of calls) expect(end - start).toBeGreaterThanOrEqual(LATENCY_MS - 1);
        // One after another, never overlapping: each waited for the one before.
        for (let i = 1; i < calls.length; i++) expect(calls[i]![1]).toBeGreaterThanOrEqual(calls[i - 1]![2]);
      } finally {
        client.release();
      }
    } finally {
      await wire(stack.wire.neon, { latencyMs: 0, trace: false });
      await pool.end();
    }
  });

  it('counts Neon HTTP queries once per request, a transaction batch included', async () => {
    const sql = neon(stack.databaseUrl);
    await wire(stack.wire.neon, { latencyMs: LATENCY_MS });
    try {
      const t0 = performance.now();
      const gained = await counted(stack.wire.neon, ['pgHttpRequests', 'pgHttpStatements', 'pgWsRoundTrips'], async () => {
        await sql`SELECT 1`;
        await sql.transaction([sql`SELECT 1`, sql`SELECT 2`]);
      });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(2 * LATENCY_MS - 1);
      expect(gained).toEqual({ pgHttpRequests: 2, pgHttpStatements: 3, pgWsRoundTrips: 0 });
    } finally {
      await wire(stack.wire.neon, { latencyMs: 0 });
    }
  });

  it('counts Upstash REST requests (a pipeline is one) and delays each by the latency', async () => {
    const redis = new Redis({ url: stack.upstashUrl, token: stack.upstashToken, enableTelemetry: false, enableAutoPipelining: false });
    await redis.incr('wire-test:warm');
    await wire(stack.wire.upstash, { latencyMs: LATENCY_MS });
    try {
      const t0 = performance.now();
      const gained = await counted(stack.wire.upstash, ['redisRequests', 'redisCommands'], async () => {
        await redis.incr('wire-test:a');
        const pipeline = redis.pipeline();
        pipeline.incr('wire-test:a');
        pipeline.get('wire-test:a');
        pipeline.del('wire-test:a');
        await pipeline.exec();
      });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(2 * LATENCY_MS - 1);
      expect(gained).toEqual({ redisRequests: 2, redisCommands: 4 });
    } finally {
      await wire(stack.wire.upstash, { latencyMs: 0 });
    }
  });

  it('refuses changes without the fault token', async () => {
    const response = await fetch(stack.wire.upstash, { method: 'POST', body: JSON.stringify({ latencyMs: 5 }) });
    expect(response.status).toBe(403);
    expect((await wire(stack.wire.upstash)).latencyMs).toBe(0);
  });
});
