/**
 * Stands in for Upstash's REST API in front of a local redis-server, speaking what @upstash/redis
 * sends (checked against its source, v1.39):
 *
 *   POST /            body ["SET","k","v"]                 → {"result": …} | 400 {"error": "…"}
 *   POST /pipeline    body [["SET","k","v"],["GET","k"]]   → [{"result": …} | {"error": "…"}, …]
 *   POST /multi-exec  same body, run inside MULTI/EXEC     → same shape as /pipeline
 *   GET|POST /cmd/arg/…  (REST path style; a POST body becomes the last argument)
 *
 * Fault modes (faults.ts) apply to every command: refuse, drop, delay, cut-replies and swallow-replies
 * (the command runs, its reply is lost). POST /__server can pause and resume redis-server itself.
 *
 * The distance (wire.ts, GET|POST /__wire) adds its latency to each request, a pipeline or
 * multi-exec included (one round trip), and counts requests and commands.
 *
 * `Authorization: Bearer <token>` (or `?_token=`) is required. With `Upstash-Encoding: base64`, which
 * the client sends by default, every string in the result (recursively) is base64 of its raw bytes;
 * integers stay JSON numbers and nil is null. The client base64-decodes every string it gets back
 * except the literal "OK", so strings must never be sent unencoded in that mode.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { FAULT_PATH, FaultSwitch, losesReplies, sleep, type ServerControl } from './faults.ts';
import { listenOnFreePort } from './free-port.ts';
import { RespError, RespPool } from './resp.ts';
import type { RespValue } from './resp.ts';
import { readBodyBytes, sendJson } from './http-json.ts';
import { WIRE_PATH, Wire, wallMs } from './wire.ts';

/** A running Upstash REST adapter. */
export interface UpstashRestAdapter {
  /** Value for UPSTASH_REDIS_REST_URL, e.g. http://127.0.0.1:PORT */
  url: string;
  token: string;
  /** Full URL of the fault control endpoint. */
  faultUrl: string;
  faults: FaultSwitch;
  /** Distance and call counts (wire.ts). */
  wire: Wire;
  /** Full URL of the distance and counters endpoint. */
  wireUrl: string;
  stop(): Promise<void>;
}

/** Commands that block the connection until data arrives; they get a connection of their own. */
const BLOCKING = new Set([
  'BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP', 'WAIT', 'WAITAOF',
]);
/** Commands that would change the state of a shared pooled connection (or make no sense over REST). */
const REFUSED = new Set([
  'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE', 'MONITOR',
  'SELECT', 'QUIT', 'RESET', 'HELLO', 'MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH', 'SYNC', 'PSYNC',
]);

/** Thrown for malformed requests; becomes HTTP 400 {"error"}. */
class BadRequest extends Error {}

type Command = string[];

/** Turns one JSON command into Redis arguments (numbers/booleans as text, like the real service). */
function toCommand(value: unknown): Command {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadRequest('ERR a command must be a non-empty JSON array, e.g. ["GET","key"]');
  }
  const command = value.map((arg: unknown) =>
    typeof arg === 'string' ? arg : typeof arg === 'object' && arg !== null ? JSON.stringify(arg) : String(arg),
  );
  const name = (command[0] ?? '').toUpperCase();
  if (REFUSED.has(name)) throw new BadRequest(`ERR command is not available over the REST API: ${name}`);
  return command;
}

function toCommands(value: unknown): Command[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadRequest('ERR body must be a non-empty JSON array of commands');
  }
  return value.map(toCommand);
}

function isBlocking(command: Command): boolean {
  const name = (command[0] ?? '').toUpperCase();
  if (BLOCKING.has(name)) return true;
  // XREAD / XREADGROUP only block with a BLOCK option.
  return (name === 'XREAD' || name === 'XREADGROUP') && command.some((arg) => arg.toUpperCase() === 'BLOCK');
}

