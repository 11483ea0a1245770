// The waiting line and admission: synchronous functions over the room's SqlStorage, so every
// decision is made without an await in the middle and can be tested without HTTP.
import { newShuffleSeed, placeOfRank, type OpeningShuffle } from '../../lib/opening-shuffle.ts';
import { counter, counters, readMeta, writeMeta } from './meta.ts';
import { isSoldOut } from './seats.ts';
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

/**
 * The pre-queue draw: a seed made when the room is first loaded (its hash is the public commitment),
 * and the pre-queue's size, fixed at the first moment the room acts at or after opening. Until then
 * the seed is never shown.
 */
export interface OpeningState {
  seed: string;
  prequeueSize: number | null;
}

const OPENING_KEY = 'opening';

/** The room's opening state, made (with a fresh seed) on first use. Call inside a transaction. */
export function openingState(sql: SqlStorage): OpeningState {
  const existing = readMeta<OpeningState>(sql, OPENING_KEY);
  if (existing) return existing;
  const made: OpeningState = { seed: newShuffleSeed(), prequeueSize: null };
  writeMeta(sql, OPENING_KEY, made);
  return made;
}

/** Read-only: the opening state, or undefined for a room that has not made one yet. */
export const peekOpening = (sql: SqlStorage): OpeningState | undefined => readMeta<OpeningState>(sql, OPENING_KEY);

/** The draw admission follows, once fixed; null while pending and for FIFO (where rank = seq). */
export function fixedShuffle(sql: SqlStorage, config: QueueConfig): OpeningShuffle | null {
  const opening = peekOpening(sql);
  if (config.openingOrder !== 'shuffle' || !opening || opening.prequeueSize === null || opening.prequeueSize <= 1) return null;
  return { seed: opening.seed, prequeueSize: opening.prequeueSize };
}

/**
 * Fixes the pre-queue at opening: everyone in line now joined before sales opened (the room calls
 * this before it places anyone who joins after). A room that admitted people before this existed
 * (an older room) keeps arrival order. Returns whether it fixed it now. Call inside a transaction.
 */
export function fixDraw(sql: SqlStorage, config: QueueConfig, salesOpenAt: number, now: number): boolean {
  const opening = openingState(sql);
  if (now < salesOpenAt || opening.prequeueSize !== null) return false;
  const alreadyAdmitting = readAdmission(sql).watermark > 0;
  const prequeueSize = config.openingOrder === 'shuffle' && !alreadyAdmitting ? lineLength(sql) : 0;
  writeMeta(sql, OPENING_KEY, { ...opening, prequeueSize } satisfies OpeningState);
  return true;
}

/**
 * The moment the line sold out (no seat available or held), kept for good: a seat that comes back
 * afterwards (refund, cancel, lapsed offer) goes to the waitlist, never to a re-opened line, so
 * nobody admitted later can take it ahead of the fans the waitlist ranks first.
 */
export interface SoldOutLatch {
  at: number;
  /** Places handed out when it sold out: these (and only these) rank on the waitlist by their place. */
  lineLength: number;
}

const SOLD_OUT_KEY = 'soldOut';

/** The sold-out latch, once set. */
export const readSoldOut = (sql: SqlStorage): SoldOutLatch | undefined => readMeta<SoldOutLatch>(sql, SOLD_OUT_KEY);

/**
 * Sets the sold-out latch when the line has just sold out, and returns it once set; never clears it.
 * The room calls it at the end of every change, in the same transaction. Call inside a transaction.
 */
export function latchSoldOut(sql: SqlStorage, now: number): SoldOutLatch | undefined {
  const latched = readSoldOut(sql);
  if (latched || !isSoldOut(sql)) return latched;
  const made: SoldOutLatch = { at: now, lineLength: lineLength(sql) };
  writeMeta(sql, SOLD_OUT_KEY, made);
  return made;
}

/** Places handed out so far (seq runs 1..n without gaps): one b-tree step over the primary key. */
const lineLength = (sql: SqlStorage): number => sql.exec<{ n: number }>(`SELECT COALESCE(MAX(seq), 0) AS n FROM line`).one().n;

export function findByUser(sql: SqlStorage, userId: string): LineRow | undefined {
  return sql.exec<LineRow>(`SELECT * FROM line WHERE user_id = ?`, userId).toArray()[0];
}

export function findBySeq(sql: SqlStorage, seq: number): LineRow | undefined {
  return sql.exec<LineRow>(`SELECT * FROM line WHERE seq = ?`, seq).toArray()[0];
}

/**
 * Puts `userId` in line, or returns their existing place: one place per user, however often
 * and however concurrently they join. A re-join keeps the place (same seq and token id); when the
 * token it was issued is past `reissueAfterSeconds` of age, the place gets a new issue time, so the
 * token signed for it is valid again (a fan who joined long before opening is never locked out).
 */
