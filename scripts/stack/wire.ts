/**
 * Distance and call counts for the local adapters: what makes a benchmark on one machine say what a
 * request would cost where Neon and Upstash are a network hop away (issue 19).
 *
 *   GET  /__wire                   → {"latencyMs", "tracing", "counts": {kind: n, …}}
 *   POST /__wire  X-Fault-Token    {"latencyMs"?: number, "trace"?: boolean} → the same
 *   POST /__wire/trace  X-Fault-Token   → {"calls": [[kind, startMs, endMs], …]}  (and forgets them)
 *
 * `latencyMs` is added once per round trip, as production distance would be: each Postgres query on
 * a Neon WebSocket (a simple query, or one extended-protocol exchange ending in Sync), each POST /sql,
 * each Upstash REST request. It is independent of the fault switch (faults.ts), whose `delay` mode
 * keeps its own meaning for the fault tests; both add up when both are on.
 *
 * Counts only grow (a benchmark reads them before and after a step and divides by the operations).
 * While `trace` is on, every call is also logged with its start and end on the wall clock
 * (`performance.timeOrigin + performance.now()`, the same clock in every process of the machine), so
 * a benchmark can tell calls made one after another from calls in flight together.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson } from './http-json.ts';

/** Path of the endpoint on every adapter. */
export const WIRE_PATH = '/__wire';

/** What an adapter counts. Each adapter uses the kinds of its own protocol. */
export type WireKind =
  /** Postgres round trips on the Neon WebSockets: a simple query ('Q') or an extended exchange ending in Sync ('S'). */
  | 'pgWsRoundTrips'
  /** WebSocket connections opened to the Neon adapter (each one a Postgres connection start-up). */
  | 'pgWsConnections'
  /** POST /sql requests (Neon's HTTP path): one round trip each, one statement or a whole batch. */
  | 'pgHttpRequests'
  /** Statements in those requests (a `sql.transaction([...])` batch counts each of its statements). */
  | 'pgHttpStatements'
  /** Upstash REST requests: one round trip each (a pipeline or multi-exec is one). */
  | 'redisRequests'
  /** Redis commands in those requests. */
  | 'redisCommands';

export const WIRE_KINDS: readonly WireKind[] = ['pgWsRoundTrips', 'pgWsConnections', 'pgHttpRequests', 'pgHttpStatements', 'redisRequests', 'redisCommands'];

/** Most calls a trace keeps until it is taken; later ones are dropped (and counted as such). */
const MAX_TRACE = 200_000;

/** Milliseconds on the wall clock, with sub-millisecond precision. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** One adapter's distance and counters, plus the HTTP handler that reads and sets them. */
export class Wire {
  private readonly token: string;
  private latency = 0;
  private tracing = false;
  private readonly counts = new Map<WireKind, number>();
  private trace: [WireKind, number, number][] = [];
  private dropped = 0;

  /** `token` must be sent as X-Fault-Token to change anything; an empty token disables changes. */
  constructor(token: string) {
    this.token = token;
  }

  /** The delay added to each round trip, ms. */
  get latencyMs(): number {
    return this.latency;
  }

  /** Sets the delay directly (for Node-side callers that hold the adapter). */
  setLatency(ms: number): void {
    this.latency = ms;
  }

  count(kind: WireKind, n = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }

  /** Logs one call (when tracing) that started at `startMs` and ends now. */
  traced(kind: WireKind, startMs: number): void {
    if (!this.tracing) return;
    if (this.trace.length >= MAX_TRACE) this.dropped++;
    else this.trace.push([kind, startMs, wallMs()]);
  }

  private state(): Record<string, unknown> {
    return { latencyMs: this.latency, tracing: this.tracing, counts: Object.fromEntries(this.counts), droppedFromTrace: this.dropped };
  }

