/**
 * Fault switches for the local adapters. Tests (which may run inside workerd, so only `fetch` is
 * available) flip them over HTTP on the adapter's own port:
 *
 *   POST /__fault  X-Fault-Token: <token>
 *                  {"mode":"none"|"refuse"|"drop"|"delay"|"cut-replies","delayMs"?:number,"match"?:string}
 *   GET  /__fault  → {"mode":…, "delayMs":…, "match":…}
 *
 * Modes: `refuse` resets connections (and cuts live ones); `drop` swallows requests, never answering;
 * `delay` answers after `delayMs`; `cut-replies` lets requests reach the server and run (commit
 * included) but loses the reply: the connection is cut instead of answered. That is the lost reply
 * after COMMIT which idempotency must survive. With `match`, `cut-replies` only cuts requests whose
 * text contains it (an SQL fragment such as "COMMIT" or "balance_ledger"); others pass untouched.
 *
 * The control path is handled before any fault applies, so it keeps working in every mode.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The behaviours an adapter can be switched to. */
export type FaultMode = 'none' | 'refuse' | 'drop' | 'delay' | 'cut-replies';

/** Current switch position. `delayMs` only matters in `delay` mode, `match` only in `cut-replies`. */
export interface FaultState {
  mode: FaultMode;
  delayMs: number;
  /** `cut-replies` only: cut just the requests whose text contains this ("" = every request). */
  match: string;
}

/** Path of the control endpoint on every adapter. */
export const FAULT_PATH = '/__fault';

const MODES: readonly FaultMode[] = ['none', 'refuse', 'drop', 'delay', 'cut-replies'];
const DEFAULT_DELAY_MS = 1000;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** One adapter's fault switch plus the HTTP handler that flips it. */
export class FaultSwitch {
  private readonly token: string;
  private current: FaultState = { mode: 'none', delayMs: 0, match: '' };
  private readonly listeners: ((state: FaultState) => void)[] = [];

  /** `token` must be sent as X-Fault-Token to change the mode; an empty token disables changes. */
  constructor(token: string) {
    this.token = token;
  }

  /** The current mode (a copy). */
  get state(): FaultState {
    return { ...this.current };
  }

  /** Sets the mode directly (for Node-side tests that hold the Stack object). */
  set(state: { mode: FaultMode; delayMs?: number; match?: string }): void {
    this.current = { mode: state.mode, delayMs: state.delayMs ?? 0, match: state.match ?? '' };
    for (const listener of this.listeners) listener(this.state);
  }

  /** Called after every change, e.g. so the Neon adapter can cut live connections on `refuse`. */
  onChange(listener: (state: FaultState) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Serves the control endpoint. Returns true if the request was for it (and has been answered),
   * false if the caller should handle the request itself.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== FAULT_PATH) return false;
    if (req.method === 'GET') {
      sendJson(res, 200, this.state);
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
    readBody(req)
      .then((text) => {
        const body = JSON.parse(text) as { mode?: unknown; delayMs?: unknown; match?: unknown };
        const mode = MODES.find((m) => m === body.mode);
        if (!mode) throw new Error(`mode must be one of ${MODES.join(', ')}`);
        const delayMs = typeof body.delayMs === 'number' && body.delayMs >= 0 ? body.delayMs : DEFAULT_DELAY_MS;
        if (body.match !== undefined && body.match !== null && typeof body.match !== 'string') throw new Error('match must be a string');
        const match = mode === 'cut-replies' && typeof body.match === 'string' ? body.match : '';
        this.set({ mode, delayMs: mode === 'delay' ? delayMs : 0, match });
        sendJson(res, 200, this.state);
      })
      .catch((error: unknown) => sendJson(res, 400, { error: (error as Error).message }));
    return true;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
