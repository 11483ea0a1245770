/**
 * A fan's live place in line: the queue WebSocket (reconnecting, via partysocket) pushes the status
 * whenever it changes; while the socket is down, `GET /queue/status` is polled instead, never sooner
 * than a 429's or 503's Retry-After asks. A slower poll runs beside a live socket only to read the
 * `Queue-Paused` header, because a pause moves nobody and so is never pushed. The same socket carries
 * `waitlist_offer` messages: seats held for a fan on the concert's waitlist.
 */
import ReconnectingWebSocket from 'partysocket/ws';
import { ApiError, call, problemOf, type Problem } from './api.ts';

export interface QueueStatus {
  status: 'waiting' | 'admitted' | 'completed' | 'expired' | 'sold_out';
  position: number;
  estimatedWaitSeconds: number;
  sessionExpiresAt: string | null;
  /** Sales have not opened and places will be drawn at random then (position is the fan's number in the pre-queue). */
  randomizedAtOpening?: true;
}

/** Seats that came back, held for this fan from the waitlist until `expiresAt`; pay with POST /payment. */
export interface WaitlistOffer {
  type: 'waitlist_offer';
  reservationId: string;
  seats: { seatNumber: number; section: string; price: number }[];
  amount: number;
  expiresAt: string;
}

/**
 * live: pushes over the socket; polling: socket down, polling instead; replaced: this place opened a
 * newer socket (another tab), which closed this one for good, so this page polls slowly instead.
 */
export type Connection = 'connecting' | 'live' | 'polling' | 'replaced';

/**
 * Close code of a queue socket the room dropped because its place opened too many (at most 4, the
 * oldest goes: SOCKET_REPLACED_CLOSE_CODE in src/durable-objects/concert-room/sockets.ts). Reconnecting
 * would only close another tab's socket in turn.
 */
export const SOCKET_REPLACED_CLOSE_CODE = 4008;

export interface FeedUpdate {
  status?: QueueStatus;
  connection?: Connection;
  paused?: boolean;
  /** A waitlist offer pushed over the socket. */
  offer?: WaitlistOffer;
  /** The last poll's failure; cleared (undefined) by the next success. */
  problem?: Problem | undefined;
}

export interface FeedOptions {
  /** Poll interval while the socket is down. @default 2000 */
  fallbackPollMs?: number;
  /** Poll interval beside a live socket, for the pause flag. @default 5000 */
  pauseCheckMs?: number;
}

/** The queue WebSocket's subprotocols: the version, and the token (kept out of the URL and its logs). */
const protocols = (queueToken: string): string[] => ['frontrow.v1', `token.${queueToken}`];

/** Follows one queue token until the returned function is called. */
export function followQueue(
  queueToken: string,
  userToken: string,
  onUpdate: (update: FeedUpdate) => void,
  { fallbackPollMs = 2000, pauseCheckMs = 5000 }: FeedOptions = {},
): () => void {
  const origin = location.origin.replace(/^http/, 'ws');
  const socket = new ReconnectingWebSocket(`${origin}/queue/ws`, protocols(queueToken), {
    minReconnectionDelay: 500,
    maxReconnectionDelay: 10_000,
    connectionTimeout: 5000,
    shouldReconnectOnClose: (event) => event.code !== SOCKET_REPLACED_CLOSE_CODE,
  });
  let live = false;
  let replaced = false;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const schedule = (ms: number): void => {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(() => void poll(), ms);
  };

  async function poll(): Promise<void> {
    let next = live || replaced ? pauseCheckMs : fallbackPollMs;
    try {
      const { body, headers } = await call<QueueStatus>('/queue/status', { queueToken, bearer: userToken });
      if (stopped) return;
      const paused = headers.get('Queue-Paused');
      onUpdate({ status: body, paused: paused === null ? undefined : paused === 'true', problem: undefined });
    } catch (error) {
      if (stopped) return;
      onUpdate({ problem: problemOf(error) });
      if (error instanceof ApiError && error.retryAfterSeconds) next = Math.max(next, error.retryAfterSeconds * 1000);
    }
    schedule(next);
  }

  socket.addEventListener('open', () => {
    live = true;
    onUpdate({ connection: 'live' });
  });
  socket.addEventListener('close', (event: CloseEvent) => {
    if (stopped) return;
    const wasLive = live;
    live = false;
    replaced = event.code === SOCKET_REPLACED_CLOSE_CODE;
    onUpdate({ connection: replaced ? 'replaced' : 'polling' });
    if (wasLive) schedule(0);
  });
  socket.addEventListener('message', (event: MessageEvent) => {
    if (typeof event.data !== 'string') return;
    let message: QueueStatus | WaitlistOffer | { type: string };
    try {
      message = JSON.parse(event.data) as QueueStatus | WaitlistOffer | { type: string };
    } catch {
      return; // not JSON: the protocol never sends that
    }
    // A message with a `type` is not a status; those the page does not know are ignored.
    if ('type' in message) {
      if (message.type === 'waitlist_offer') onUpdate({ offer: message as WaitlistOffer });
      return;
    }
    onUpdate({ status: message });
  });
  onUpdate({ connection: 'connecting' });
  schedule(0);

  return () => {
    stopped = true;
    clearTimeout(timer);
    socket.close();
  };
}
