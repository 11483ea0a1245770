// The room's queue WebSockets (hibernation API): who is connected for which place in line, what each
// was last sent, and how often it may be sent more. The room decides what changed; this module
// decides which sockets hear about it.
import { describeError, logJson } from '../../lib/logging.ts';
import { findBySeq, statusOf, type LineRow } from './line.ts';
import { rankOf, waitingStatus, type AdmissionSnapshot, type QueueStatus } from './model.ts';

/**
 * Queue sockets one place in line may keep open. Without a cap one token could hold tens of
 * thousands, each pushed on every change (issue 18). @default 4
 */
export const MAX_SOCKETS_PER_PLACE = 4;

/**
 * Close code of a socket dropped because its place opened a newer one past MAX_SOCKETS_PER_PLACE
 * (private-use range 4000–4999). A client must not reconnect on it: the newer socket replaced it.
 */
export const SOCKET_REPLACED_CLOSE_CODE = 4008;
export const SOCKET_REPLACED_REASON = 'replaced';

/**
 * A waiting place further back than this many admission windows is pushed its position at most
 * once per FAR_BACK_PUSH_INTERVAL_MS: it moves too slowly for more to matter. @default 2
 */
export const FAR_BACK_WINDOWS = 2;

/** See FAR_BACK_WINDOWS. @default 5000 */
export const FAR_BACK_PUSH_INTERVAL_MS = 5_000;

/** A socket's own "status" requests are answered at most this often. @default 1000 */
export const STATUS_REQUEST_INTERVAL_MS = 1_000;

/** What a socket remembers across hibernation: its place, whether it was still waiting, when it opened. */
interface WsAttachment {
  seq: number;
  waiting: boolean;
  /** Absent on sockets accepted before the cap existed: those count as the oldest. */
  openedAt?: number;
}

/** What a socket remembers while the room is awake. */
interface WsMemory extends WsAttachment {
  lastSent?: string;
  lastSentAt?: number;
  lastStatusRequestAt?: number;
}

const tagOf = (seq: number) => `seq:${seq}`;

/** The queue sockets of one room. */
export class QueueSockets {
  /**
   * The clock that paces pushes (far-back throttle, status requests). Tests replace it to move time
   * without waiting. @default Date.now
   */
  clock: () => number = () => Date.now();
  private readonly ctx: DurableObjectState;
  private readonly sql: SqlStorage;
  private readonly snapshot: () => AdmissionSnapshot;
  private readonly catchUp: () => void;
  private readonly memories = new WeakMap<WebSocket, WsMemory>();
  /** Opening times are kept strictly increasing, so "oldest" is exact even within one millisecond. */
  private lastOpenedAt = 0;
  private catchUpTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param ctx the room's state (accepts and lists its sockets)
   * @param sql the room's storage, for a place's own row
   * @param snapshot the room's current admission snapshot
   * @param catchUp called when sockets held back by the far-back throttle may be pushed again
   */
  constructor(ctx: DurableObjectState, sql: SqlStorage, snapshot: () => AdmissionSnapshot, catchUp: () => void) {
    this.ctx = ctx;
    this.sql = sql;
    this.snapshot = snapshot;
    this.catchUp = catchUp;
  }

  /**
   * Accepts a socket for `row`'s place and sends it its status. A place with MAX_SOCKETS_PER_PLACE
   * open already loses its oldest, closed with SOCKET_REPLACED_CLOSE_CODE. Returns the client end.
   */
  accept(row: LineRow): WebSocket {
    const open = this.ctx
      .getWebSockets(tagOf(row.seq))
      .filter((ws) => ws.readyState === WebSocket.OPEN)
      .map((ws) => ({ ws, openedAt: this.memoryOf(ws)?.openedAt ?? 0 }))
      .sort((a, b) => a.openedAt - b.openedAt);
    for (const { ws } of open.slice(0, Math.max(0, open.length - (MAX_SOCKETS_PER_PLACE - 1)))) {
      try {
        ws.close(SOCKET_REPLACED_CLOSE_CODE, SOCKET_REPLACED_REASON);
      } catch (error) {
        logJson('warn', 'websocket close failed', { seq: row.seq, ...describeError(error) });
      }
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [tagOf(row.seq)]);
    const now = this.clock();
    const openedAt = (this.lastOpenedAt = Math.max(now, this.lastOpenedAt + 1));
    const attachment: WsAttachment = { seq: row.seq, waiting: row.status === 'waiting', openedAt };
    server.serializeAttachment(attachment);
    const first = JSON.stringify(statusOf(row, this.snapshot(), Date.now()));
    this.memories.set(server, { ...attachment, lastSent: first, lastSentAt: now });
    server.send(first);
    return client;
  }