export function joinLine(
  sql: SqlStorage,
  userId: string,
  now: number,
  reissueAfterSeconds = Number.POSITIVE_INFINITY,
): { row: LineRow; joined: boolean } {
  const nowSeconds = Math.floor(now / 1000);
  const existing = findByUser(sql, userId);
  if (existing) {
    if (existing.issued_at + reissueAfterSeconds > nowSeconds) return { row: existing, joined: false };
    sql.exec(`UPDATE line SET issued_at = ? WHERE seq = ?`, nowSeconds, existing.seq);
    return { row: { ...existing, issued_at: nowSeconds }, joined: false };
  }
  const next = lineLength(sql) + 1;
  const row: LineRow = {
    seq: next,
    user_id: userId,
    jti: crypto.randomUUID(),
    issued_at: nowSeconds,
    status: 'waiting',
    admitted_at: null,
    session_expires_at: null,
  };
  sql.exec(`INSERT INTO line (seq, user_id, jti, issued_at, status) VALUES (?, ?, ?, ?, 'waiting')`, row.seq, row.user_id, row.jti, row.issued_at);
  return { row, joined: true };
}

/** Ends admitted sessions whose time is up; their slots count as free from now on. Returns their seqs. */
export function expireSessions(sql: SqlStorage, now: number): number[] {
  return sql
    .exec<{ seq: number }>(
      `UPDATE line SET status = 'expired', ended_at = ? WHERE status = 'admitted' AND session_expires_at <= ? RETURNING seq`,
      now,
      now,
    )
    .toArray()
    .map((row) => row.seq);
}

/** Sessions admitted and not yet ended (call `expireSessions` first for those whose time is up). */
export const countLive = (sql: SqlStorage): number => counter(sql, 'line:admitted');

export const countWaiting = (sql: SqlStorage): number => counter(sql, 'line:waiting');

/**
 * Admits from the head of the line as far as the current window's budget and `maxActive` allow,
 * opening a new window when the previous one has run its length. The head is the lowest rank not yet
 * admitted: rank = seq, except within a drawn pre-queue (see opening-shuffle.ts), so the watermark is
 * the count admitted and each admission is one primary-key update. Returns how many were admitted.
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
  if (config.maxActive !== null) room = Math.min(room, config.maxActive - countLive(sql));
  let admitted = 0;
  if (room > 0) {
    const sessionExpiresAt = now + config.sessionSeconds * 1000;
    const shuffle = fixedShuffle(sql, config);
    const next = Math.min(room, lineLength(sql) - state.watermark);
    if (next > 0) {
      const seqs = Array.from({ length: next }, (_, i) => (shuffle ? placeOfRank(shuffle, state.watermark + 1 + i) : state.watermark + 1 + i));
      // One statement for the whole batch (the places as a JSON array): a window of 250 costs about
      // what the old ORDER BY seq LIMIT statement did, where one UPDATE per place cost 3–7× more.
      // Count what RETURNING gives back: a cursor's rowsWritten also counts index and trigger writes.
      admitted = sql
        .exec(
          `UPDATE line SET status = 'admitted', admitted_at = ?, session_expires_at = ?
            WHERE seq IN (SELECT value FROM json_each(?)) AND status = 'waiting' RETURNING seq`,
          now,
          sessionExpiresAt,
          JSON.stringify(seqs),
        )
        .toArray().length;
      state.watermark += next;
      state.admittedInWindow += admitted;
    }
  }
  const before = readAdmission(sql);
  if (
    before.watermark !== state.watermark ||
    before.windowStartedAt !== state.windowStartedAt ||
    before.admittedInWindow !== state.admittedInWindow
  ) {
    writeAdmission(sql, state);
  }
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

/** Marks a user's session completed (they paid): the slot frees at once. Returns its seq, if it was live. */
export function completeSession(sql: SqlStorage, userId: string, now: number): number | undefined {
  return sql
    .exec<{ seq: number }>(`UPDATE line SET status = 'completed', ended_at = ? WHERE user_id = ? AND status = 'admitted' RETURNING seq`, now, userId)
    .toArray()[0]?.seq;
}

export function snapshot(sql: SqlStorage, config: QueueConfig, salesOpenAt: number, soldOut: boolean): AdmissionSnapshot {
  const state = readAdmission(sql);
  const shuffle = fixedShuffle(sql, config);
  return {
    watermark: state.watermark,
    soldOut,
    paused: config.paused,
    salesOpenAt,
    windowStartedAt: state.windowStartedAt,
    admittedInWindow: state.admittedInWindow,
    admitPerWindow: config.admitPerWindow,
    windowSeconds: config.windowSeconds,
    openingOrder: config.openingOrder,
    prequeueSize: peekOpening(sql)?.prequeueSize ?? null,
    shuffleSeed: shuffle?.seed ?? null,
    lobbyShards: config.lobbyShards ?? 1,
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

/** Line counts for the admin stats, from the counters. */
export function lineStats(sql: SqlStorage) {
  const counts = counters(sql);
  return {
    waiting: counts['line:waiting'],
    admitted: counts['line:admitted'] + counts['line:completed'] + counts['line:expired'],
    active: counts['line:admitted'],
    completed: counts['line:completed'],
    expired: counts['line:expired'],
  };
}
