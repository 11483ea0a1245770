/**
 * Stands in for Neon's proxy, both of its faces, on one port:
 *
 * - WebSocket on /v1: each WebSocket becomes one TCP connection to the local Postgres, bytes passed
 *   through unchanged in binary frames (the ConcertRoom's long-lived Pool). @neondatabase/serverless
 *   reaches it with neonConfig.wsProxy = "127.0.0.1:PORT/v1", useSecureWebSocket = false,
 *   pipelineConnect = false.
 * - HTTP POST /sql: Neon's HTTP query endpoint over persistent connections (the Worker's `neon()`
 *   queries; neonConfig.fetchEndpoint = "http://127.0.0.1:PORT/sql"). See neon-http-sql.ts.
 *
 * The driver appends `?address=HOST:PORT` (the host from DATABASE_URL) to the WebSocket URL and sends
 * the whole connection string to /sql; we ignore the host and always dial our configured target, so a
 * stray URL can never make the adapter an open relay to other hosts.
 *
 * One fault switch (faults.ts) governs both paths, and one distance (wire.ts, GET|POST /__wire): its
 * latency is added to each Postgres round trip on a WebSocket (on the way in, so the statement runs
 * that much later and its answer comes straight back) and to each POST /sql, which it also counts.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import { FAULT_PATH, FaultSwitch, SERVER_PATH, losesReplies, type ServerControl } from './faults.ts';
import { listenOnFreePort } from './free-port.ts';
import { SQL_PATH, createSqlEndpoint } from './neon-http-sql.ts';
import { PgRoundTrips, WIRE_PATH, Wire } from './wire.ts';

/** A running Neon WebSocket adapter. */
export interface NeonWsAdapter {
  /** Value for neonConfig.wsProxy / NEON_WS_PROXY, e.g. "127.0.0.1:PORT/v1". */
  wsProxy: string;
  /** Neon's HTTP query endpoint on the same port, e.g. "http://127.0.0.1:PORT/sql" (neonConfig.fetchEndpoint). */
  sqlUrl: string;
  /** Full URL of the fault control endpoint. */
  faultUrl: string;
  faults: FaultSwitch;
  /** Distance and call counts of both paths (wire.ts). */
  wire: Wire;
  /** Full URL of the distance and counters endpoint. */
  wireUrl: string;
  stop(): Promise<void>;
}

type Item = Buffer | 'close';

/** Start of Postgres's ReadyForQuery message: type 'Z', length 5 (then one status byte). */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);

/**
 * Delivers items in arrival order, each no earlier than its own arrival + delay. Items that arrive
 * while earlier ones are still waiting queue behind them, so the byte stream is never reordered even
 * when the delay changes mid-stream.
 */
class DelayLine {
  private readonly deliver: (item: Item) => void;
  private queue: { due: number; item: Item }[] = [];
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(deliver: (item: Item) => void) {
    this.deliver = deliver;
  }

  push(item: Item, delayMs: number): void {
    if (delayMs <= 0 && this.queue.length === 0) {
      this.deliver(item);
      return;
    }
    const due = Math.max(Date.now() + delayMs, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, item });
    this.schedule();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }

  private schedule(): void {
    const head = this.queue[0];
    if (this.timer || !head) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      while (this.queue[0] && this.queue[0].due <= now) {
        const next = this.queue.shift();
        if (next) this.deliver(next.item);
      }
      this.schedule();
    }, Math.max(0, head.due - Date.now()));
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Hard reset (RST) when possible: what a refused/cut connection looks like to the client. */
function reset(socket: Duplex | net.Socket): void {
  if (socket instanceof net.Socket && !socket.destroyed) socket.resetAndDestroy();
  else socket.destroy();
}

/**
 * Starts the adapter on 127.0.0.1:<free port>, forwarding to Postgres at `target`.
 * `faultToken` authorizes POST /__fault and /__server (empty string = neither can be used over HTTP);
 * `server` is what /__server may do to Postgres (stop and start it, when the stack started it).
 */
