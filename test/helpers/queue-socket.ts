import { expect } from 'vitest';
import { api } from './api.ts';

/** Just under the suite's test timeout (vitest.config.ts): long enough for a busy box, short enough to say what never came. */
const SOCKET_WAIT_MS = 55_000;

export interface PushedStatus {
  status: string;
  position: number;
  /** Set on messages that are not a status, e.g. `waitlist_offer`. */
  type?: string;
}

/** Opens the queue WebSocket of `queueToken` and collects what the room pushes. */
export async function openQueueSocket(queueToken: string) {
  const response = await api(`/queue/ws?token=${encodeURIComponent(queueToken)}`, { headers: { Upgrade: 'websocket' } });
  expect(response.status).toBe(101);
  const ws = response.webSocket!;
  const messages: PushedStatus[] = [];
  /** Set once the server closed the socket. */
  let closed: { code: number; reason: string } | undefined;
  let notify: () => void = () => {};
  let notifyClosed: () => void = () => {};
  ws.addEventListener('message', (event) => {
    messages.push(JSON.parse(event.data as string) as PushedStatus);
    notify();
  });
  ws.addEventListener('close', (event) => {
    closed = { code: event.code, reason: event.reason };
    notifyClosed();
  });
  ws.accept();
  /**
   * Resolves once `done(messages)` holds. Rejects just before the test's own timeout, to say what
   * never came; no shorter deadline, since a busy box may push late.
   */
  const until = (done: (received: PushedStatus[]) => boolean, what: string, ms = SOCKET_WAIT_MS) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what}; got ${JSON.stringify(messages)}`)), ms);
      notify = () => {
        if (done(messages)) {
          clearTimeout(timer);
          resolve();
        }
      };
      notify();
    });
  return {
    ws,
    messages,
    /** Resolves once `count` messages have arrived. */
    next: (count: number) => until((received) => received.length >= count, `message ${count}`),
    /** Resolves once a message with `status` has arrived. */
    waitFor: (status: string) => until((received) => received.some((m) => m.status === status), `"${status}" push`),
    /** How the server closed the socket, once it has. */
    closed: () => closed,
    /** Resolves with the close code and reason once the server has closed the socket. */
    waitForClose: (ms = 5_000) =>
      new Promise<{ code: number; reason: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('socket not closed')), ms);
        notifyClosed = () => {
          if (!closed) return;
          clearTimeout(timer);
          resolve(closed);
        };
        notifyClosed();
      }),
    /** Resolves once a message for which `match` holds has arrived. */
    waitForMessage: (match: (message: PushedStatus) => boolean, what: string) => until((received) => received.some(match), what),
  };
}
