import { DurableObject } from 'cloudflare:workers';
import type { Pool } from '@neondatabase/serverless';
import { createPool } from '../../db/client.ts';
import { createSql } from '../../db/http.ts';
import { loadRoomSource, type ConcertSummary } from '../../db/room-source.ts';
import { isPostgresUnavailable } from '../../db/errors.ts';
import { withClient } from '../../db/transaction.ts';
import {
  endHolds,
  insertHold,
  payReservation,
  readPaymentOf,
  settledStatusOf,
  refundReservation,
  SeatConflictError,
  settleHoldWrite,
  type NewHold,
  type PaymentOutcome,
  type RefundOutcome,
} from '../../db/reservations-repo.ts';
import { isRecordConflict, type IdempotencyClaim } from '../../lib/idempotency.ts';
import { publishSnapshot } from '../../lib/edge-cache.ts';
import { describeError, logJson } from '../../lib/logging.ts';
import {
  admit,
  completeSession,
  countWaiting,
  expireSessions,
  findBySeq,
  fixDraw,
  findByUser,
  fixedShuffle,
  joinLine,
  latchSoldOut,
  lineStats,
  nextAdmissionAt,
  nextSessionExpiry,
  openingState,
  peekOpening,
  readSoldOut,
  snapshot,
  statusOf,
} from './line.ts';
import { rankOfPlace, shuffleCommitment } from '../../lib/opening-shuffle.ts';
import { forgetCachedMeta, readMeta, writeMeta } from './meta.ts';
import { DEFAULT_QUEUE_CONFIG, type AdmissionSnapshot, type OpeningOrder, type QueueConfig, type QueueStatus } from './model.ts';
import { QUEUE_TOKEN_TTL_SECONDS } from '../../lib/queue-token.ts';
import {
  activateHold,
  confirmHold,
  refundHold,
  decideHold,
  dueHolds,
  holdStatus,
  nextHoldExpiry,
  hasPendingHolds,
  pendingHolds,
  releaseHold,
  type HeldSeat,
  type PlacedHold,
} from './holds.ts';
import { withDeadline } from './deadline.ts';
import { reconcileRoom, takeSnapshot } from './reconcile.ts';
import { hasRoomSchema, migrateRoomSchema } from './schema.ts';
import { QueueSockets } from './sockets.ts';
import { isSoldOut, listSeats, reconcileSeats, seatCounts, type RoomSeat, type RoomSeatStatus, type SeatDifference } from './seats.ts';
import {
  decideOffers,
  entryView,
  findEntry,
  joinWaitlist,
  leaveWaiting,
  markOfferLeft,
  seatsFreedTick,
  waitlistStats,
  type WaitlistEntryView,
  type WaitlistOffer,
  type WaitlistStatus,
} from './waitlist.ts';

/** Back-off before the alarm retries hold expiry after Postgres failed. @default 2000 */
export const HOLD_EXPIRY_RETRY_MS = 2_000;

/** Postgres connections one room keeps. @default 8 */
export const ROOM_POOL_SIZE = 8;

/**
 * How long socket pushes are gathered before they go out: a burst of changes sends each socket at
 * most one message (the latest) per interval. @default 100
 */
export const PUSH_COALESCE_MS = 100;

/**
 * Longest a snapshot whose only change is admissions within the current window waits before it is
 * published; every other change is published at once. @default 500
 */
export const SNAPSHOT_PUBLISH_INTERVAL_MS = 500;

/**
 * How long a room that found no concert in Postgres answers "not found" without asking again, so
 * a flood of made-up ids costs one HTTP query per id, not one per request. @default 60000
 */
export const MISSING_CONCERT_MEMORY_MS = 60_000;

/** Pauses before asking Postgres again about a write whose outcome was lost. */
export const RESOLVE_PAUSES_MS = [500, 1_000, 2_000, 4_000, 8_000] as const;

/** A re-join reissues the place's token once it is older than this (half the token's life). */
export const REISSUE_AFTER_SECONDS = QUEUE_TOKEN_TTL_SECONDS / 2;

/** Headers the Worker sets when it hands a verified WebSocket upgrade to the room. */
export const WS_SEQ_HEADER = 'X-Frontrow-Queue-Seq';
export const WS_USER_HEADER = 'X-Frontrow-Queue-User';

export type NotFound = { ok: false; reason: 'CONCERT_NOT_FOUND' };

/** The seat map whole, by status, or the seed's shape (available seats without their status). */
export type SeatMapView = 'all' | RoomSeatStatus | 'available-bare';

/** One fan's place as a join answers it. */
export interface JoinPlace {
  seq: number;
  jti: string;
  issuedAt: number;
  joined: boolean;
  status: QueueStatus;
}

export type JoinResult = ({ ok: true; snapshot: AdmissionSnapshot } & JoinPlace) | NotFound;

export type JoinBatchResult = { ok: true; places: JoinPlace[]; snapshot: AdmissionSnapshot } | NotFound;

export interface RoomRequestCounts {
  /** Single joins (straight from a Worker). */
  join: number;
  /** Batches from lobbies, and the joins they carried. */
  joinBatch: number;
  joinedInBatches: number;
  /** Reconciliations asked for (admin, start-up, a write that lost its reply), and those that ran. */
  reconcile: number;
  reconcileRuns: number;
}

export type StatusResult =
  | { ok: true; status: QueueStatus; snapshot: AdmissionSnapshot }
  | NotFound
  | { ok: false; reason: 'INVALID_QUEUE_TOKEN' };

/** The pre-queue draw as the public audit endpoint shows it. */
export interface OpeningView {
  ok: true;
  order: OpeningOrder;
  salesOpenAt: number;
  /** Hex SHA-256 of the seed: published before opening, so the seed cannot be picked afterwards. */
  commitment: string;
  /** Revealed once sales have opened; null before. */
  seed: string | null;
  /** Places 1..prequeueSize were drawn; null before opening. */
  prequeueSize: number | null;
}

export interface RoomStats {
  line: { waiting: number; admitted: number; active: number; completed: number; expired: number };
  seats: { available: number; held: number; sold: number };
  waitlist: Record<WaitlistStatus, number>;
  config: QueueConfig;
  soldOut: boolean;
}

export type HoldResult =
  | { ok: true; reservationId: string; seats: HeldSeat[]; amount: number; expiresAt: number; body: string }
  | NotFound
  | { ok: false; reason: 'REQUEST_IN_PROGRESS' }
  | { ok: false; reason: 'NOT_ADMITTED'; detail: string }
  | { ok: false; reason: 'SEAT_NOT_FOUND' | 'SEAT_UNAVAILABLE'; seats: number[] }
  | { ok: false; reason: 'HOLD_LIMIT'; limit: number; owned: number }
  | { ok: false; reason: 'DEPENDENCY_UNAVAILABLE' };

