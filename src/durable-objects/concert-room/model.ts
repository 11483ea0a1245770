// Types and pure rules shared by the room and the Worker (which answers waiting polls at the edge).
import { rankOfPlace } from '../../lib/opening-shuffle.ts';
import type { EntryConfig } from '../../lib/entry-proof.ts';

/** How fans who joined before sales opened are ordered: drawn at random at opening, or by arrival. */
export type OpeningOrder = 'shuffle' | 'fifo';

/** Per-concert admission and hold settings (DESIGN.md §3). */
export interface QueueConfig {
  /** People admitted per window. @default 250 */
  admitPerWindow: number;
  /** Length of an admission window. @default 10 */
  windowSeconds: number;
  /** Cap on live sessions; null means no cap. @default null */
  maxActive: number | null;
  /** How long an admitted user may shop. @default 600 */
  sessionSeconds: number;
  /** How long a seat hold lasts unless paid; never past the session's end. @default 300 */
  holdSeconds: number;
  /** Stops admission (the line keeps growing). @default false */
  paused: boolean;
  /** Order of the pre-queue (fans who joined before sales opened); fixed once sales open. @default 'shuffle' */
  openingOrder: OpeningOrder;
  /** Lobby objects joins are spread over (issue 14); 1 sends every join straight to the room. @default 1 */
  lobbyShards: number;
  /** How long a waitlist offer (a hold made for the next fan when seats come back) lasts unless paid. @default 120 */
  waitlistOfferSeconds: number;
  /** What a join must bring (issue 20): a proof of work, or nothing. @default { proofOfWork: null } */
  entry: EntryConfig;
}

export const DEFAULT_QUEUE_CONFIG: QueueConfig = {
  admitPerWindow: 250,
  windowSeconds: 10,
  maxActive: null,
  sessionSeconds: 600,
  holdSeconds: 300,
  paused: false,
  openingOrder: 'shuffle',
  lobbyShards: 1,
  waitlistOfferSeconds: 120,
  entry: { proofOfWork: null },
};

/** Upper bounds admins may set; beyond them a setting is a typo, not a policy. */
export const QUEUE_CONFIG_LIMITS = {
  admitPerWindow: 100_000,
  windowSeconds: 3_600,
  maxActive: 1_000_000,
  sessionSeconds: 86_400,
  holdSeconds: 3_600,
  lobbyShards: 64,
  waitlistOfferSeconds: 3_600,
} as const;

export type QueueStatusName = 'waiting' | 'admitted' | 'completed' | 'expired' | 'sold_out';

/** What `GET /queue/status` and the WebSocket say. */
export interface QueueStatus {
  status: QueueStatusName;
  position: number;
  estimatedWaitSeconds: number;
  sessionExpiresAt: string | null;
  /**
   * Present (true) while sales have not opened and the pre-queue is to be shuffled: `position` is then
   * the fan's number in the pre-queue (how many had joined when they did), not their place, which is
   * drawn at opening; `estimatedWaitSeconds` counts until opening.
   */
  randomizedAtOpening?: true;
  /**
   * Present ('open') with `sold_out`: the line will admit nobody more, and the fan may join the
   * waitlist, where a place in line that did not buy ranks ahead of everyone who joins without one.
   */
  waitlist?: 'open';
}

/**
 * The facts a Worker needs to answer a waiting user's poll without asking the room: published to
 * the edge cache for about a second.
 */
export interface AdmissionSnapshot {
  /** Highest rank admitted so far: every place whose rank (see rankOf) is at or below it has left the waiting line. */
  watermark: number;
  soldOut: boolean;
  paused: boolean;
  salesOpenAt: number;
  windowStartedAt: number | null;
  /** Admitted so far in the current window: what is left of its budget may still go in before it ends. */
  admittedInWindow: number;
  admitPerWindow: number;
  windowSeconds: number;
  openingOrder: OpeningOrder;
  /** Places shuffled at opening (1..prequeueSize); null until sales open. */
  prequeueSize: number | null;
  /** The shuffle's seed, revealed once sales open (null before, and in FIFO order). */
  shuffleSeed: string | null;
  /** Where Workers send joins: the room (1) or one of this many lobbies. */
  lobbyShards: number;
}

