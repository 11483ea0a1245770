/**
 * Fault switches for the local adapters. Tests (which may run inside workerd, so only `fetch` is
 * available) flip them over HTTP on the adapter's own port:
 *
 *   POST /__fault  X-Fault-Token: <token>
 *                  {"mode":"none"|"refuse"|"drop"|"delay"|"cut-replies"|"swallow-replies",
 *                   "delayMs"?:number,"match"?:string}
 *   GET  /__fault  → {"mode":…, "delayMs":…, "match":…}
 *
 * Modes: `refuse` resets connections (and cuts live ones); `drop` swallows requests, never answering;
 * `delay` answers after `delayMs`; `cut-replies` lets requests reach the server and run (commit
 * included) but loses the reply: the connection is cut instead of answered. That is the lost reply
 * after COMMIT which idempotency must survive. `swallow-replies` is the same without the cut: the
 * reply never comes and the connection stays open, so the caller is left waiting after its statement
 * committed (a test can then reset the caller at exactly that point). With `match`, both only affect
 * requests whose text contains it (an SQL fragment such as "COMMIT" or "balance_ledger"); others pass
 * untouched.
 *
 * The server behind an adapter can be switched too (when the stack started it):
 *
 *   POST /__server X-Fault-Token: <token>   {"action":"stop"|"start"|"pause"|"resume"}
 *
 * `stop`/`start` shut the server down and start it again on the same port with the same data
 * (PostgreSQL); `pause`/`resume` freeze and thaw the process (redis-server: SIGSTOP/SIGCONT).
 *
 * The control paths are handled before any fault applies, so they keep working in every mode.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson } from './http-json.ts';

/** The behaviours an adapter can be switched to. */
export type FaultMode = 'none' | 'refuse' | 'drop' | 'delay' | 'cut-replies' | 'swallow-replies';

/** Current switch position. `delayMs` only matters in `delay` mode, `match` only in `cut-replies`. */
export interface FaultState {
  mode: FaultMode;
  delayMs: number;
  /** `cut-replies` and `swallow-replies` only: just the requests whose text contains this ("" = every request). */
  match: string;
}

/** Path of the control endpoint on every adapter. */
export const FAULT_PATH = '/__fault';

/** Path of the server control endpoint on every adapter whose server the stack started. */
export const SERVER_PATH = '/__server';

/** What the server control endpoint can do; an adapter offers the actions its server supports. */
export type ServerAction = 'stop' | 'start' | 'pause' | 'resume';

/** The server behind an adapter, as far as tests may switch it. */
export type ServerControl = Partial<Record<ServerAction, () => Promise<void>>>;

const MODES: readonly FaultMode[] = ['none', 'refuse', 'drop', 'delay', 'cut-replies', 'swallow-replies'];
const ACTIONS: readonly ServerAction[] = ['stop', 'start', 'pause', 'resume'];

/** True when `mode` loses the replies to requests that match (`cut-replies`, `swallow-replies`). */
export const losesReplies = (mode: FaultMode): mode is 'cut-replies' | 'swallow-replies' => mode === 'cut-replies' || mode === 'swallow-replies';
const DEFAULT_DELAY_MS = 1000;



/** One adapter's fault switch plus the HTTP handler that flips it. */
export class FaultSwitch {
  private readonly token: string;
  private current: FaultState = { mode: 'none', delayMs: 0, match: '' };
  private readonly listeners: ((state: FaultState) => void)[] = [];
  private readonly server: ServerControl;
  /** Server actions run one at a time, in the order they were asked for. */
  private serverQueue: Promise<unknown> = Promise.resolve();

  /**
   * `token` must be sent as X-Fault-Token to change the mode; an empty token disables changes.
   * `server` is what POST /__server may do to the server behind the adapter (nothing by default).
   */
  constructor(token: string, server: ServerControl = {}) {
    this.token = token;
    this.server = server;
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
    if (pathname === SERVER_PATH) {
      this.handleServer(req, res);
      return true;
    }
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
        const match = losesReplies(mode) && typeof body.match === 'string' ? body.match : '';
        this.set({ mode, delayMs: mode === 'delay' ? delayMs : 0, match });
        sendJson(res, 200, this.state);
      })
      .catch((error: unknown) => sendJson(res, 400, { error: (error as Error).message }));
    return true;
  }

  /** POST /__server {"action"}: answers once the server has stopped, started, paused or resumed. */
  private handleServer(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'use POST' });
      return;
    }
    if (this.token === '' || req.headers['x-fault-token'] !== this.token) {
      sendJson(res, 403, { error: 'bad or missing X-Fault-Token' });
      return;
    }
    readBody(req)
      .then(async (text) => {
        let action: ServerAction | undefined;
        try {
          const body = JSON.parse(text) as { action?: unknown };
          action = ACTIONS.find((a) => a === body.action);
        } catch {
          // answered below
        }
        if (!action) {
          sendJson(res, 400, { error: `action must be one of ${ACTIONS.join(', ')}` });
          return;
        }
        const run = this.server[action];
        if (!run) {
          sendJson(res, 501, { error: `this adapter's server cannot ${action}` });
          return;
        }
        const t0 = Date.now();
        const done = this.serverQueue.then(run);
        this.serverQueue = done.catch(() => undefined);
        await done;
        sendJson(res, 200, { action, ms: Date.now() - t0 });
      })
      .catch((error: unknown) => sendJson(res, 500, { error: (error as Error).message }));
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