export type PayResult =
  | Exclude<PaymentOutcome, { ok: false; reason: 'RESERVATION_NOT_FOUND' }>
  | { ok: false; reason: 'RESERVATION_NOT_FOUND' | 'REQUEST_IN_PROGRESS' | 'DEPENDENCY_UNAVAILABLE' }
  | NotFound;

export type RefundResult =
  | RefundOutcome
  | NotFound
  | { ok: false; reason: 'REQUEST_IN_PROGRESS' | 'DEPENDENCY_UNAVAILABLE' };

export type CancelResult =
  | { ok: true }
  | NotFound
  | { ok: false; reason: 'RESERVATION_NOT_FOUND' | 'RESERVATION_EXPIRED' | 'ALREADY_PAID' | 'REQUEST_IN_PROGRESS' };

export type WaitlistJoinResult =
  | { ok: true; created: boolean; entry: WaitlistEntryView }
  | NotFound
  | { ok: false; reason: 'WAITLIST_NOT_OPEN' }
  | { ok: false; reason: 'HOLD_LIMIT'; limit: number; owned: number };

export type WaitlistEntryResult = { ok: true; entry: WaitlistEntryView } | NotFound | { ok: false; reason: 'WAITLIST_ENTRY_NOT_FOUND' };

export type WaitlistLeaveResult =
  | { ok: true }
  | NotFound
  | { ok: false; reason: 'WAITLIST_ENTRY_NOT_FOUND' | 'ALREADY_PAID' | 'REQUEST_IN_PROGRESS' };

/** What the room pushes on the fan's queue sockets when it makes them an offer. */
export interface WaitlistOfferMessage {
  type: 'waitlist_offer';
  reservationId: string;
  seats: { seatNumber: number; section: string; price: number }[];
  amount: number;
  expiresAt: string;
}

export interface ReconcileReport {
  ok: true;
  changed: number;
  differences: SeatDifference[];
}

/** What a change to the room's state touched, for the announcements that follow it. */
interface Touched {
  /** Places whose own status changed (admitted, completed, expired). */
  seqs?: Iterable<number>;
  /** The seat map changed. */
  seats?: boolean;
  /**
   * Offer the available seats to the waitlist even if this change freed none (a retry after an
   * offer's write failed). A change that freed seats offers them anyway.
   */
  offers?: boolean;
}

/**
 * One per concert (`env.CONCERT_ROOM.getByName(concertId)`). Serializes the waiting line, admission
 * and the live seat map in SQLite; decisions happen in synchronous transactions, Postgres is
 * consulted only around them. One alarm, re-armed to the earliest due event, drives admission
 * windows, session ends and hold expiry.
 */