/** True while the pre-queue waits for its draw: a shuffled opening that has not happened yet. */
export const awaitingDraw = (snapshot: AdmissionSnapshot): boolean => snapshot.openingOrder === 'shuffle' && snapshot.prequeueSize === null;

/** Place `seq`'s admission rank: drawn for the pre-queue once sales open, arrival order otherwise. */
export function rankOf(seq: number, snapshot: AdmissionSnapshot): number {
  // Falsy also for a snapshot an older version published (no such fields): that room keeps arrival order.
  if (!snapshot.shuffleSeed || !snapshot.prequeueSize) return seq;
  return rankOfPlace({ seed: snapshot.shuffleSeed, prequeueSize: snapshot.prequeueSize }, seq);
}

/**
 * True when place `seq` is still waiting whatever happened since `snapshot` was taken, as long as
 * that was in the same admission window: nobody is admitted before opening or while paused, and
 * within a window at most its remaining budget goes in. So a snapshot up to a window old answers a
 * waiting poll correctly, and the room need not publish every admission (only window changes, pause,
 * sold-out and settings, which it publishes at once). False means: ask the room.
 */
export function certainlyWaiting(seq: number, snapshot: AdmissionSnapshot, now: number): boolean {
  // Before the draw only the room may say where anyone stands once sales have opened.
  if (awaitingDraw(snapshot)) return now < snapshot.salesOpenAt;
  const rank = rankOf(seq, snapshot);
  if (rank <= snapshot.watermark) return false;
  if (snapshot.paused || snapshot.soldOut) return true;
  if (snapshot.windowStartedAt === null) return now < snapshot.salesOpenAt;
  if (now >= snapshot.windowStartedAt + snapshot.windowSeconds * 1000) return false;
  return rank > snapshot.watermark + Math.max(0, snapshot.admitPerWindow - snapshot.admittedInWindow);
}

/**
 * Seconds until `position` is admitted (DESIGN.md §3): whole windows ahead, less the time already
 * spent in the current one; before sales open, the time until opening comes first.
 */
export function estimateWaitSeconds(position: number, snapshot: AdmissionSnapshot, now: number): number {
  if (position <= 0) return 0;
  const windowMs = snapshot.windowSeconds * 1000;
  const windowsAhead = Math.ceil(position / snapshot.admitPerWindow);
  if (snapshot.windowStartedAt === null) {
    const untilOpen = Math.max(0, snapshot.salesOpenAt - now);
    return Math.ceil((untilOpen + (windowsAhead - 1) * windowMs) / 1000);
  }
  const elapsed = Math.min(windowMs, Math.max(0, now - snapshot.windowStartedAt));
  return Math.max(0, Math.ceil((windowsAhead * windowMs - elapsed) / 1000));
}

/** A waiting user's status from the snapshot alone. */
export function waitingStatus(seq: number, snapshot: AdmissionSnapshot, now: number): QueueStatus {
  if (awaitingDraw(snapshot) && !snapshot.soldOut) {
    const untilOpening = Math.max(0, Math.ceil((snapshot.salesOpenAt - now) / 1000));
    return { status: 'waiting', position: seq, estimatedWaitSeconds: untilOpening, sessionExpiresAt: null, randomizedAtOpening: true };
  }
  const position = Math.max(1, rankOf(seq, snapshot) - snapshot.watermark);
  if (snapshot.soldOut) return { status: 'sold_out', position, estimatedWaitSeconds: 0, sessionExpiresAt: null, waitlist: 'open' };
  return { status: 'waiting', position, estimatedWaitSeconds: estimateWaitSeconds(position, snapshot, now), sessionExpiresAt: null };
}
