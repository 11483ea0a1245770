// Types and pure rules shared by the room and the Worker (which answers waiting polls at the edge).

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
}

export const DEFAULT_QUEUE_CONFIG: QueueConfig = {
  admitPerWindow: 250,
  windowSeconds: 10,
  maxActive: null,
  sessionSeconds: 600,
  holdSeconds: 300,
  paused: false,
};

/** Upper bounds admins may set; beyond them a setting is a typo, not a policy. */
export const QUEUE_CONFIG_LIMITS = {
  admitPerWindow: 100_000,
  windowSeconds: 3_600,
  maxActive: 1_000_000,
  sessionSeconds: 86_400,
  holdSeconds: 3_600,
} as const;

export type QueueStatusName = 'waiting' | 'admitted' | 'completed' | 'expired' | 'sold_out';

/** What `GET /queue/status` and the WebSocket say. */
export interface QueueStatus {
  status: QueueStatusName;
  position: number;
  estimatedWaitSeconds: number;
  sessionExpiresAt: string | null;
}

/**
 * The facts a Worker needs to answer a waiting user's poll without asking the room: published to
 * the edge cache for about a second.
 */
export interface AdmissionSnapshot {
  /** Highest seq admitted so far: every seq at or below it has left the waiting line. */
  watermark: number;
  soldOut: boolean;
  paused: boolean;
  salesOpenAt: number;
  windowStartedAt: number | null;
  /** Admitted so far in the current window: what is left of its budget may still go in before it ends. */
  admittedInWindow: number;
  admitPerWindow: number;
  windowSeconds: number;
}

/**
 * True when place `seq` is still waiting whatever happened since `snapshot` was taken, as long as
 * that was in the same admission window: nobody is admitted before opening or while paused, and
 * within a window at most its remaining budget goes in. So a snapshot up to a window old answers a
 * waiting poll correctly, and the room need not publish every admission (only window changes, pause,
 * sold-out and settings, which it publishes at once). False means: ask the room.
 */
export function certainlyWaiting(seq: number, snapshot: AdmissionSnapshot, now: number): boolean {
  if (seq <= snapshot.watermark) return false;
  if (snapshot.paused || snapshot.soldOut) return true;
  if (snapshot.windowStartedAt === null) return now < snapshot.salesOpenAt;
  if (now >= snapshot.windowStartedAt + snapshot.windowSeconds * 1000) return false;
  return seq > snapshot.watermark + Math.max(0, snapshot.admitPerWindow - snapshot.admittedInWindow);
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
  const position = Math.max(1, seq - snapshot.watermark);
  if (snapshot.soldOut) return { status: 'sold_out', position, estimatedWaitSeconds: 0, sessionExpiresAt: null };
  return { status: 'waiting', position, estimatedWaitSeconds: estimateWaitSeconds(position, snapshot, now), sessionExpiresAt: null };
}
