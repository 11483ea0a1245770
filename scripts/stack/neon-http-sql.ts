/**
 * Neon's HTTP SQL endpoint (`POST /sql`), served by the local Neon adapter on the same port as its
 * WebSocket proxy. `neon()` from @neondatabase/serverless posts here when `neonConfig.fetchEndpoint`
 * points at it (src/db/http.ts does so when NEON_WS_PROXY is set). What the driver sends and reads
 * (checked against its 1.2.0 bundle):
 *
 *   headers  Neon-Connection-String: postgresql://user:pass@host/db   (host ignored: we dial our target)
 *            Neon-Raw-Text-Output: true      values as Postgres text, nulls as null (the driver parses)
 *            Neon-Array-Mode: true           rows as arrays in column order
 *            Neon-Batch-Isolation-Level / -Read-Only / -Deferrable   (batches only)
 *   body     {"query": "...", "params": [...]}            one statement, autocommit
 *            {"queries": [{"query", "params"}, ...]}      one transaction (`sql.transaction([...])`)
 *   200      {command, rowCount, rows, fields: [{name, dataTypeID, ...}], rowAsArray}  or {results: [...]}
 *   400      {message, code (SQLSTATE), detail, hint, position, ..., constraint, routine}: the driver
 *            copies these fields onto its NeonDbError, so `error.code` is the SQLSTATE
 *   other    any non-400 status becomes "Server error (HTTP status N): <text>" in the driver; we
 *            answer 503 when Postgres itself cannot be reached
 *
 * Like Neon's proxy, queries run over persistent connections (a `pg` pool per user and database), so
 * a query costs no connection set-up. Every statement uses the extended protocol, hence one statement
 * per query, as on Neon.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import pg from 'pg';
import type { FaultSwitch } from './faults.ts';
import { losesReplies, sleep } from './faults.ts';
import { readBody, sendJson } from './http-json.ts';
import type { Wire } from './wire.ts';
import { wallMs } from './wire.ts';

/** Path of the endpoint on the adapter. */
export const SQL_PATH = '/sql';

/** Connections per pool (one pool per user and database). @default 16 */
const POOL_SIZE = 16;

interface SqlQuery {
  query: string;
  params: unknown[];
}

/** A malformed request: answered 400 with a message, as Neon does. */
class BadRequest extends Error {}

/** Fields of a Postgres error that the driver copies onto its NeonDbError. */
const ERROR_FIELDS = [
  'severity',
  'code',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
] as const;

const ISOLATION_LEVELS: Record<string, string> = {
  ReadUncommitted: 'READ UNCOMMITTED',
  ReadCommitted: 'READ COMMITTED',
  RepeatableRead: 'REPEATABLE READ',
  Serializable: 'SERIALIZABLE',
};

/** Every type's text as is: the driver runs its own type parsers on the values (raw text output). */
const RAW_TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;



function toQuery(value: unknown): SqlQuery {
  if (typeof value !== 'object' || value === null) throw new BadRequest('each query must be an object {query, params}');
  const { query, params } = value as { query?: unknown; params?: unknown };
  if (typeof query !== 'string') throw new BadRequest('"query" must be a string');
  if (params !== undefined && !Array.isArray(params)) throw new BadRequest('"params" must be an array');
  return { query, params: params ?? [] };
}

function parseRequest(text: string): SqlQuery | SqlQuery[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest('request body is not valid JSON');
  }
  if (typeof body === 'object' && body !== null && 'queries' in body) {
    const { queries } = body;
    if (!Array.isArray(queries)) throw new BadRequest('"queries" must be an array');
    return queries.map(toQuery);
  }
  return toQuery(body);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** `BEGIN` with the batch headers' isolation level, read-only and deferrable settings. */
function beginStatement(req: IncomingMessage): string {
  const parts = ['BEGIN'];
  const isolation = header(req, 'Neon-Batch-Isolation-Level');
  if (isolation !== undefined) {
    const level = ISOLATION_LEVELS[isolation];
    if (!level) throw new BadRequest(`unknown Neon-Batch-Isolation-Level: ${isolation}`);
    parts.push(`ISOLATION LEVEL ${level}`);
  }
  const readOnly = header(req, 'Neon-Batch-Read-Only');
  if (readOnly !== undefined) parts.push(readOnly === 'true' ? 'READ ONLY' : 'READ WRITE');
  const deferrable = header(req, 'Neon-Batch-Deferrable');
  if (deferrable !== undefined) parts.push(deferrable === 'true' ? 'DEFERRABLE' : 'NOT DEFERRABLE');
  return parts.join(' ');
}

/** What the driver's processQueryResult reads from one result. */
function toResult(result: pg.QueryResult, arrayMode: boolean) {
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows,
    fields: result.fields.map(({ name, tableID, columnID, dataTypeID, dataTypeSize, dataTypeModifier, format }) => ({
      name,
      tableID,
      columnID,
      dataTypeID,
      dataTypeSize,
      dataTypeModifier,
      format,
    })),
    rowAsArray: arrayMode,
  };
}

/** A Postgres error (it has a SQLSTATE), as opposed to a lost or refused connection. */
function isDatabaseError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError || (typeof (error as { code?: unknown })?.code === 'string' && /^[0-9A-Z]{5}$/.test((error as { code: string }).code));
}

