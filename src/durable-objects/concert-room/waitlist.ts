// The waitlist for freed seats (issue 13): synchronous functions over the room's SqlStorage. The
// table, its counters, its position index (a Fenwick tree) and the trigger that makes an entry
// follow its offer's hold are in schema.ts, step 4.
import { MAX_SEATS_PER_USER, placeHold, seatsOwnedBy, type HeldSeat, type PlacedHold } from './holds.ts';
import type { SoldOutLatch } from './line.ts';
import { counter, counters } from './meta.ts';

export type WaitlistStatus = 'waiting' | 'offered' | 'accepted' | 'expired' | 'left';

/** Why an entry ended `expired`: its offer ran out unpaid, or its owner had meanwhile got too many seats. */
export type WaitlistEndReason = 'OFFER_EXPIRED' | 'HOLD_LIMIT';

export type WaitlistRow = {
  user_id: string;
  seq_order: number;
  seats: number;
  together: 0 | 1;
  status: WaitlistStatus;
  reason: WaitlistEndReason | null;
  reservation_id: string | null;
  offered_at: number | null;
  offer_expires_at: number | null;
  created_at: number;
};

/** An open offer as its fan sees it. */
export interface WaitlistOfferView {
  reservationId: string;
  seats: { seatNumber: number; section: string; price: number }[];
  amount: number;
  expiresAt: string;
}

/** An entry as the API shows it (the route adds the concert id). */
export interface WaitlistEntryView {
  seats: number;
  together: boolean;
  status: WaitlistStatus;
  /** Waiting entries ahead + 1 while waiting; 0 otherwise. */
  position: number;
  joinedAt: string;
  /** When the entry ended `expired`. */
  reason?: WaitlistEndReason;
  /** When offered. */
  offer?: WaitlistOfferView;
  /** When accepted: the reservation the fan paid for. */
  reservationId?: string;
}

/** An offer the room has decided and marked: a pending hold for `userId`, its Postgres write still to come. */
export interface WaitlistOffer extends PlacedHold {
  userId: string;
}

export type JoinWaitlistOutcome =
  | { ok: true; row: WaitlistRow; created: boolean }
  | { ok: false; reason: 'WAITLIST_NOT_OPEN' }
  | { ok: false; reason: 'HOLD_LIMIT'; limit: number; owned: number };

/** Highest join order a room hands out: the capacity of the position index (2^30 - 1). */
export const MAX_WAITLIST_ORDER = 2 ** 30 - 1;

export function findEntry(sql: SqlStorage, userId: string): WaitlistRow | undefined {
  return sql.exec<WaitlistRow>(`SELECT * FROM waitlist WHERE user_id = ?`, userId).toArray()[0];
}

/**
 * Puts `userId` on the waitlist for `seats` seats (adjacent ones if `together`), or returns their
 * entry while it is live (waiting or offered): one entry per user, however often they join. Only once
 * the line has sold out (`soldOut`, the room's latch): until then every seat that comes back goes to
 * the fans the line admits, and the waitlist would be a way round the line.
 *
 * Order: a fan whose place in line did not buy (`lineRank`, their admission rank, drawn or by
 * arrival) ranks by that place among the first `soldOut.lineLength` orders, so everyone the line
 * left without a seat comes before anyone who joins without a place, in line order. Anyone else, and
 * anyone whose entry ended (accepted, expired, left) and joins again, goes to the back. The owner's
 * seats held or bought plus `seats` must stay within the per-user cap. Call inside transactionSync.
 */