/** Converts a reply to JSON, base64-encoding strings when asked. Nested errors become their message. */
function toJson(value: RespValue, base64: boolean): unknown {
  if (value === null || typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((item) => toJson(item, base64));
  const text = value instanceof RespError ? value.message : value;
  if (base64) return Buffer.from(text).toString('base64');
  return typeof text === 'string' ? text : text.toString('utf8');
}

/** One pipeline/multi-exec entry. */
function toEntry(value: RespValue, base64: boolean): { result: unknown } | { error: string } {
  return value instanceof RespError ? { error: value.message } : { result: toJson(value, base64) };
}



function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequest('ERR request body is not valid JSON');
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Starts the adapter on 127.0.0.1:<free port> in front of redis-server at `target`.
 * `token` is the bearer token clients must send; `faultToken` authorizes POST /__fault and
 * /__server; `serverControl` is what /__server may do to redis-server (pause and resume it).
 */
export async function startUpstashRestAdapter(
  target: { host: string; port: number },
  token: string,
  faultToken: string,
  log: (msg: string) => void,
  serverControl: ServerControl = {},
): Promise<UpstashRestAdapter> {
  const faults = new FaultSwitch(faultToken, serverControl);
  const wire = new Wire(faultToken);
  const pool = new RespPool(target.host, target.port, 4);
  /** Requests swallowed in `drop` (or `swallow-replies`) mode: never answered, cut on `refuse` and on stop. */
  const hanging = new Set<ServerResponse>();

  async function execute(req: IncomingMessage, url: URL): Promise<{ status: number; body: unknown; cutReply: boolean | 'swallow' }> {
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    const body = await readBodyBytes(req);
    const { mode, delayMs, match } = faults.state; // sampled on arrival
    if (mode === 'delay') await sleep(delayMs);
    if (wire.latencyMs > 0) await sleep(wire.latencyMs);
    // cut-replies: the command runs, its reply is lost (the connection is reset instead);
    // swallow-replies: the command runs and no reply ever comes.
    const lost = losesReplies(mode) && (match === '' || body.includes(match));
    const cutReply: boolean | 'swallow' = !lost ? false : mode === 'cut-replies' ? true : 'swallow';

    if (url.pathname === '/pipeline' || url.pathname === '/multi-exec') {
      if (req.method !== 'POST') throw new BadRequest(`ERR use POST for ${url.pathname}`);
      const commands = toCommands(parseJson(body));
      wire.count('redisRequests');
      wire.count('redisCommands', commands.length);
      if (url.pathname === '/pipeline') {
        // Not atomic (like Upstash): sent back to back in one write on one connection.
        const replies = commands.some(isBlocking) ? await pool.isolated(commands) : await pool.batch(commands);
        return { status: 200, body: replies.map((reply) => toEntry(reply, base64)), cutReply };
      }
      // One write holding MULTI … EXEC: no other request's command can land in between on this connection.
      const replies = await pool.batch([['MULTI'], ...commands, ['EXEC']]);
      const exec = replies[replies.length - 1] ?? null;
      if (Array.isArray(exec)) return { status: 200, body: exec.map((reply) => toEntry(reply, base64)), cutReply };
      // A command was rejected while queueing (wrong arity, unknown command): Redis discards the lot.
      const queueError = replies.slice(1, -1).find((reply) => reply instanceof RespError);
      const execMessage = exec instanceof RespError ? exec.message : 'EXECABORT Transaction discarded';
      const error = queueError ? `${execMessage} (${queueError.message.trim()})` : execMessage;
      return { status: 400, body: { error }, cutReply };
    }

    let command: Command;
    if (url.pathname === '/' || url.pathname === '') {
      if (req.method !== 'POST') throw new BadRequest('ERR use POST with a JSON array body');
      command = toCommand(parseJson(body));
    } else {
      // REST path style: /set/key/value, with a POST body as the last argument.
      const parts = url.pathname.split('/').filter((part) => part !== '').map(decodeURIComponent);
      if (req.method === 'POST' && body.length > 0) parts.push(body.toString('utf8'));
      command = toCommand(parts);
    }
    wire.count('redisRequests');
    wire.count('redisCommands');
    const reply = isBlocking(command) ? ((await pool.isolated([command]))[0] ?? null) : await pool.command(command);
    if (reply instanceof RespError) return { status: 400, body: { error: reply.message }, cutReply };
    return { status: 200, body: { result: toJson(reply, base64) }, cutReply };
  }

  const server = http.createServer((req, res) => {
    if (faults.handle(req, res) || wire.handle(req, res)) return;
    const { mode } = faults.state;
    if (mode === 'refuse') {
      req.socket.resetAndDestroy();
      return;
    }
    if (mode === 'drop') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const auth = req.headers.authorization ?? '';
    const given = auth.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : (url.searchParams.get('_token') ?? '');
    if (!sameSecret(given, token)) {
      sendJson(res, 401, { error: 'Unauthorized' });
      return;
    }
    const startMs = wallMs();
    execute(req, url).then(
      ({ status, body, cutReply }) => {
        wire.traced('redisRequests', startMs);
        if (cutReply === 'swallow') {
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
        } else if (cutReply) req.socket.resetAndDestroy();
        else sendJson(res, status, body);
      },
      (error: unknown) => {
        if (res.headersSent || res.destroyed) return;
        const status = error instanceof BadRequest ? 400 : 500;
        sendJson(res, status, { error: (error as Error).message });
      },
    );
  });
  server.keepAliveTimeout = 30_000; // the client keeps connections alive; do not make it reconnect often

  faults.onChange(({ mode }) => {
    if (mode !== 'refuse') return;
    for (const res of [...hanging]) {
      const socket = res.socket;
      if (socket instanceof net.Socket) socket.resetAndDestroy();
      else res.destroy();
    }
  });

  const port = await listenOnFreePort(server);
  log(`upstash-rest-adapter: http://127.0.0.1:${port} -> redis ${target.host}:${target.port}`);

  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    faultUrl: `http://127.0.0.1:${port}${FAULT_PATH}`,
    faults,
    wire,
    wireUrl: `http://127.0.0.1:${port}${WIRE_PATH}`,
    stop: () =>
      (stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections(); // includes dropped requests left hanging
        });
        await pool.close();
      })()),
  };
}