  /**
   * Sends the gathered pushes: to every socket (`everyone`), or to the places in `seqs`, whose own
   * status changed. Waiting sockets get their status from their seq and the snapshot alone (no SQL
   * per socket); a place is looked up only when its own status changed.
   */
  flush(everyone: boolean, seqs: ReadonlySet<number>): void {
    const snap = this.snapshot();
    const now = Date.now();
    const sockets = everyone ? this.ctx.getWebSockets() : [...seqs].flatMap((seq) => this.ctx.getWebSockets(tagOf(seq)));
    let heldBackUntil = Number.POSITIVE_INFINITY;
    for (const ws of sockets) {
      const memory = this.memoryOf(ws);
      if (!memory) continue;
      const ownChange = seqs.has(memory.seq);
      // A place that has left the line changes only through its own row, which puts it in `seqs`.
      if (!memory.waiting && !ownChange) continue;
      const held = this.push(ws, memory, snap, now, { force: false, lookUp: ownChange || rankOf(memory.seq, snap) <= snap.watermark });
      if (held !== undefined) heldBackUntil = Math.min(heldBackUntil, held);
    }
    if (Number.isFinite(heldBackUntil) && this.catchUpTimer === undefined) {
      // The held-back sockets get the latest once their interval is over, even if nothing changes again.
      this.catchUpTimer = setTimeout(
        () => {
          this.catchUpTimer = undefined;
          this.catchUp();
        },
        Math.max(0, heldBackUntil - this.clock()),
      );
    }
  }

  /** A socket's "status" request: answered at once, at most once per STATUS_REQUEST_INTERVAL_MS. */
  answerStatusRequest(ws: WebSocket): void {
    const memory = this.memoryOf(ws);
    if (!memory) return;
    const now = this.clock();
    if (memory.lastStatusRequestAt !== undefined && now - memory.lastStatusRequestAt < STATUS_REQUEST_INTERVAL_MS) return;
    memory.lastStatusRequestAt = now;
    this.push(ws, memory, this.snapshot(), Date.now(), { force: true, lookUp: true });
  }

  /** Sends `text` as it is to every socket of place `seq` (e.g. a waitlist offer). */
  sendToPlace(seq: number, text: string): void {
    for (const ws of this.ctx.getWebSockets(tagOf(seq))) {
      try {
        ws.send(text);
      } catch (error) {
        logJson('warn', 'websocket push failed', { seq, ...describeError(error) });
      }
    }
  }

  private memoryOf(ws: WebSocket): WsMemory | undefined {
    let memory = this.memories.get(ws);
    if (!memory) {
      const attachment = ws.deserializeAttachment() as WsAttachment | null;
      if (!attachment) return undefined;
      memory = { seq: attachment.seq, waiting: attachment.waiting ?? true, openedAt: attachment.openedAt ?? 0 };
      this.memories.set(ws, memory);
    }
    return memory;
  }

  /**
   * Sends `ws` its current status unless it already has it. A waiting place further back than
   * FAR_BACK_WINDOWS windows, pushed less than FAR_BACK_PUSH_INTERVAL_MS ago, is held back: returns
   * when it may be pushed again (undefined when it was not held back).
   */
  private push(ws: WebSocket, memory: WsMemory, snap: AdmissionSnapshot, now: number, options: { force: boolean; lookUp: boolean }): number | undefined {
    let status: QueueStatus;
    if (memory.waiting && !options.lookUp) {
      status = waitingStatus(memory.seq, snap, now);
    } else {
      const row = findBySeq(this.sql, memory.seq);
      if (!row) return undefined;
      status = statusOf(row, snap, now);
      const waiting = row.status === 'waiting';
      if (waiting !== memory.waiting) {
        memory.waiting = waiting;
        ws.serializeAttachment({ seq: memory.seq, waiting, openedAt: memory.openedAt } satisfies WsAttachment);
      }
    }
    // A socket closed by the room (replaced) lingers until its client answers the close.
    if (ws.readyState !== WebSocket.OPEN) return undefined;
    const message = JSON.stringify(status);
    if (!options.force && message === memory.lastSent) return undefined;
    const clock = this.clock();
    if (!options.force && status.status === 'waiting' && status.position > FAR_BACK_WINDOWS * snap.admitPerWindow && memory.lastSentAt !== undefined) {
      const allowedAt = memory.lastSentAt + FAR_BACK_PUSH_INTERVAL_MS;
      if (clock < allowedAt) return allowedAt;
    }
    try {
      ws.send(message);
      memory.lastSent = message;
      memory.lastSentAt = clock;
    } catch (error) {
      logJson('warn', 'websocket push failed', { seq: memory.seq, ...describeError(error) });
    }
    return undefined;
  }
}