export async function startNeonWsAdapter(
  target: { host: string; port: number },
  faultToken: string,
  log: (msg: string) => void,
  server: ServerControl = {},
): Promise<NeonWsAdapter> {
  const faults = new FaultSwitch(faultToken, server);
  const wire = new Wire(faultToken);
  /** Live bridges, so `refuse` and stop() can cut them. */
  const bridges = new Set<() => void>();
  /** Upgrade requests swallowed in `drop` mode: never answered, destroyed on stop. */
  const hanging = new Set<Duplex>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sql = createSqlEndpoint(target, faults, log, wire);

  const httpServer = http.createServer((req, res) => {
    if (faults.handle(req, res) || wire.handle(req, res)) return;
    if (new URL(req.url ?? '/', 'http://localhost').pathname === SQL_PATH) {
      sql.handle(req, res);
      return;
    }
    res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
  });
  httpServer.keepAliveTimeout = 30_000; // workerd keeps /sql connections alive; do not make it reconnect often

  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname === FAULT_PATH || pathname === SERVER_PATH || pathname.startsWith(WIRE_PATH) || !/^\/v\d+$/.test(pathname)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    const { mode } = faults.state;
    if (mode === 'refuse') {
      reset(socket);
      return;
    }
    if (mode === 'drop') {
      hanging.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => hanging.delete(socket));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => bridge(ws, socket));
  });

  function bridge(ws: WebSocket, rawSocket: Duplex): void {
    const tcp = net.connect(target); // writes before 'connect' are buffered by net.Socket
    tcp.setNoDelay(true);
    let closed = false;
    const toTcp = new DelayLine((item) => (item === 'close' ? teardown() : tcp.write(item)));
    const toWs = new DelayLine((item) => (item === 'close' ? teardown() : ws.send(item, { binary: true })));
    /** Close both sides together; `hard` = RST the client (refuse), else a normal close. */
    function teardown(hard = false): void {
      if (closed) return;
      closed = true;
      bridges.delete(cut);
      toTcp.clear();
      toWs.clear();
      tcp.destroy();
      if (hard) reset(rawSocket);
      else ws.terminate();
    }
    const cut = (): void => teardown(true);
    bridges.add(cut);
    const roundTrips = new PgRoundTrips(wire);

    /** Passes one item through the fault switch in the given direction, `extraMs` later (the distance). */
    const forward = (line: DelayLine, item: Item, extraMs = 0): void => {
      const { mode, delayMs } = faults.state;
      if (mode === 'drop') return; // swallowed; the peer is left waiting
      line.push(item, (mode === 'delay' ? delayMs : 0) + extraMs);
    };

    // cut-replies: once the client has sent the `match` text (or at once without one), the next reply
    // from Postgres is swallowed and the connection cut. The request itself went through: a COMMIT
    // commits, and only its answer is lost. swallow-replies: the same, but the connection stays open
    // and every later reply is swallowed too, so the client waits for an answer that never comes.
    let armed = false;
    let tail = Buffer.alloc(0);
    let replyTail = Buffer.alloc(0);
    ws.on('message', (data) => {
      const bytes = toBuffer(data);
      const { mode, match } = faults.state;
      if (losesReplies(mode) && match !== '' && !armed) {
        const window = Buffer.concat([tail, bytes]);
        armed = window.includes(match);
        tail = window.subarray(Math.max(0, window.length - match.length + 1));
      }
      roundTrips.fromClient(bytes);
      forward(toTcp, bytes, wire.latencyMs);
    });
    tcp.on('data', (chunk: Buffer) => {
      const { mode, match } = faults.state;
      if (mode === 'swallow-replies' && (match === '' || armed)) return;
      if (mode === 'cut-replies' && (match === '' || armed)) {
        // Swallow the reply until Postgres says it is ready for the next query ('Z', length 5):
        // by then the statement has run to its end (committed), and only then is the line cut.
        // Cutting at the first byte could instead race the statement itself (Postgres may answer
        // ParseComplete before it has read the Execute), which is a different fault.
        const window = Buffer.concat([replyTail, chunk]);
        replyTail = window.subarray(Math.max(0, window.length - READY_FOR_QUERY.length + 1));
        if (window.includes(READY_FOR_QUERY)) cut();
        return;
      }
      roundTrips.fromServer(chunk);
      forward(toWs, chunk);
    });
    // The client hanging up always frees the Postgres backend at once (even in drop mode), otherwise
    // fault tests would leak server connections; the server hanging up travels like data.
    ws.on('close', () => teardown());
    ws.on('error', () => teardown());
    tcp.on('close', () => forward(toWs, 'close'));
    tcp.on('error', () => {}); // 'close' follows
  }

  faults.onChange(({ mode }) => {
    if (mode !== 'refuse') return;
    for (const cut of [...bridges]) cut();
    for (const socket of [...hanging]) reset(socket);
    sql.cutHanging();
  });

  const port = await listenOnFreePort(httpServer);
  log(`neon-ws-adapter: ws://127.0.0.1:${port}/v1 and http://127.0.0.1:${port}${SQL_PATH} -> ${target.host}:${target.port}`);

  let stopping: Promise<void> | undefined;
  return {
    wsProxy: `127.0.0.1:${port}/v1`,
    sqlUrl: `http://127.0.0.1:${port}${SQL_PATH}`,
    faultUrl: `http://127.0.0.1:${port}${FAULT_PATH}`,
    faults,
    wire,
    wireUrl: `http://127.0.0.1:${port}${WIRE_PATH}`,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        for (const cut of [...bridges]) cut();
        for (const socket of [...hanging]) socket.destroy();
        wss.close();
        httpServer.close(() => resolve());
        httpServer.closeAllConnections(); // keep-alive control connections would otherwise delay close()
      }).then(() => sql.stop())),
  };
}