export function joinWaitlist(
  sql: SqlStorage,
  request: { userId: string; seats: number; together: boolean; now: number; soldOut: SoldOutLatch | undefined; lineRank: number | null },
): JoinWaitlistOutcome {
  const existing = findEntry(sql, request.userId);
  if (existing && (existing.status === 'waiting' || existing.status === 'offered')) return { ok: true, row: existing, created: false };
  if (!request.soldOut) return { ok: false, reason: 'WAITLIST_NOT_OPEN' };
  const owned = seatsOwnedBy(sql, request.userId);
  if (owned + request.seats > MAX_SEATS_PER_USER) return { ok: false, reason: 'HOLD_LIMIT', limit: MAX_SEATS_PER_USER, owned };
  const lineBand = request.soldOut.lineLength;
  const { lineRank } = request;
  // An entry made before the latch existed may sit on a line rank's order: that fan then joins at the back.
  const byPlace =
    existing === undefined && lineRank !== null && lineRank >= 1 && lineRank <= lineBand && sql.exec(`SELECT 1 FROM waitlist WHERE seq_order = ?`, lineRank).toArray().length === 0
      ? lineRank
      : null;
  // MAX over the unique index is one b-tree step.
  const order = byPlace ?? Math.max(sql.exec<{ top: number | null }>(`SELECT MAX(seq_order) AS top FROM waitlist`).one().top ?? 0, lineBand) + 1;
  if (order > MAX_WAITLIST_ORDER) throw new Error('waitlist order exhausted');
  const row = sql
    .exec<WaitlistRow>(
      `INSERT INTO waitlist (user_id, seq_order, seats, together, status, created_at) VALUES (?, ?, ?, ?, 'waiting', ?)
       ON CONFLICT (user_id) DO UPDATE SET seq_order = excluded.seq_order, seats = excluded.seats, together = excluded.together,
         status = 'waiting', reason = NULL, reservation_id = NULL, offered_at = NULL, offer_expires_at = NULL, created_at = excluded.created_at
       RETURNING *`,
      request.userId,
      order,
      request.seats,
      request.together ? 1 : 0,
      request.now,
    )
    .one();
  return { ok: true, row, created: true };
}

/** Waiting entries ahead of `row` + 1: at most 30 primary-key reads of the Fenwick tree, whatever the waitlist's length. */
function positionOf(sql: SqlStorage, row: WaitlistRow): number {
  const before = row.seq_order - 1;
  return sql
    .exec<{ position: number }>(
      `SELECT COALESCE(SUM(r.n), 0) + 1 AS position
         FROM waitlist_bits b JOIN waitlist_rank r ON r.node = ((? >> b.k) << b.k)
        WHERE (? >> b.k) & 1 = 1`,
      before,
      before,
    )
    .one().position;
}

/** The open offer of an offered entry: its seats (by the seat map's reservation index) and its hold. */
function offerOf(sql: SqlStorage, reservationId: string): WaitlistOfferView | undefined {
  const hold = sql.exec<{ amount: number; expires_at: number }>(`SELECT amount, expires_at FROM holds WHERE reservation_id = ?`, reservationId).toArray()[0];
  if (!hold) return undefined;
  const seats = sql
    .exec<{ seatNumber: number; section: string; price: number }>(
      `SELECT seat_number AS seatNumber, section, price FROM seats WHERE reservation_id = ? ORDER BY seat_number`,
      reservationId,
    )
    .toArray();
  return { reservationId, seats, amount: hold.amount, expiresAt: new Date(hold.expires_at).toISOString() };
}

/** An entry as the API shows it: a bounded number of indexed reads. */
export function entryView(sql: SqlStorage, row: WaitlistRow): WaitlistEntryView {
  const view: WaitlistEntryView = {
    seats: row.seats,
    together: row.together === 1,
    status: row.status,
    position: row.status === 'waiting' ? positionOf(sql, row) : 0,
    joinedAt: new Date(row.created_at).toISOString(),
  };
  if (row.status === 'expired' && row.reason) view.reason = row.reason;
  if (row.status === 'offered' && row.reservation_id) {
    const offer = offerOf(sql, row.reservation_id);
    if (offer) view.offer = offer;
  }
  if (row.status === 'accepted' && row.reservation_id) view.reservationId = row.reservation_id;
  return view;
}

/** A waiting entry leaves the waitlist. True if it was waiting. */
export function leaveWaiting(sql: SqlStorage, userId: string): boolean {
  return sql.exec(`UPDATE waitlist SET status = 'left' WHERE user_id = ? AND status = 'waiting' RETURNING 1`, userId).toArray().length > 0;
}