  /** Serves the endpoint; false when the request is not for it. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== WIRE_PATH && pathname !== `${WIRE_PATH}/trace`) return false;
    if (req.method === 'GET' && pathname === WIRE_PATH) {
      sendJson(res, 200, this.state());
      return true;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'use GET or POST' });
      return true;
    }
    if (this.token === '' || req.headers['x-fault-token'] !== this.token) {
      sendJson(res, 403, { error: 'bad or missing X-Fault-Token' });
      return true;
    }
    if (pathname !== WIRE_PATH) {
      const calls = this.trace;
      this.trace = [];
      sendJson(res, 200, { calls, dropped: this.dropped });
      this.dropped = 0;
      return true;
    }
    readBody(req)
      .then((text) => {
        const body = JSON.parse(text || '{}') as { latencyMs?: unknown; trace?: unknown };
        if (body.latencyMs !== undefined) {
          if (typeof body.latencyMs !== 'number' || !(body.latencyMs >= 0)) throw new Error('latencyMs must be a number ≥ 0');
          this.latency = body.latencyMs;
        }
        if (body.trace !== undefined) {
          if (typeof body.trace !== 'boolean') throw new Error('trace must be true or false');
          this.tracing = body.trace;
          if (!body.trace) this.trace = [];
        }
        sendJson(res, 200, this.state());
      })
      .catch((error: unknown) => sendJson(res, 400, { error: (error as Error).message }));
    return true;
  }
}

/**
 * Follows the Postgres wire protocol on one Neon WebSocket to count round trips: the client's
 * simple queries ('Q') and Syncs ('S') each await one ReadyForQuery ('Z') from the server. Only the
 * framing is read (type byte, int32 length), never the contents. The connection's first client
 * message is the untyped start-up packet; an SSLRequest (answered by one unframed byte) or anything
 * else unexpected stops the counting on that connection rather than miscount.
 */
export class PgRoundTrips {
  private readonly wire: Wire;
  private clientBuf: Buffer = Buffer.alloc(0);
  private serverBuf: Buffer = Buffer.alloc(0);
  private startedUp = false;
  private lost = false;
  /** Start times of the round trips sent and not yet answered, oldest first. */
  private readonly pending: number[] = [];

  constructor(wire: Wire) {
    this.wire = wire;
    wire.count('pgWsConnections');
  }

  /** Bytes from the client, as they arrive (before any delay). */
  fromClient(bytes: Buffer): void {
    if (this.lost) return;
    this.clientBuf = this.clientBuf.length === 0 ? bytes : Buffer.concat([this.clientBuf, bytes]);
    for (;;) {
      if (!this.startedUp) {
        if (this.clientBuf.length < 8) return;
        const length = this.clientBuf.readInt32BE(0);
        const code = this.clientBuf.readInt32BE(4);
        if (code !== 196608 || length < 8) {
          // Not a protocol-3.0 start-up (an SSLRequest, a cancel): do not guess.
          this.lost = true;
          return;
        }
        if (this.clientBuf.length < length) return;
        this.clientBuf = this.clientBuf.subarray(length);
        this.startedUp = true;
        continue;
      }
      if (this.clientBuf.length < 5) return;
      const length = this.clientBuf.readInt32BE(1);
      if (this.clientBuf.length < 1 + length) return;
      const type = this.clientBuf[0];
      if (type === 0x51 /* Q */ || type === 0x53 /* S */) {
        this.wire.count('pgWsRoundTrips');
        this.pending.push(wallMs());
      }
      this.clientBuf = this.clientBuf.subarray(1 + length);
    }
  }

  /** Bytes from Postgres, as they arrive. */
  fromServer(bytes: Buffer): void {
    if (this.lost) return;
    this.serverBuf = this.serverBuf.length === 0 ? bytes : Buffer.concat([this.serverBuf, bytes]);
    for (;;) {
      if (this.serverBuf.length < 5) return;
      const length = this.serverBuf.readInt32BE(1);
      if (this.serverBuf.length < 1 + length) return;
      // The first ReadyForQuery ends the start-up, when nothing is pending.
      if (this.serverBuf[0] === 0x5a /* Z */) {
        const start = this.pending.shift();
        if (start !== undefined) this.wire.traced('pgWsRoundTrips', start);
      }
      this.serverBuf = this.serverBuf.subarray(1 + length);
    }
  }
}
