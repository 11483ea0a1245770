/**
 * A crowd of queue WebSockets held open from this process (`GET /queue/ws`, the queue token offered
 * as the subprotocol `token.<jwt>` beside `frontrow.v1`; the room's hibernating sockets), for
 * measuring what a room does with many listeners, or for following each listener's status. Each
 * socket counts as open once the room's first status message arrives; later pushes are counted.
 */
import fs from 'node:fs';
import WebSocket from 'ws';
import { countInto, describeError, sortedRecord } from './closed-loop.ts';
import { onCleanup } from './cleanup.ts';

/**
 * File descriptors the busiest runtime process uses per queue WebSocket, by mode (measured here with
 * 2,000 sockets): bare workerd 2 (4,000 more); under `wrangler dev` its proxy workerd 4 (7,890 more).
 */
export const FDS_PER_SOCKET = { workerd: 2, wrangler: 4 } as const;
/** Descriptors left for everything else the runtime does meanwhile (HTTP clients, Postgres, Redis). */
const FD_HEADROOM = 1000;

/** This process's soft limit on open files (the Worker's runtime inherits it), or undefined if unknown. */
export function openFileLimit(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The most queue sockets the Worker's runtime can hold under the open-file limit, leaving headroom.
 * Past it workerd fails every new connection ("dup(): Too many open files", seen at 9,979 sockets on
 * bare workerd under a limit of 20,000) and wrangler's proxy stops accepting (ECONNREFUSED after
 * 4,871). Infinity when the limit is unknown.
 */
export function maxSockets(mode: keyof typeof FDS_PER_SOCKET, limit = openFileLimit()): number {
  return limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor((limit - FD_HEADROOM) / FDS_PER_SOCKET[mode]));
}

export interface SocketCrowd {
  /** Sockets open (first status received). */
  readonly open: number;
  /** Sockets that failed to open, by error. */
  failures: Record<string, number>;
  /** Seconds it took to open them all. */
  seconds: number;
  /** Messages received after each socket's first, so far (the room's pushes). */
  pushes(): number;
  /** Sockets that closed or failed after opening, so far. */
  dropped(): number;
  /** Closes every socket; idempotent. */
  close(): Promise<void>;
}

export interface OpenSocketsOptions {
  baseUrl: string;
  /** One socket per queue token. */
  tokens: readonly string[];
  /** Sockets being opened at once. @default 100 */
  concurrency?: number;
  /** A socket that has not had its first message by then counts as failed. @default 30000 */
  timeoutMs?: number;
  log?: (message: string) => void;
  signal?: AbortSignal;
  /** Every message a socket receives, the first included, with the index of its token. */
  onMessage?: (index: number, data: string) => void;
  /** A socket that had opened closed or failed, other than by {@link SocketCrowd.close}. */
  onDrop?: (index: number) => void;
}

export async function openSockets(opts: OpenSocketsOptions): Promise<SocketCrowd> {
  const wsBase = opts.baseUrl.replace(/^http/, 'ws');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const sockets: WebSocket[] = [];
  const failures = new Map<string, number>();
  let pushes = 0;
  let dropped = 0;
  let closing = false;
  let next = 0;
  const t0 = performance.now();
  let lastLog = t0;

  const openOne = (index: number): Promise<void> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${wsBase}/queue/ws`, ['frontrow.v1', `token.${opts.tokens[index]!}`], { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      let opened = false;
      const fail = (reason: string): void => {
        if (opened) return;
        opened = true; // settle once
        clearTimeout(timer);
        countInto(failures, reason);
        ws.terminate();
        resolve();
      };
      const timer = setTimeout(() => fail('no first message in time'), timeoutMs);
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        if (opts.onMessage && !isBinary) opts.onMessage(index, Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8'));
        if (!opened) {
          opened = true;
          clearTimeout(timer);
          sockets.push(ws);
          resolve();
        } else pushes++;
      });
      ws.on('unexpected-response', (_request, response) => fail(`HTTP ${response.statusCode}`));
      ws.on('error', (error) => fail(describeError(error)));
      ws.on('close', () => {
        if (opened && !closing && sockets.includes(ws)) {
          dropped++;
          opts.onDrop?.(index);
        }
        fail('closed before its first message');
      });
    });

  const worker = async (): Promise<void> => {
    while (next < opts.tokens.length && !opts.signal?.aborted) {
      await openOne(next++);
      const now = performance.now();
      if (opts.log && now - lastLog > 5000) {
        lastLog = now;
        opts.log(`  sockets: ${sockets.length.toLocaleString('en-US')} open, ${[...failures.values()].reduce((a, b) => a + b, 0)} failed, ${((now - t0) / 1000).toFixed(0)} s`);
      }
    }
  };

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      closing = true;
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve();
              const timer = setTimeout(() => {
                ws.terminate();
                resolve();
              }, 2000);
              ws.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              ws.close(1000, 'bench done');
            }),
        ),
      );
    })());
  const unregister = onCleanup('queue WebSockets', close);

  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 100, opts.tokens.length) }, worker));
  return {
    get open() {
      return sockets.length;
    },
    failures: sortedRecord(failures),
    seconds: (performance.now() - t0) / 1000,
    pushes: () => pushes,
    dropped: () => dropped,
    close: unregister,
  };
}