/**
 * The owner cancelled their offer: the entry ends `left`. Call before the hold is released, in the
 * same transaction, or the holds trigger puts the entry back to waiting (a cancellation nobody asked
 * for, such as a failed write, keeps the fan's place).
 */
export function markOfferLeft(sql: SqlStorage, reservationId: string): void {
  sql.exec(`UPDATE waitlist SET status = 'left' WHERE reservation_id = ? AND status = 'offered'`, reservationId);
}

/** How many times a seat has become available; a change that moved it freed seats. */
export function seatsFreedTick(sql: SqlStorage): number {
  return sql.exec<{ n: number }>(`SELECT n FROM room_ticks WHERE name = 'seats_freed'`).one().n;
}

/** Counts for the admin stats, from the trigger-kept counters. */
export function waitlistStats(sql: SqlStorage): Record<WaitlistStatus, number> {
  const counts = counters(sql);
  return {
    waiting: counts['waitlist:waiting'],
    offered: counts['waitlist:offered'],
    accepted: counts['waitlist:accepted'],
    expired: counts['waitlist:expired'],
    left: counts['waitlist:left'],
  };
}

type Head = {
  user_id: string;
  seq_order: number;
  seats: number;
  together: 0 | 1;
};

/** The 8 kinds of request: 1–4 seats, together or not. Each has its own run of waitlist_waiting. */
const KINDS = [1, 2, 3, 4].flatMap((seats) => [0, 1].map((together) => ({ seats, together })));

type SeatRow = { seat_number: number; seat_id: number; section: string; price: number };
const toHeld = (row: SeatRow): HeldSeat => ({ seatNumber: row.seat_number, seatId: row.seat_id, section: row.section, price: row.price });

/** The `n` lowest-numbered available seats, or undefined if fewer are available. */
function lowestSeats(sql: SqlStorage, n: number): HeldSeat[] | undefined {
  const rows = sql
    .exec<SeatRow>(`SELECT seat_number, seat_id, section, price FROM seats WHERE status = 'available' ORDER BY seat_number LIMIT ?`, n)
    .toArray();
  return rows.length === n ? rows.map(toHeld) : undefined;
}

/** seat_runs.size is a run's length capped at this (schema.ts), the most seats one entry asks for. */
const RUN_SIZE_CAP = 4;

/** Seats first..first + n - 1, by primary key. */
function seatsFrom(sql: SqlStorage, first: number, n: number): HeldSeat[] {
  return sql
    .exec<SeatRow>(`SELECT seat_number, seat_id, section, price FROM seats WHERE seat_number BETWEEN ? AND ? ORDER BY seat_number`, first, first + n - 1)
    .toArray()
    .map(toHeld);
}

/**
 * `n` available seats with consecutive numbers in one section, from the lowest-numbered such run,
 * or undefined: the least first seat of the runs (seat_runs, kept by triggers) of size n or more,
 * one index step per size.
 */
function adjacentSeats(sql: SqlStorage, n: number): HeldSeat[] | undefined {
  let first: number | undefined;
  for (let size = n; size <= RUN_SIZE_CAP; size++) {
    const lowest = sql.exec<{ first: number | null }>(`SELECT MIN(first) AS first FROM seat_runs WHERE size = ?`, size).one().first;
    if (lowest !== null && (first === undefined || lowest < first)) first = lowest;
  }
  return first === undefined ? undefined : seatsFrom(sql, first, n);
}

/**
 * The search `adjacentSeats` replaced (issue 18), with the same answers: runs found as "gaps and
 * islands" over every available seat (within a section, seat_number minus its rank among the
 * available seats is constant along a run), so each call reads the whole free map. Kept as the
 * reference that test/durable-objects/offers.test.ts and bench/offers.ts compare with.
 */
export function adjacentSeatsByScan(sql: SqlStorage, n: number): HeldSeat[] | undefined {
  const run = sql
    .exec<{ first: number }>(
      `SELECT MIN(seat_number) AS first FROM (
         SELECT seat_number, section, seat_number - ROW_NUMBER() OVER (PARTITION BY section ORDER BY seat_number) AS island
           FROM seats WHERE status = 'available')
        GROUP BY section, island HAVING COUNT(*) >= ? ORDER BY first LIMIT 1`,
      n,
    )
    .toArray()[0];
  return run ? seatsFrom(sql, run.first, n) : undefined;
}