export class ConcertRoom extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private pool: Pool | undefined;
  private loading: Promise<boolean> | undefined;
  /** Until when this room answers "no such concert" from memory. */
  private missingUntil = 0;
  /** Whether this object's storage has the room's tables (see the constructor). */
  private hasSchema = false;
  /** Derived views, computed once per change and dropped by `change()`. */
  private cachedSnapshot: AdmissionSnapshot | undefined;
  private readonly cachedSeatMaps = new Map<SeatMapView, { seats: string; count: number }>();
  /** The snapshot last published to the edge (as JSON), so an unchanged one is not published again. */
  private publishedSnapshot: string | undefined;
  private publishTimer: ReturnType<typeof setTimeout> | undefined;
  /** Pushes gathered for the next flush (see PUSH_COALESCE_MS). */
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private pushEveryone = false;
  private readonly pushSeqs = new Set<number>();
  private readonly sockets: QueueSockets;
  /**
   * Holds whose Postgres write this instance is waiting for. Any other 'pending' hold was left by an
   * earlier instance that was reset mid-write: nobody will finish it, so the room settles it itself.
   */
  private readonly writing = new Set<string>();
  /**
   * Whether a pending hold without a write in this instance may exist: found at start-up, or left by
   * a write that ended without settling its hold. Holds this instance decides are always in
   * `writing` while pending, so request paths never look for orphans unless this is set.
   */
  private mayHaveOrphans = false;
  private readonly requests: RoomRequestCounts = { join: 0, joinBatch: 0, joinedInBatches: 0, reconcile: 0, reconcileRuns: 0 };
  /** The reconciliation running now, and the one follow-up every trigger meanwhile shares. */
  private reconcileRun: Promise<ReconcileReport | NotFound> | undefined;
  private reconcileFollowUp: Promise<ReconcileReport | NotFound> | undefined;
  /** Waitlist offers decided by a change and not yet written to Postgres; `settle()` writes them. */
  private readonly offerQueue: WaitlistOffer[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sockets = new QueueSockets(ctx, this.sql, () => this.snapshot(), () => {
      this.pushEveryone = true;
      this.flushPushes();
    });
    void ctx.blockConcurrencyWhile(() => {
      // A room for an id that names no concert must write nothing (issue 18): its schema is created
      // only once Postgres has the concert (loadFromPostgres); here it is only brought up to date.
      this.hasSchema = hasRoomSchema(this.sql);
      if (!this.hasSchema) return Promise.resolve();
      migrateRoomSchema(this.sql);
      this.mayHaveOrphans = hasPendingHolds(this.sql);
      // A room waking up with state checks it against Postgres in the background: a reply lost
      // while it was down (or a DO call that never arrived, like a payment's) is repaired here.
      if (readMeta<number>(this.sql, 'salesOpenAt') !== undefined) {
        ctx.waitUntil(this.reconcile().catch((error: unknown) => logJson('warn', 'start-up reconcile failed', describeError(error))));
      }
      return Promise.resolve();
    });
  }

  // ---- RPC surface -------------------------------------------------------------------------

  /** Loads the concert from Postgres if this room has not yet. False when no such concert exists. */
  async initialize(): Promise<boolean> {
    return this.ready();
  }

  /** Joins the line (or returns the existing place) and admits at once when the window has room. */
  async join(userId: string): Promise<JoinResult> {
    this.requests.join++;
    const result = await this.placeAll([userId]);
    return result.ok ? { ok: true, ...result.places[0]!, snapshot: result.snapshot } : result;
  }

  /**
   * Joins a batch a lobby gathered (issue 14), in its order, in one transaction: one request and one
   * SQLite commit for up to a lobby's batch of fans. Same answers as `join` for each.
   */
  async joinBatch(userIds: string[]): Promise<JoinBatchResult> {
    this.requests.joinBatch++;
    this.requests.joinedInBatches += userIds.length;
    return this.placeAll(userIds);
  }

  /** Requests this instance has served, by kind, since it started (for bench:rush's per-object figures). */
  requestCounts(): RoomRequestCounts {
    return { ...this.requests };
  }

  private async placeAll(userIds: readonly string[]): Promise<JoinBatchResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const now = Date.now();
    const rows = this.change(() => {
      // Whoever joins at or after opening goes behind the pre-queue, which is fixed first.
      fixDraw(this.sql, this.config(), this.salesOpenAt(), now);
      const placed = userIds.map((userId) => joinLine(this.sql, userId, now, REISSUE_AFTER_SECONDS));
      if (!placed.some((place) => place.joined)) return { placed, touched: {} };
      const moved = this.advance(now);
      // Only a join that let someone in changes a joiner's row after its insert.
      const fresh = moved.admitted > 0 ? placed.map(({ row, joined }) => ({ row: findBySeq(this.sql, row.seq)!, joined })) : placed;
      return { placed: fresh, touched: { seqs: moved.expired } };
    }).placed;
    await this.settle();
    const snap = this.snapshot();
    return {
      ok: true,
      places: rows.map(({ row, joined }) => ({
        seq: row.seq,
        jti: row.jti,
        issuedAt: row.issued_at,
        joined,
        status: statusOf(row, snap, now),
      })),
      snapshot: snap,
    };
  }

  /** Status of place `seq`, which must belong to `userId` under token id `jti`. */
  async status(seq: number, userId: string, jti: string): Promise<StatusResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const row = findBySeq(this.sql, seq);
    if (!row || row.user_id !== userId || row.jti !== jti) return { ok: false, reason: 'INVALID_QUEUE_TOKEN' };
    await this.openIfDue(Date.now());
    const snap = this.snapshot();
    return { ok: true, status: statusOf(row, snap, Date.now()), snapshot: snap };
  }

  /** Applies an admin's partial settings; wakes the line if that lets more people in. */
  async configure(
    patch: Partial<QueueConfig>,
  ): Promise<{ ok: true; config: QueueConfig } | NotFound | { ok: false; reason: 'OPENING_ORDER_FIXED'; order: OpeningOrder }> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    await this.openIfDue(Date.now());
    const current = this.config();
    if (patch.openingOrder !== undefined && patch.openingOrder !== current.openingOrder && peekOpening(this.sql)?.prequeueSize != null) {
      return { ok: false, reason: 'OPENING_ORDER_FIXED', order: current.openingOrder };
    }
    const config = { ...current, ...patch };
    this.change(() => {
      writeMeta(this.sql, 'config', config);
      return { touched: { seqs: this.advance(Date.now()).expired } };
    });
    await this.settle();
    return { ok: true, config };
  }

  /** The concert as the API shows it, with live seat counts: no Postgres, no scan. */
  async details(): Promise<{ ok: true; concert: ConcertSummary; counts: { available: number; held: number; sold: number } } | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    let concert = readMeta<ConcertSummary>(this.sql, 'concert');
    if (!concert) {
      // A room loaded before it kept the concert's details: fetch them once.
      const source = await loadRoomSource(createSql(this.env), this.ctx.id.name!);
      if (!source) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
      concert = source.concert;
      writeMeta(this.sql, 'concert', concert);
    }
    return { ok: true, concert, counts: seatCounts(this.sql) };
  }

  /** The pre-queue draw for anyone to audit: the commitment always, the seed once sales have opened. */
  async opening(): Promise<OpeningView | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    await this.openIfDue(Date.now());
    const opening = this.change(() => ({ opening: openingState(this.sql), touched: {} })).opening;
    const drawn = opening.prequeueSize !== null;
    return {
      ok: true,
      order: this.config().openingOrder,
      salesOpenAt: this.salesOpenAt(),
      commitment: await shuffleCommitment(opening.seed),
      seed: drawn ? opening.seed : null,
      prequeueSize: opening.prequeueSize,
    };
  }

  async stats(): Promise<RoomStats | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    return { line: lineStats(this.sql), seats: seatCounts(this.sql), waitlist: waitlistStats(this.sql), config: this.config(), soldOut: this.soldOut() };
  }

  async seats(status?: RoomSeatStatus): Promise<RoomSeat[] | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    return listSeats(this.sql, status);
  }

  /**
   * A view of the seat map as the JSON array the API serves, built once per change of the map and
   * kept until the next one, so an edge miss costs one room read and no per-seat work.
   */
  async seatMapJson(view: SeatMapView): Promise<{ ok: true; seats: string; count: number } | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    let cached = this.cachedSeatMaps.get(view);
    if (cached === undefined) {
      const seats = listSeats(this.sql, view === 'all' ? undefined : view === 'available-bare' ? 'available' : view);
      const shown = view === 'available-bare' ? seats.map(({ seatNumber, section, price }) => ({ seatNumber, section, price })) : seats;
      cached = { seats: JSON.stringify(shown), count: seats.length };
      this.cachedSeatMaps.set(view, cached);
    }
    return { ok: true, ...cached };
  }

  /**
   * Holds 1–4 seats all-or-nothing for an admitted user. The room decides and marks the seats in one
   * synchronous transaction, then writes the reservation to Postgres; if Postgres refuses or is
   * unreachable the seats are released again and nothing stays behind.
   */
  async hold(request: { userId: string; seq: number; jti: string; seatNumbers: number[]; claim?: IdempotencyClaim }): Promise<HoldResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const now = Date.now();
    const concertId = this.ctx.id.name!;
    const decision = this.change(() => {
      const outcome = decideHold(this.sql, findBySeq(this.sql, request.seq), {
        ...request,
        holdSeconds: this.config().holdSeconds,
        now,
        soldOut: this.soldOut(),
      });
      return { ...outcome, touched: { seats: outcome.ok } };
    });
    if (!decision.ok) {
      const { touched: _touched, ...refusal } = decision;
      return refusal;
    }
    const { touched: _touched, ...held } = decision;
    return this.writeDecided(held, request, concertId);
  }

  /**
   * Writes a hold the room has decided and marked pending (a fan's own, or a waitlist offer made
   * for them) to Postgres and settles it here: live, or released. See `writeHold`.
   */
  private async writeDecided(
    held: PlacedHold,
    request: { userId: string; claim?: IdempotencyClaim },
    concertId: string,
    options: { offer?: boolean } = {},
  ): Promise<HoldResult> {
    this.writing.add(held.reservationId);
    try {
      return await this.writeHold(held, request, concertId, options);
    } finally {
      this.writing.delete(held.reservationId);
      // Every way out of writeHold settles the hold; should one not, the room settles it itself.
      if (holdStatus(this.sql, held.reservationId)?.status === 'pending') this.mayHaveOrphans = true;
    }
  }

  /**
   * The Postgres half of a hold the room has decided and marked pending; see `hold`. An offer whose
   * write fails also pauses offers for HOLD_EXPIRY_RETRY_MS (the alarm resumes them): its seats go
   * back and its entry to waiting, and offering them again at once would fail the same way, in a loop.
   */
  private async writeHold(
    held: PlacedHold,
    request: { userId: string; claim?: IdempotencyClaim },
    concertId: string,
    options: { offer?: boolean } = {},
  ): Promise<HoldResult> {
    // The API's answer, built here so that the idempotency record and the reply are the same bytes.
    const body = JSON.stringify({
      reservationId: held.reservationId,
      concertId,
      seats: held.seats.map(({ seatNumber, section, price }) => ({ seatNumber, section, price })),
      amount: held.amount,
      status: 'held',
      expiresAt: new Date(held.expiresAt).toISOString(),
    });
    const newHold = {
      reservationId: held.reservationId,
      concertId,
      userId: request.userId,
      amount: held.amount,
      expiresAt: held.expiresAt,
      seatIds: held.seats.map((seat) => seat.seatId),
    };
    // Connected first, so that a failure to connect (nothing sent, nothing written) is told apart
    // from a failure once the statement was on its way (it may have committed, or may yet).
    let sent = false;
    try {
      await withClient(this.db(), (client) => {
        sent = true;
        return withDeadline(insertHold(client, newHold, request.claim && { claim: request.claim, status: 201, body }));
      });
    } catch (error) {
      if (sent && isPostgresUnavailable(error)) {
        // Settle it in Postgres before deciding: written, or now never to be written.
        const written = await settleHoldWrite(createSql(this.env), newHold).catch(() => undefined);
        if (written === true) return this.activated({ ok: true, ...held, body });
        if (written === undefined) {
          // Still unknown: keep the seats under a live hold (its owner can pay or cancel it if it was
          // written) and ask again in the background; failing that, its expiry asks Postgres.
          logJson('error', 'hold write unresolved; asking again later', { concertId, reservationId: held.reservationId, ...describeError(error) });
          await this.activated({ ok: true, ...held, body });
          this.ctx.waitUntil(this.resolveHoldLater(newHold));
          return { ok: false, reason: 'DEPENDENCY_UNAVAILABLE' };
        }
      }
      this.change(() => {
        if (options.offer) writeMeta(this.sql, 'waitlistRetryAt', Date.now() + HOLD_EXPIRY_RETRY_MS);
        releaseHold(this.sql, held.reservationId, 'cancelled');
        return { touched: { seats: true } };
      });
      await this.settle();
      if (error instanceof SeatConflictError) {
        // Postgres knows better than this room: catch up in the background.
        this.ctx.waitUntil(this.reconcile().catch((e: unknown) => logJson('warn', 'reconcile failed', describeError(e))));
        return { ok: false, reason: 'SEAT_UNAVAILABLE', seats: held.seats.map((seat) => seat.seatNumber) };
      }
      if (isRecordConflict(error)) return { ok: false, reason: 'REQUEST_IN_PROGRESS' };
      logJson('error', 'hold write failed', { concertId, ...describeError(error) });
      if (isPostgresUnavailable(error)) return { ok: false, reason: 'DEPENDENCY_UNAVAILABLE' };
      throw error;
    }
    return this.activated({ ok: true, ...held, body });
  }

  /**
   * Pays a hold of `userId`'s (DESIGN.md §5 Pay), the caller holding the payment and balance locks:
   * one Postgres statement on the room's warm pool debits, confirms and records the response, then
   * the seats are sold and the buyer's session ends here in the same call, freeing their slot.
   */
  async pay(request: { userId: string; reservationId: string; fence: number | null; claim?: IdempotencyClaim }): Promise<PayResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const hold = holdStatus(this.sql, request.reservationId);
    if (!hold || hold.userId !== request.userId) return { ok: false, reason: 'RESERVATION_NOT_FOUND' };
    if (hold.status === 'pending') return { ok: false, reason: 'REQUEST_IN_PROGRESS' };
    if (hold.status === 'confirmed') return { ok: false, reason: 'ALREADY_PAID' };
    if (hold.status !== 'held') return { ok: false, reason: 'RESERVATION_EXPIRED' };
    let outcome: PaymentOutcome;
    let sent = false;
    try {
      outcome = await withClient(this.db(), (client) => {
        sent = true;
        return withDeadline(payReservation(client, request));
      });
    } catch (error) {
      if (!isPostgresUnavailable(error)) throw error;
      if (!sent) return { ok: false, reason: 'DEPENDENCY_UNAVAILABLE' };
      // The commit may have landed with its reply lost: read back what Postgres has.
      const paid = await readPaymentOf(createSql(this.env), request.reservationId, request).then(
        (payment) => payment ?? null,
        () => undefined,
      );
      if (!paid) {
        logJson('error', 'payment failed', { concertId: this.ctx.id.name, reservationId: request.reservationId, ...describeError(error) });
        // Unknown (not merely unpaid): find out in the background, so the seats follow Postgres.
        if (paid === undefined) this.ctx.waitUntil(this.resolvePaymentLater(request));
        return { ok: false, reason: 'DEPENDENCY_UNAVAILABLE' };
      }
      outcome = paid;
    }
    if (outcome.ok || outcome.reason === 'ALREADY_PAID') await this.sold(request.reservationId);
    return outcome;
  }

  /** Postgres has the hold paid: its seats are sold, and its buyer's session ends, freeing the slot. */
  private async sold(reservationId: string): Promise<void> {
    const now = Date.now();
    this.change(() => {
      const ended = this.soldHere(reservationId, now);
      const moved = this.advance(now);
      return { touched: { seats: true, seqs: ended === undefined ? moved.expired : [ended, ...moved.expired] } };
    });
    await this.settle();
  }

  /**
   * Inside `change()`: the hold is paid, however the room learnt it (the payment's own reply, a
   * read-back, expiry or cancellation finding it confirmed): its seats are sold and its owner's
   * session ends (DESIGN.md §3). Returns the place whose session ended, if one did.
   */
  private soldHere(reservationId: string, now: number): number | undefined {
    if (!confirmHold(this.sql, reservationId)) return undefined;
    const owner = holdStatus(this.sql, reservationId)?.userId;
    return owner === undefined ? undefined : completeSession(this.sql, owner, now);
  }

  /** Asks `check` again after growing pauses until it answers; undefined if it never does. */
  private async askAgainLater<T>(check: () => Promise<T>): Promise<T | undefined> {
    for (const pauseMs of RESOLVE_PAUSES_MS) {
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      try {
        return await check();
      } catch {
        // Still unreachable: wait longer.
      }
    }
    return undefined;
  }

  /** A hold whose write could not be confirmed: released as soon as Postgres says it was never written. */
  private async resolveHoldLater(hold: NewHold): Promise<void> {
    const written = await this.askAgainLater(() => settleHoldWrite(createSql(this.env), hold));
    if (written !== false) return; // written (it stays), or still unknown (its expiry decides)
    this.change(() => {
      releaseHold(this.sql, hold.reservationId, 'cancelled');
      return { touched: { seats: true } };
    });
    await this.settle();
  }

  /**
   * A payment whose commit could not be confirmed: the room follows Postgres's status once it can be
   * read. Confirmed: the seats are sold. Refunded (the fan saw it paid and refunded meanwhile): they
   * stay or become available, never sold.
   */
  private async resolvePaymentLater(request: { userId: string; reservationId: string; fence: number | null }): Promise<void> {
    const status = await this.askAgainLater(() => settledStatusOf(createSql(this.env), request.reservationId, request));
    if (status === 'confirmed') await this.sold(request.reservationId);
    else if (status === 'refunded') {
      this.change(() => {
        refundHold(this.sql, request.reservationId);
        return { touched: { seats: true } };
      });
      await this.settle();
    }
  }

  /** Cancels a live hold of `userId`'s; Postgres decides first, the room follows. */
  async cancel(userId: string, reservationId: string): Promise<CancelResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const hold = holdStatus(this.sql, reservationId);
    if (!hold || hold.userId !== userId) return { ok: false, reason: 'RESERVATION_NOT_FOUND' };
    if (hold.status === 'pending') return { ok: false, reason: 'REQUEST_IN_PROGRESS' };
    const states = await withClient(this.db(), (client) => withDeadline(endHolds(client, [reservationId], 'cancelled', userId)));
    const state = states.get(reservationId);
    const { result } = this.change((): { result: CancelResult; touched: Touched } => {
      if (state === 'confirmed') {
        const ended = this.soldHere(reservationId, Date.now());
        return { result: { ok: false, reason: 'ALREADY_PAID' }, touched: { seats: true, seqs: ended === undefined ? [] : [ended] } };
      }
      const touched = { seats: true };
      if (state === 'expired') {
        releaseHold(this.sql, reservationId, 'expired');
        return { result: { ok: false, reason: 'RESERVATION_EXPIRED' }, touched };
      }
      // A waitlist offer its fan turned down: the entry ends (it would otherwise go back to waiting).
      markOfferLeft(this.sql, reservationId);
      releaseHold(this.sql, reservationId, 'cancelled');
      return { result: { ok: true }, touched };
    });
    await this.settle();
    return result;
  }

  /**
   * Refunds a paid reservation (issue 13; `userId` null for an admin): Postgres decides and credits in
   * one statement on the room's pool, then the room frees the seats: to the admitted fans while the
   * line has not sold out, to waitlist offers once it has (it never re-opens). A retry after a lost reply finds it refunded and frees the
   * seats here too; until then, reconciliation does.
   */
  async refund(request: { reservationId: string; userId: string | null; byAdmin: boolean }): Promise<RefundResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const hold = holdStatus(this.sql, request.reservationId);
    if (!hold || (request.userId !== null && hold.userId !== request.userId)) return { ok: false, reason: 'RESERVATION_NOT_FOUND' };
    if (hold.status === 'pending') return { ok: false, reason: 'REQUEST_IN_PROGRESS' };
    let outcome: RefundOutcome;
    let sent = false;
    try {
      outcome = await withClient(this.db(), (client) => {
        sent = true;
        return withDeadline(refundReservation(client, request));
      });
    } catch (error) {
      if (!isPostgresUnavailable(error)) throw error;
      logJson('error', 'refund failed', { concertId: this.ctx.id.name, reservationId: request.reservationId, ...describeError(error) });
      // It may have committed with its reply lost: the room catches up with Postgres in the background.
      if (sent) this.ctx.waitUntil(this.reconcile().catch((e: unknown) => logJson('warn', 'reconcile failed', describeError(e))));
      return { ok: false, reason: 'DEPENDENCY_UNAVAILABLE' };
    }
    if (outcome.ok) {
      this.change(() => {
        refundHold(this.sql, request.reservationId);
        return { touched: { seats: true } };
      });
      await this.settle();
    }
    return outcome;
  }

  // ---- Waitlist (issue 13) ------------------------------------------------------------------

  /**
   * Puts a fan on the waitlist of this sold-out concert (the line's latch, see `latchSoldOut`), or
   * returns their live entry: see `joinWaitlist` in waitlist.ts for the rules. A new entry is offered
   * any seat already back (a refund nobody was waiting for) in the same change.
   */
  async joinWaitlist(request: { userId: string; seats: number; together: boolean }): Promise<WaitlistJoinResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const outcome = this.change(() => {
      const now = Date.now();
      const joined = joinWaitlist(this.sql, { ...request, now, soldOut: latchSoldOut(this.sql, now), lineRank: this.unservedRank(request.userId) });
      return { ...joined, touched: { offers: joined.ok && joined.created } };
    });
    await this.settle();
    if (!outcome.ok) {
      const { touched: _touched, ...refusal } = outcome;
      return refusal;
    }
    return { ok: true, created: outcome.created, entry: entryView(this.sql, findEntry(this.sql, request.userId) ?? outcome.row) };
  }

  /** The admission rank of `userId`'s place in line (drawn or by arrival), unless they bought through it. */
  private unservedRank(userId: string): number | null {
    const place = findByUser(this.sql, userId);
    if (!place || place.status === 'completed') return null;
    const shuffle = fixedShuffle(this.sql, this.config());
    return shuffle ? rankOfPlace(shuffle, place.seq) : place.seq;
  }

  /** A fan's waitlist entry: its status, its position while waiting, its offer while offered. */
  async waitlistEntry(userId: string): Promise<WaitlistEntryResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const row = findEntry(this.sql, userId);
    if (!row) return { ok: false, reason: 'WAITLIST_ENTRY_NOT_FOUND' };
    return { ok: true, entry: entryView(this.sql, row) };
  }

  /**
   * Takes a fan off the waitlist. An open offer is cancelled like the fan's own hold (Postgres first),
   * and its seats go to the next entry. An entry already ended stays as it is.
   */
  async leaveWaitlist(userId: string): Promise<WaitlistLeaveResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const row = findEntry(this.sql, userId);
    if (!row) return { ok: false, reason: 'WAITLIST_ENTRY_NOT_FOUND' };
    const offered = row.status === 'offered' ? row.reservation_id : null;
    if (offered !== null) {
      const cancelled = await this.cancel(userId, offered);
      if (cancelled.ok) return { ok: true };
      switch (cancelled.reason) {
        case 'ALREADY_PAID':
        case 'REQUEST_IN_PROGRESS':
          return { ok: false, reason: cancelled.reason };
        case 'CONCERT_NOT_FOUND':
          return cancelled;
        case 'RESERVATION_EXPIRED':
          // The offer ran out meanwhile: the entry has ended (expired).
          return { ok: true };
        case 'RESERVATION_NOT_FOUND':
          // No such hold here (never expected): nothing is held, so the entry simply ends.
          this.change(() => {
            markOfferLeft(this.sql, offered);
            return { touched: {} };
          });
          return { ok: true };
      }
    }
    if (row.status === 'waiting') {
      this.change(() => {
        leaveWaiting(this.sql, userId);
        return { touched: {} };
      });
    }
    return { ok: true };
  }

  /**
   * Writes the offers decided by the changes so far (see `change()`), each as a hold is written;
   * a written one is pushed to its fan's queue sockets.
   */
  private async writeOffers(): Promise<void> {
    const concertId = this.ctx.id.name!;
    while (this.offerQueue.length > 0) {
      const batch = this.offerQueue.splice(0);
      await Promise.all(
        batch.map(async (offer) => {
          const result = await this.writeDecided(offer, { userId: offer.userId }, concertId, { offer: true });
          if (result.ok) this.pushOffer(offer);
          else logJson('warn', 'waitlist offer not written', { concertId, reservationId: offer.reservationId, reason: result.reason });
        }),
      );
    }
  }

  /** Tells the fan on their queue socket(s), if they have one, that seats are held for them. */
  private pushOffer(offer: WaitlistOffer): void {
    const place = findByUser(this.sql, offer.userId);
    if (!place) return;
    const message: WaitlistOfferMessage = {
      type: 'waitlist_offer',
      reservationId: offer.reservationId,
      seats: offer.seats.map(({ seatNumber, section, price }) => ({ seatNumber, section, price })),
      amount: offer.amount,
      expiresAt: new Date(offer.expiresAt).toISOString(),
    };
    this.sockets.sendToPlace(place.seq, JSON.stringify(message));
  }

  /**
   * Compares the seat map and holds with Postgres and repairs the room where they differ
   * (Postgres wins). Returns what differed, seat by seat.
   */
  async reconcile(): Promise<ReconcileReport | NotFound> {
    this.requests.reconcile++;
    if (this.reconcileFollowUp) return this.reconcileFollowUp;
    const running = this.reconcileRun;
    if (!running) return this.startReconcile();
    // A trigger during a run may be about a change the run's Postgres read missed, so it needs a run
    // that starts afterwards; one such run answers every trigger until it starts. Reads of the whole
    // seat map, one after another, never pile up however many writes lose their replies.
    const followUp = running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.reconcileFollowUp = undefined;
        return this.startReconcile();
      });
    this.reconcileFollowUp = followUp;
    return followUp;
  }

  private startReconcile(): Promise<ReconcileReport | NotFound> {
    this.requests.reconcileRuns++;
    const run = this.reconcileOnce().finally(() => {
      if (this.reconcileRun === run) this.reconcileRun = undefined;
    });
    this.reconcileRun = run;
    return run;
  }

  private async reconcileOnce(): Promise<ReconcileReport | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    await this.settleOrphans();
    const before = takeSnapshot(this.sql, Date.now());
    const source = await loadRoomSource(createSql(this.env), this.ctx.id.name!);
    if (!source) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const { differences } = this.change(() => {
      const { differences, ended } = reconcileRoom(this.sql, source, before);
      return { differences, touched: { seats: true, seqs: ended } };
    });
    await this.settle();
    if (differences.length) logJson('warn', 'room reconciled from postgres', { concertId: this.ctx.id.name, changed: differences.length });
    return { ok: true, changed: differences.length, differences };
  }

  // ---- WebSocket (hibernation API) ---------------------------------------------------------

  /** Accepts a queue WebSocket the Worker has already authenticated. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 });
    if (!(await this.ready())) return new Response('concert not found', { status: 404 });
    const seq = Number(request.headers.get(WS_SEQ_HEADER));
    const row = findBySeq(this.sql, seq);
    if (!row || row.user_id !== request.headers.get(WS_USER_HEADER)) return new Response('unknown place in line', { status: 403 });
    await this.openIfDue(Date.now());
    return new Response(null, { status: 101, webSocket: this.sockets.accept(row) });
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    // Clients may ask for their current status; anything else is ignored.
    if (message === 'status') this.sockets.answerStatusRequest(ws);
  }

  override webSocketClose(ws: WebSocket, code: number): void {
    ws.close(code === 1005 ? 1000 : code, 'closing');
  }

  // ---- Alarm --------------------------------------------------------------------------------

  /**
   * Runs everything due at the time the alarm was armed for. Real alarms never fire early, so
   * that is "now"; a test that runs the alarm ahead of time advances the room to that moment.
   * At-least-once safe: each step only acts on what is still due.
   */
  override async alarm(): Promise<void> {
    if (!(await this.ready())) return;
    const armedFor = readMeta<number | null>(this.sql, 'armedFor') ?? 0;
    const now = Math.max(Date.now(), armedFor);
    try {
      await this.settleOrphans();
      const notYet = await this.expireHolds(now);
      // Due by the room's clock but not yet by Postgres's: look again shortly rather than at once.
      writeMeta(this.sql, 'holdRetryAt', notYet > 0 ? Date.now() + HOLD_EXPIRY_RETRY_MS : null);
    } catch (error) {
      // Postgres is unreachable: the seats stay held and we try again shortly. The room re-arms
      // itself rather than throwing, because the runtime gives up on an alarm after a few retries.
      logJson('error', 'hold expiry failed; retrying', { concertId: this.ctx.id.name, ...describeError(error) });
      writeMeta(this.sql, 'holdRetryAt', Date.now() + HOLD_EXPIRY_RETRY_MS);
    }
    const offersRetryAt = readMeta<number | null>(this.sql, 'waitlistRetryAt') ?? null;
    if (offersRetryAt !== null && offersRetryAt <= now) {
      this.change(() => {
        writeMeta(this.sql, 'waitlistRetryAt', null);
        return { touched: { offers: true } };
      });
    }
    this.change(() => {
      writeMeta(this.sql, 'armedFor', null);
      return { touched: { seqs: this.advance(now).expired } };
    });
    await this.settle();
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * Runs one state change in a synchronous transaction and forgets every view derived from the old
   * state. `work` says what it touched, for the announcements `settle()` makes afterwards.
   *
   * The change that sells the line out latches it (see `latchSoldOut`), in the same transaction.
   * From then on, seats a change frees (expiry, cancel, refund, a lapsed offer, a failed write,
   * reconciliation: whatever made a seat available) go to the waitlist, in the same transaction:
   * offers are decided and their seats marked held before anything else can run, so no hold can race
   * an offer for a seat (and the line, latched, neither admits nor holds). Before the latch, freed
   * seats stay available to the fans the line admits. `settle()` writes the offers.
   */
  private change<T extends { touched: Touched }>(work: () => T): T {
    let result: T;
    let offers: WaitlistOffer[] = [];
    try {
      result = this.ctx.storage.transactionSync(() => {
        const freed = seatsFreedTick(this.sql);
        const done = work();
        latchSoldOut(this.sql, Date.now());
        if (done.touched.offers || seatsFreedTick(this.sql) !== freed) offers = this.offerSeats(Date.now());
        return done;
      });
    } catch (error) {
      forgetCachedMeta(this.sql);
      throw error;
    } finally {
      this.cachedSnapshot = undefined;
    }
    if (result.touched.seats || offers.length > 0) this.cachedSeatMaps.clear();
    for (const seq of result.touched.seqs ?? []) this.pushSeqs.add(seq);
    for (const offer of offers) {
      // In `writing` from the moment it exists, so it is never taken for a reset's orphan.
      this.writing.add(offer.reservationId);
      this.offerQueue.push(offer);
    }
    return result;
  }

  /**
   * Inside `change()`: offers the available seats to waiting entries once the line has sold out,
   * unless a failed offer paused them. Before that they stay for the fans the line admits.
   */
  private offerSeats(now: number): WaitlistOffer[] {
    if (!readSoldOut(this.sql)) return [];
    const pausedUntil = readMeta<number | null>(this.sql, 'waitlistRetryAt') ?? null;
    if (pausedUntil !== null && pausedUntil > now) return [];
    return decideOffers(this.sql, { now, offerSeconds: this.config().waitlistOfferSeconds });
  }

  /**
   * Moves the line forward to `now`: sessions whose time is up end, then the head of the line is
   * admitted as far as the window and `maxActive` allow. Call inside `change()`.
   */
  private advance(now: number): { admitted: number; expired: number[] } {
    fixDraw(this.sql, this.config(), this.salesOpenAt(), now);
    const expired = expireSessions(this.sql, now);
    const admitted = admit(this.sql, this.config(), this.salesOpenAt(), this.soldOut(), now);
    return { admitted, expired };
  }

  /**
   * After a change: points the alarm at the next due event and tells the world. A snapshot whose
   * window, settings, pause or sold-out moved is published to the edge before the caller is
   * answered; one where only admissions within the window moved (the watermark) is published within
   * SNAPSHOT_PUBLISH_INTERVAL_MS, because the edge answers a poll from a snapshot only when the
   * place is certainly still waiting whatever the window did since (see certainlyWaiting). Every
   * moved snapshot reaches the waiting sockets; places whose own status changed are pushed theirs.
   * Socket pushes are gathered for PUSH_COALESCE_MS.
   */
  private async settle(): Promise<void> {
    await this.writeOffers();
    await this.rearm();
    const snap = this.snapshot();
    const json = JSON.stringify(snap);
    if (json !== this.publishedSnapshot) {
      this.pushEveryone = true;
      const { watermark: _w, admittedInWindow: _a, ...material } = snap;
      const published = this.publishedSnapshot === undefined ? undefined : (JSON.parse(this.publishedSnapshot) as AdmissionSnapshot);
      const { watermark: _pw, admittedInWindow: _pa, ...publishedMaterial } = published ?? ({} as AdmissionSnapshot);
      if (published === undefined || JSON.stringify(material) !== JSON.stringify(publishedMaterial)) await this.publish();
      else this.publishTimer ??= setTimeout(() => void this.publish(), SNAPSHOT_PUBLISH_INTERVAL_MS);
    }
    if ((this.pushEveryone || this.pushSeqs.size > 0) && this.pushTimer === undefined) {
      this.pushTimer = setTimeout(() => {
        this.pushTimer = undefined;
        this.flushPushes();
      }, PUSH_COALESCE_MS);
    }
  }

  /** Publishes the current snapshot to the edge cache (this location's; others refresh within its TTL). */
  private async publish(): Promise<void> {
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    const concertId = this.ctx.id.name;
    if (!concertId) return;
    const snap = this.snapshot();
    const json = JSON.stringify(snap);
    if (json === this.publishedSnapshot) return;
    this.publishedSnapshot = json;
    try {
      await publishSnapshot(concertId, snap);
    } catch (error) {
      this.publishedSnapshot = undefined;
      logJson('warn', 'snapshot publish failed', { concertId, ...describeError(error) });
    }
  }

  /** Sends the gathered pushes (see QueueSockets.flush). */
  private flushPushes(): void {
    const seqs = new Set(this.pushSeqs);
    const everyone = this.pushEveryone;
    this.pushEveryone = false;
    this.pushSeqs.clear();
    this.sockets.flush(everyone, seqs);
  }

  /** The hold's Postgres write landed: it is live, and the alarm will expire it. */
  private async activated(held: Extract<HoldResult, { ok: true }>): Promise<HoldResult> {
    this.change(() => {
      activateHold(this.sql, held.reservationId);
      return { touched: {} };
    });
    await this.settle();
    return held;
  }

  /**
   * Releases exactly the due holds that Postgres moves from held to expired; a due hold Postgres
   * shows confirmed becomes sold (and its buyer's session ends). Postgres expires a hold only once
   * its `expires_at` has passed by Postgres's own clock; one that has not stays held here too, and
   * the count of those is returned so the alarm looks again. If Postgres is unreachable this throws
   * and nothing changes here: the seats stay held until the alarm's retry gets through.
   */
  private async expireHolds(now: number): Promise<number> {
    const due = dueHolds(this.sql, now);
    if (due.length === 0) return 0;
    const states = await withClient(this.db(), (client) => withDeadline(endHolds(client, due, 'expired')));
    const { notYet } = this.change(() => {
      let notYet = 0;
      const ended: number[] = [];
      for (const id of due) {
        const state = states.get(id);
        if (state === 'confirmed') {
          const seq = this.soldHere(id, Date.now());
          if (seq !== undefined) ended.push(seq);
        } else if (state === 'held') notYet++;
        else releaseHold(this.sql, id, state === 'cancelled' ? 'cancelled' : 'expired');
      }
      return { notYet, touched: { seats: true, seqs: ended } };
    });
    return notYet;
  }

  /**
   * Settles the pending holds an earlier instance of this room left when it was reset between its
   * decision and the end of its Postgres write: Postgres is asked for good (see settleHoldWrite, which
   * also stops a write still on its way from landing later). Written ones become live holds (their
   * owner can pay or cancel them; reconciliation gives them Postgres's state), the rest are released,
   * so neither a seat nor an owner's 4-seat allowance stays taken by a hold nobody will finish.
   */
  private async settleOrphans(): Promise<void> {
    if (!this.mayHaveOrphans) return;
    const orphans = pendingHolds(this.sql).filter((hold) => !this.writing.has(hold.reservationId));
    if (orphans.length === 0) {
      this.mayHaveOrphans = false;
      return;
    }
    const sql = createSql(this.env);
    const concertId = this.ctx.id.name!;
    const settled = await Promise.all(
      orphans.map(async (hold) => ({
        hold,
        written: await settleHoldWrite(sql, { ...hold, concertId, seatIds: [] }),
      })),
    );
    this.change(() => {
      for (const { hold, written } of settled) {
        if (written) activateHold(this.sql, hold.reservationId);
        else releaseHold(this.sql, hold.reservationId, 'cancelled');
      }
      return { touched: { seats: true } };
    });
    logJson('warn', 'settled holds left pending by a reset', { concertId, holds: settled.length, written: settled.filter((s) => s.written).length });
    await this.settle();
  }

  /** True when a pending hold has no write running in this instance (see `settleOrphans`). */
  private hasOrphans(): boolean {
    if (!this.mayHaveOrphans) return false;
    this.mayHaveOrphans = pendingHolds(this.sql).some((hold) => !this.writing.has(hold.reservationId));
    return this.mayHaveOrphans;
  }

  /** True once the room holds its concert; loads it from Postgres on first use. */
  private async ready(): Promise<boolean> {
    if (this.hasSchema && readMeta<number>(this.sql, 'salesOpenAt') !== undefined) return true;
    if (Date.now() < this.missingUntil) return false;
    this.loading ??= this.loadFromPostgres().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async loadFromPostgres(): Promise<boolean> {
    const concertId = this.ctx.id.name;
    if (!concertId) return false;
    // Over Neon's HTTP path: a room for an id that names no concert never opens a connection.
    const source = await loadRoomSource(createSql(this.env), concertId);
    if (!source) {
      this.missingUntil = Date.now() + MISSING_CONCERT_MEMORY_MS;
      return false;
    }
    if (!this.hasSchema) {
      // Synchronous, so no request of this room runs before its tables exist.
      this.ctx.storage.transactionSync(() => migrateRoomSchema(this.sql));
      this.hasSchema = true;
    }
    // Another caller may have finished loading while we awaited Postgres.
    if (readMeta<number>(this.sql, 'salesOpenAt') !== undefined) return true;
    this.change(() => {
      reconcileSeats(this.sql, source.seats);
      writeMeta(this.sql, 'config', { ...DEFAULT_QUEUE_CONFIG, ...pickQueueConfig(source.queueConfig) });
      writeMeta(this.sql, 'concert', source.concert);
      writeMeta(this.sql, 'salesOpenAt', source.salesOpenAt);
      openingState(this.sql);
      return { touched: { seats: true } };
    });
    // Published at once: Workers learn the lobby count (and the rest) before the first join arrives.
    await this.settle();
    return true;
  }

  private db(): Pool {
    // A long-lived pool: holds and expiry ride warm connections (DESIGN.md §5). Every hold waits
    // for one of these connections, so the pool size caps the room's hold rate (bench:holds found 3
    // too few); in production they are cheap PgBouncer client slots.
    this.pool ??= createPool(this.env, { max: ROOM_POOL_SIZE });
    return this.pool;
  }

  private config(): QueueConfig {
    const stored = readMeta<QueueConfig>(this.sql, 'config');
    if (!stored) return DEFAULT_QUEUE_CONFIG;
    if (stored.openingOrder && stored.waitlistOfferSeconds !== undefined && stored.lobbyShards !== undefined) return stored;
    // A room configured before a setting existed gets its default, except the pre-queue order: a
    // config stored before the draw existed belongs to a room that admits by arrival.
    return { ...DEFAULT_QUEUE_CONFIG, openingOrder: 'fifo', ...(stored as Partial<QueueConfig>) };
  }

  private salesOpenAt(): number {
    return readMeta<number>(this.sql, 'salesOpenAt') ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Whether the line has sold out: latched at the end of the change that sold it out (see
   * `latchSoldOut`), and already true inside that change, so its own admission step stops too.
   */
  private soldOut(): boolean {
    return readSoldOut(this.sql) !== undefined || isSoldOut(this.sql);
  }

  private snapshot(): AdmissionSnapshot {
    return (this.cachedSnapshot ??= snapshot(this.sql, this.config(), this.salesOpenAt(), this.soldOut()));
  }

  /**
   * When the alarm should next look at holds: the earliest expiry (or at once, when holds were left
   * pending by a reset), but not before a retry's backoff.
   */
  private nextHoldDue(): number | null {
    const expiry = this.hasOrphans() ? 0 : nextHoldExpiry(this.sql);
    if (expiry === null) return null;
    return Math.max(expiry, readMeta<number | null>(this.sql, 'holdRetryAt') ?? 0);
  }

  /**
   * Fixes the pre-queue draw when sales have opened and nothing has fixed it yet (the alarm set for
   * opening normally does), so no answer after opening comes from an undrawn line.
   */
  private async openIfDue(now: number): Promise<void> {
    if (now < this.salesOpenAt() || peekOpening(this.sql)?.prequeueSize != null) return;
    this.change(() => ({ touched: { seqs: this.advance(now).expired } }));
    await this.settle();
  }

  /** A shuffled pre-queue with people in it waits for its draw (the alarm makes it at opening, even when paused). */
  private drawPending(): boolean {
    return this.config().openingOrder === 'shuffle' && peekOpening(this.sql)?.prequeueSize == null && countWaiting(this.sql) > 0;
  }

  /** Points the one alarm at the earliest due event: opening, a window opening, a session or a hold ending. */
  private async rearm(): Promise<void> {
    const candidates = [
      this.drawPending() ? this.salesOpenAt() : null,
      nextAdmissionAt(this.sql, this.config(), this.salesOpenAt(), this.soldOut()),
      nextSessionExpiry(this.sql),
      this.nextHoldDue(),
      readMeta<number | null>(this.sql, 'waitlistRetryAt') ?? null,
    ].filter((t): t is number => t !== null && Number.isFinite(t));
    const next = candidates.length ? Math.min(...candidates) : null;
    if (next === (readMeta<number | null>(this.sql, 'armedFor') ?? null)) return;
    writeMeta(this.sql, 'armedFor', next);
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
  }
}

/** Keeps only known settings with the right types from a stored (possibly older) config object. */
function pickQueueConfig(raw: Record<string, unknown>): Partial<QueueConfig> {
  const picked: Partial<QueueConfig> = {};
  for (const key of ['admitPerWindow', 'windowSeconds', 'sessionSeconds', 'holdSeconds', 'lobbyShards', 'waitlistOfferSeconds'] as const) {
    const value = raw[key];
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) picked[key] = value;
  }
  if (raw.maxActive === null || (typeof raw.maxActive === 'number' && Number.isInteger(raw.maxActive) && raw.maxActive > 0)) {
    picked.maxActive = raw.maxActive;
  }
  if (typeof raw.paused === 'boolean') picked.paused = raw.paused;
  if (raw.openingOrder === 'shuffle' || raw.openingOrder === 'fifo') picked.openingOrder = raw.openingOrder;
  return picked;
}