function errorBody(error: pg.DatabaseError): Record<string, unknown> {
  const body: Record<string, unknown> = { message: error.message };
  for (const field of ERROR_FIELDS) {
    const value = (error as unknown as Record<string, unknown>)[field];
    if (value !== undefined) body[field] = value;
  }
  return body;
}

/** The endpoint: a request handler plus the pools it keeps. */
export interface SqlEndpoint {
  /** Serves POST /sql through the fault switch. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Cuts requests left hanging by `drop` (called when the switch moves to `refuse`). */
  cutHanging(): void;
  /** Ends the pools and cuts hanging requests. */
  stop(): Promise<void>;
}

/** Creates the endpoint for Postgres at `target`; the switch is shared with the WebSocket path. */
export function createSqlEndpoint(target: { host: string; port: number }, faults: FaultSwitch, log: (msg: string) => void, wire?: Wire): SqlEndpoint {
  const pools = new Map<string, pg.Pool>();
  /** Requests swallowed in `drop` mode: never answered, cut on `refuse` and on stop. */
  const hanging = new Set<ServerResponse>();

  /** One pool per user, password and database named by the connection string; the host is ignored. */
  function poolFor(connectionString: string | undefined): pg.Pool {
    if (!connectionString) throw new BadRequest('missing Neon-Connection-String header');
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch {
      throw new BadRequest('Neon-Connection-String is not a valid URL');
    }
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (!user || !database) throw new BadRequest('Neon-Connection-String needs a user and a database');
    const key = JSON.stringify([user, password, database]);
    let pool = pools.get(key);
    if (!pool) {
      pool = new pg.Pool({ host: target.host, port: target.port, user, password, database, max: POOL_SIZE, idleTimeoutMillis: 60_000 });
      // An idle connection that breaks is replaced by the pool; unheard, the event would crash us.
      pool.on('error', (error) => log(`neon-http-sql: idle connection failed: ${error.message}`));
      pools.set(key, pool);
    }
    return pool;
  }

  async function run(client: pg.ClientBase, { query, params }: SqlQuery, arrayMode: boolean) {
    const config = {
      text: query,
      values: params,
      types: RAW_TEXT_TYPES,
      // Extended protocol even without parameters: one statement per query, as on Neon.
      queryMode: 'extended',
      ...(arrayMode ? { rowMode: 'array' as const } : {}),
    };
    return toResult(await client.query(config as pg.QueryConfig), arrayMode);
  }

  async function execute(req: IncomingMessage, request: SqlQuery | SqlQuery[]): Promise<unknown> {
    const pool = poolFor(header(req, 'Neon-Connection-String'));
    const arrayMode = header(req, 'Neon-Array-Mode') === 'true';
    if (header(req, 'Neon-Raw-Text-Output') !== 'true') {
      // The driver always asks for raw text; parsing values here would hand it JSON it parses again.
      throw new BadRequest('only Neon-Raw-Text-Output: true is supported');
    }
    if (!Array.isArray(request)) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await run(client, request, arrayMode);
      } catch (error) {
        if (!isDatabaseError(error)) broken = error as Error;
        throw error;
      } finally {
        client.release(broken);
      }
    }
    const begin = beginStatement(req);
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      try {
        const results = [];
        for (const query of request) results.push(await run(client, query, arrayMode));
        await client.query('COMMIT');
        return { results };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } catch (error) {
      if (!isDatabaseError(error)) broken = error as Error;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  function cut(res: ServerResponse): void {
    const socket = res.socket;
    if (socket instanceof net.Socket && !socket.destroyed) socket.resetAndDestroy();
    else res.destroy();
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const startMs = wallMs();
    const { mode, delayMs, match } = faults.state; // sampled on arrival, like the WebSocket path
    if (mode === 'delay') await sleep(delayMs);
    // The distance (wire.ts): one round trip per request, whatever it carries.
    if (wire && wire.latencyMs > 0) await sleep(wire.latencyMs);
    const loseReply = losesReplies(mode) && (match === '' || text.includes(match));
    let status: number;
    let body: unknown;
    try {
      if (req.method !== 'POST') throw new BadRequest('use POST');
      const request = parseRequest(text);
      wire?.count('pgHttpRequests');
      wire?.count('pgHttpStatements', Array.isArray(request) ? request.length : 1);
      body = await execute(req, request);
      status = 200;
    } catch (error) {
      if (error instanceof BadRequest) [status, body] = [400, { message: error.message }];
      else if (isDatabaseError(error)) [status, body] = [400, errorBody(error)];
      else [status, body] = [503, { message: `could not reach Postgres: ${(error as Error).message}` }];
    }
    // The statement ran (and committed); only its reply is lost: cut, or never sent (the request
    // hangs until the client gives up, or the switch moves to `refuse`).
    wire?.traced('pgHttpRequests', startMs);
    if (!loseReply) sendJson(res, status, body);
    else if (mode === 'cut-replies') cut(res);
    else if (!res.destroyed) {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
    }
  }

  return {
    handle(req, res) {
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
      serve(req, res).catch((error: unknown) => sendJson(res, 500, { message: (error as Error).message }));
    },
    cutHanging() {
      for (const res of [...hanging]) cut(res);
    },
    async stop() {
      for (const res of [...hanging]) res.destroy();
      await Promise.all([...pools.values()].map((pool) => pool.end().catch(() => undefined)));
      pools.clear();
    },
  };
}
