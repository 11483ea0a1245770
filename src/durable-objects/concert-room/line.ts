// The waiting line and admission: synchronous functions over the room's SqlStorage, so every
// decision is made without an await in the middle and can be tested without HTTP.
import { readMeta, writeMeta } from './meta.ts';
import { waitingStatus, type AdmissionSnapshot, type QueueConfig, type QueueStatus } from './model.ts';

export type LineRow = {
  seq: number;
  user_id: string;
  jti: string;
  issued_at: number;
  status: 'waiting' | 'admitted' | 'completed' | 'expired';
  admitted_at: number | null;
  session_expires_at: number | null;
};

/** Admission bookkeeping kept in room_meta. */
export interface AdmissionState {
  watermark: number;
  /** Start of the current admission window; null until sales open. */
  windowStartedAt: number | null;
  admittedInWindow: number;
}

const ADMISSION_KEY = 'admission';
const INITIAL_ADMISSION: AdmissionState = { watermark: 0, windowStartedAt: null, admittedInWindow: 0 };

export const readAdmission = (sql: SqlStorage): AdmissionState => readMeta<AdmissionState>(sql, ADMISSION_KEY) ?? INITIAL_ADMISSION;
const writeAdmission = (sql: SqlStorage, state: AdmissionState) => writeMeta(sql, ADMISSION_KEY, state);

export function findByUser(sql: SqlStorage, userId: string): LineRow | undefined {
  return sql.exec<LineRow>(`SELECT * FROM line WHERE user_id = ?`, userId).toArray()[0];
}

export function findBySeq(sql: SqlStorage, seq: number): LineRow | undefined {
  return sql.exec<LineRow>(`SELECT * FROM line WHERE seq = ?`, seq).toArray()[0];
}

/**
 * Puts `userId` in line, or returns their existing place: one place per user, however often
 * and however concurrently they join.
 */
export function joinLine(sql: SqlStorage, userId: string, now: number): { row: LineRow; joined: boolean } {
  const existing = findByUser(sql, userId);
  if (existing) return { row: existing, joined: false };
  const next = sql.exec<{ next: number }>(`SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM line`).one().next;
  sql.exec(
    `INSERT INTO line (seq, user_id, jti, issued_at, status) VALUES (?, ?, ?, ?, 'waiting')`,
    next,
    userId,
    crypto.randomUUID(),
    Math.floor(now / 1000),
  );
  return { row: findBySeq(sql, next)!, joined: true };
}

/** Ends admitted sessions whose time is up; their slots count as free from now on. */
export function expireSessions(sql: SqlStorage, now: number): number {
  return sql.exec(
    `UPDATE line SET status = 'expired', ended_at = ? WHERE status = 'admitted' AND session_expires_at <= ?`,
    now,
    now,
  ).rowsWritten;
}

export function countLive(sql: SqlStorage, now: number): number {
  return sql.exec<{ n: number }>(
    `SELECT COUNT(*) AS n FROM line WHERE status = 'admitted' AND session_expires_at > ?`,
    now,
  ).one().n;
}

