/**
 * A minimal RESP2 client: enough to forward arbitrary commands to redis-server and get typed replies
 * back. Redis answers the commands of one connection strictly in order, so each connection is a FIFO
 * of pending replies; commands written in one `write()` can never be split by another caller.
 */
import net from 'node:net';

/** An error reply (`-ERR ...`). Kept as a value, not thrown, because pipelines carry them per entry. */
export class RespError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/**
 * A decoded reply: simple string → string, bulk string → Buffer (binary-safe), integer → number,
 * nil bulk/array → null, error → RespError, array → array.
 */
export type RespValue = string | Buffer | number | null | RespError | RespValue[];

/** One command argument; numbers are sent in their decimal form. */
export type RespArg = string | Buffer | number;

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly RespArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const data = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${data.length}\r\n`), data, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Marker for "the buffer does not hold a complete reply yet". */
const INCOMPLETE = Symbol('incomplete');
type Parsed = { value: RespValue; end: number } | typeof INCOMPLETE;

/** Parses one reply starting at `start`; returns the value and the offset just past it. */
function parseReply(buf: Buffer, start: number): Parsed {
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd < 0) return INCOMPLETE;
  const type = buf[start];
  const line = buf.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case 0x2b: // '+'
      return { value: line, end: next };
    case 0x2d: // '-'
      return { value: new RespError(line), end: next };
    case 0x3a: // ':'
      return { value: Number(line), end: next };
    case 0x24: {
      // '$'
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return INCOMPLETE;
      return { value: Buffer.from(buf.subarray(next, next + length)), end: next + length + 2 };
    }
    case 0x2a: {
      // '*'
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let offset = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, offset);
        if (item === INCOMPLETE) return INCOMPLETE;
        items.push(item.value);
        offset = item.end;
      }
      return { value: items, end: offset };
    }
    default:
      throw new Error(`RESP protocol error: unexpected type byte ${String(type)}`);
  }
}

interface Pending {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
}

/** One connection to redis-server with in-order reply matching. */
export class RespConnection {
  private readonly socket: net.Socket;
  private readonly pending: Pending[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private closedError: Error | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('redis connection closed')));
  }

  /** Opens a connection; rejects if the TCP connect fails. */
  static connect(host: string, port: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RespConnection(socket));
      });
    });
  }

  /** Replies still owed by the server. */
  get inFlight(): number {
    return this.pending.length;
  }

  /** False once the socket errored or closed. */
  get alive(): boolean {
    return this.closedError === undefined;
  }

  /** Sends one command and resolves with its reply (error replies resolve as RespError). */
  send(args: readonly RespArg[]): Promise<RespValue> {
    return this.sendBatch([args]).then((replies) => replies[0] ?? null);
  }

  /** Writes all commands in a single write (nothing can interleave) and resolves with all replies. */
  sendBatch(commands: readonly (readonly RespArg[])[]): Promise<RespValue[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    const replies = commands.map(
      () =>
        new Promise<RespValue>((resolve, reject) => {
          this.pending.push({ resolve, reject });
        }),
    );
    this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  /** Closes the socket; pending replies are rejected. */
  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    try {
      while (offset < this.buffer.length) {
        const parsed = parseReply(this.buffer, offset);
        if (parsed === INCOMPLETE) break;
        offset = parsed.end;
        this.pending.shift()?.resolve(parsed.value);
      }
    } catch (error) {
      this.fail(error as Error);
      this.socket.destroy();
      return;
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    for (const waiter of this.pending.splice(0)) waiter.reject(error);
  }
}

/**
 * A few connections shared by concurrent callers: each call goes to the least busy live connection,
 * so one slow reply does not queue everything behind it.
 */
export class RespPool {
  private readonly host: string;
  private readonly port: number;
  private readonly size: number;
  private slots: { ready: Promise<RespConnection>; connection?: RespConnection; failed?: boolean }[] = [];
  private readonly dedicated = new Set<RespConnection>();
  private closed = false;

  constructor(host: string, port: number, size = 4) {
    this.host = host;
    this.port = port;
    this.size = size;
  }

  /** Sends one command on a pooled connection. */
  async command(args: readonly RespArg[]): Promise<RespValue> {
    return (await this.pick()).send(args);
  }

  /** Sends commands back to back on one pooled connection in a single write; one reply per command. */
  async batch(commands: readonly (readonly RespArg[])[]): Promise<RespValue[]> {
    return (await this.pick()).sendBatch(commands);
  }

  /**
   * Runs commands on a connection of their own, closed afterwards. For blocking commands (BLPOP …),
   * which would otherwise stall every request queued behind them on a shared connection.
   */
  async isolated(commands: readonly (readonly RespArg[])[]): Promise<RespValue[]> {
    if (this.closed) throw new Error('redis pool is closed');
    const connection = await RespConnection.connect(this.host, this.port);
    this.dedicated.add(connection);
    try {
      return await connection.sendBatch(commands);
    } finally {
      this.dedicated.delete(connection);
      connection.close();
    }
  }

  /** Closes all connections. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    const connections = await Promise.allSettled(slots.map((slot) => slot.ready));
    for (const result of connections) if (result.status === 'fulfilled') result.value.close();
    for (const connection of this.dedicated) connection.close();
  }

  /** Chooses a connection synchronously (no await before the choice, so concurrent callers cannot race). */
  private pick(): Promise<RespConnection> {
    if (this.closed) return Promise.reject(new Error('redis pool is closed'));
    // Forget dead connections (socket error, redis restarted) so they get replaced.
    this.slots = this.slots.filter((slot) => !slot.failed && (slot.connection?.alive ?? true));
    const live = this.slots.flatMap((slot) => (slot.connection ? [slot.connection] : []));
    const idle = live.find((connection) => connection.inFlight === 0);
    if (idle) return Promise.resolve(idle);
    if (this.slots.length < this.size) {
      const slot: (typeof this.slots)[number] = { ready: RespConnection.connect(this.host, this.port) };
      slot.ready.then(
        (connection) => (slot.connection = connection),
        () => (slot.failed = true),
      );
      this.slots.push(slot);
      return slot.ready;
    }
    const [first] = live;
    if (!first) return this.slots[0]?.ready ?? Promise.reject(new Error('no redis connection'));
    return Promise.resolve(live.reduce((best, c) => (c.inFlight < best.inFlight ? c : best), first));
  }
}