/** How `decideOffers` finds n adjacent available seats. */
export type AdjacentSearch = (sql: SqlStorage, n: number) => HeldSeat[] | undefined;

/**
 * Offers the available seats to waiting entries, in join order, first-fit: an entry wanting n seats
 * gets the n lowest-numbered available seats, or with `together` the lowest run of n adjacent ones
 * in one section; an entry that cannot be served keeps its place and the next one is tried. Each
 * offer is a pending hold for the entry's owner, marked here, so no other hold can take its seats;
 * it lasts `offerSeconds`. An entry whose owner now holds or owns too many seats for its size ends
 * `expired` (HOLD_LIMIT). Call inside transactionSync; the caller writes the offers to Postgres.
 *
 * Cost: one head read per kind of request (8), then per entry served or ended one seat search and
 * one head read, each a few index steps (the lowest seats from seats_status, the lowest run from
 * seat_runs); a kind that failed once is dropped (the available seats only shrink during the
 * walk), so an entry nobody can serve is never stepped over. Stops when no seat is available. So
 * a change that frees f seats costs O(f × log entries), whatever the venue's size.
 */
export function decideOffers(
  sql: SqlStorage,
  options: {
    now: number;
    offerSeconds: number;
    /** The run search; tests and the bench pass `adjacentSeatsByScan` to compare. @default adjacentSeats */
    adjacent?: AdjacentSearch;
  },
): WaitlistOffer[] {
  const adjacent = options.adjacent ?? adjacentSeats;
  if (counter(sql, 'waitlist:waiting') === 0 || counter(sql, 'seat:available') === 0) return [];
  // The waitlist_waiting index serves each kind's head only with status as a literal (a partial index).
  const headOf = (seats: number, together: number) =>
    sql
      .exec<Head>(
        `SELECT user_id, seq_order, seats, together FROM waitlist WHERE status = 'waiting' AND seats = ? AND together = ? ORDER BY seq_order LIMIT 1`,
        seats,
        together,
      )
      .toArray()[0];
  const heads = new Map<string, Head>();
  const key = (seats: number, together: number) => `${seats}:${together}`;
  const refill = (seats: number, together: number) => {
    const head = headOf(seats, together);
    if (head) heads.set(key(seats, together), head);
    else heads.delete(key(seats, together));
  };
  for (const kind of KINDS) refill(kind.seats, kind.together);

  const offers: WaitlistOffer[] = [];
  while (heads.size > 0 && counter(sql, 'seat:available') > 0) {
    let head: Head | undefined;
    for (const candidate of heads.values()) if (!head || candidate.seq_order < head.seq_order) head = candidate;
    const { user_id: userId, seats: n, together } = head!;

    if (seatsOwnedBy(sql, userId) + n > MAX_SEATS_PER_USER) {
      sql.exec(`UPDATE waitlist SET status = 'expired', reason = 'HOLD_LIMIT' WHERE user_id = ?`, userId);
      refill(n, together);
      continue;
    }
    const seats = together ? adjacent(sql, n) : lowestSeats(sql, n);
    if (!seats) {
      // Fewer than n available: no request of n or more can be served. No run of n: no together
      // request of n or more can.
      for (const kind of KINDS) if (kind.seats >= n && (together === 0 || kind.together === 1)) heads.delete(key(kind.seats, kind.together));
      continue;
    }
    // seq 0: made through no place in line (the fan may have none), and tied to no session.
    const placed = placeHold(sql, { userId, seq: 0, seats, expiresAt: options.now + options.offerSeconds * 1000, now: options.now });
    sql.exec(
      `UPDATE waitlist SET status = 'offered', reason = NULL, reservation_id = ?, offered_at = ?, offer_expires_at = ? WHERE user_id = ?`,
      placed.reservationId,
      options.now,
      placed.expiresAt,
      userId,
    );
    offers.push({ ...placed, userId });
    refill(n, together);
  }
  return offers;
}