export function countWaiting(sql: SqlStorage): number {
  return sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM line WHERE status = 'waiting'`).one().n;
}

/**
 * Admits from the head of the line as far as the current window's budget and `maxActive` allow,
 * opening a new window when the previous one has run its length. Returns how many were admitted.
 */
export function admit(
  sql: SqlStorage,
  config: QueueConfig,
  salesOpenAt: number,
  soldOut: boolean,
  now: number,
): number {
  if (config.paused || soldOut || now < salesOpenAt) return 0;
  const state = { ...readAdmission(sql) };
  const windowMs = config.windowSeconds * 1000;
  if (state.windowStartedAt === null || now >= state.windowStartedAt + windowMs) {
    state.windowStartedAt = now;
    state.admittedInWindow = 0;
  }
  let room = config.admitPerWindow - state.admittedInWindow;
  if (config.maxActive !== null) room = Math.min(room, config.maxActive - countLive(sql, now));
  let admitted = 0;
  if (room > 0) {
    const sessionExpiresAt = now + config.sessionSeconds * 1000;
    const head = sql
      .exec<{ seq: number }>(`SELECT seq FROM line WHERE status = 'waiting' ORDER BY seq LIMIT ?`, room)
      .toArray();
    const last = head.at(-1);
    if (last) {
      admitted = sql.exec(
        `UPDATE line SET status = 'admitted', admitted_at = ?, session_expires_at = ?
          WHERE status = 'waiting' AND seq <= ?`,
        now,
        sessionExpiresAt,
        last.seq,
      ).rowsWritten;
      state.watermark = Math.max(state.watermark, last.seq);
      state.admittedInWindow += admitted;
    }
  }
  writeAdmission(sql, state);
  return admitted;
}

/** The time the next admission window opens, or null when nobody waits or admission cannot run. */
export function nextAdmissionAt(sql: SqlStorage, config: QueueConfig, salesOpenAt: number, soldOut: boolean): number | null {
  if (config.paused || soldOut || countWaiting(sql) === 0) return null;
  const { windowStartedAt } = readAdmission(sql);
  return windowStartedAt === null ? salesOpenAt : windowStartedAt + config.windowSeconds * 1000;
}

/** Earliest end of a live session, or null. */
export function nextSessionExpiry(sql: SqlStorage): number | null {
  return sql.exec<{ t: number | null }>(`SELECT MIN(session_expires_at) AS t FROM line WHERE status = 'admitted'`).one().t;
}

/** Marks a user's session completed (they paid): the slot frees at once. */
export function completeSession(sql: SqlStorage, userId: string, now: number): boolean {
  return (
    sql.exec(`UPDATE line SET status = 'completed', ended_at = ? WHERE user_id = ? AND status = 'admitted'`, now, userId)
      .rowsWritten > 0
  );
}

export function snapshot(sql: SqlStorage, config: QueueConfig, salesOpenAt: number, soldOut: boolean): AdmissionSnapshot {
  const state = readAdmission(sql);
  return {
    watermark: state.watermark,
    soldOut,
    paused: config.paused,
    salesOpenAt,
    windowStartedAt: state.windowStartedAt,
    admitPerWindow: config.admitPerWindow,
    windowSeconds: config.windowSeconds,
  };
}

/** The status of one place in line, as `GET /queue/status` reports it. */
export function statusOf(row: LineRow, snap: AdmissionSnapshot, now: number): QueueStatus {
  switch (row.status) {
    case 'waiting':
      return waitingStatus(row.seq, snap, now);
    case 'admitted':
      if (row.session_expires_at !== null && row.session_expires_at <= now) {
        return { status: 'expired', position: 0, estimatedWaitSeconds: 0, sessionExpiresAt: new Date(row.session_expires_at).toISOString() };
      }
      return {
        status: 'admitted',
        position: 0,
        estimatedWaitSeconds: 0,
        sessionExpiresAt: row.session_expires_at === null ? null : new Date(row.session_expires_at).toISOString(),
      };
    case 'completed':
    case 'expired':
      return {
        status: row.status,
        position: 0,
        estimatedWaitSeconds: 0,
        sessionExpiresAt: row.session_expires_at === null ? null : new Date(row.session_expires_at).toISOString(),
      };
  }
}

/** Line counts for the admin stats. */
export function lineStats(sql: SqlStorage, now: number) {
  const rows = sql.exec<{ status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM line GROUP BY status`).toArray();
  const by = Object.fromEntries(rows.map((r) => [r.status, r.n])) as Record<string, number | undefined>;
  const admittedEver = (by.admitted ?? 0) + (by.completed ?? 0) + (by.expired ?? 0);
  return {
    waiting: by.waiting ?? 0,
    admitted: admittedEver,
    active: countLive(sql, now),
    completed: by.completed ?? 0,
    expired: by.expired ?? 0,
  };
}
