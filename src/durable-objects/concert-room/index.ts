import { DurableObject } from 'cloudflare:workers';
import type { Pool } from '@neondatabase/serverless';
import { createPool } from '../../db/client.ts';
import { createSql } from '../../db/http.ts';
import { loadRoomSource, type ConcertSummary } from '../../db/room-source.ts';
import type { IdempotencyClaim } from '../../lib/idempotency.ts';
import { describeError, logJson } from '../../lib/logging.ts';
import {
  admit,
  countWaiting,
  expireSessions,
  findBySeq,
  fixDraw,
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
import type { MembershipTree } from '../../lib/draw-membership.ts';
import { buildMembership, inclusionProof, membershipSecret } from './draw-proof.ts';
import { forgetCachedMeta, readMeta, writeMeta } from './meta.ts';
import { DEFAULT_QUEUE_CONFIG, type AdmissionSnapshot, type OpeningOrder, type QueueConfig } from './model.ts';
import { QUEUE_TOKEN_TTL_SECONDS } from '../../lib/queue-token.ts';
import { hasPendingHolds, nextHoldExpiry } from './holds.ts';
import { Checkout, HOLD_EXPIRY_RETRY_MS } from './checkout.ts';
import type {
  CancelResult,
  HoldResult,
  JoinBatchResult,
  InclusionProofResult,
  JoinResult,
  MembershipResult,
  NotFound,
  OpeningView,
  PayResult,
  ReconcileReport,
  RefundResult,
  RoomRequestCounts,
  RoomStats,
  SeatMapView,
  StatusResult,
  Touched,
  WaitlistEntryResult,
  WaitlistJoinResult,
  WaitlistLeaveResult,
} from './types.ts';
import { CoalescedRuns, reconcileRoom, takeSnapshot } from './reconcile.ts';
import { Announcements } from './announcements.ts';
import { hasRoomSchema, migrateRoomSchema } from './schema.ts';
import { QueueSockets } from './sockets.ts';
import { isSoldOut, listSeats, reconcileSeats, seatCounts, type RoomSeat, type RoomSeatStatus } from './seats.ts';
import { decideOffers, seatsFreedTick, waitlistStats, type WaitlistOffer } from './waitlist.ts';
import { checkProofs, JoinRate, pickEntryConfig, spendProofs } from './entry.ts';
import { surgeCost, type EntryProof } from '../../lib/entry-proof.ts';

/** Postgres connections one room keeps. @default 8 */
export const ROOM_POOL_SIZE = 8;

/**
 * How long a room that found no concert in Postgres answers "not found" without asking again, so
 * a flood of made-up ids costs one HTTP query per id, not one per request. @default 60000
 */
export const MISSING_CONCERT_MEMORY_MS = 60_000;

/** A re-join reissues the place's token once it is older than this (half the token's life). */
export const REISSUE_AFTER_SECONDS = QUEUE_TOKEN_TTL_SECONDS / 2;

export type * from './types.ts';
export { HOLD_EXPIRY_RETRY_MS } from './checkout.ts';
export { PUSH_COALESCE_MS, SNAPSHOT_PUBLISH_INTERVAL_MS } from './announcements.ts';

const NOT_FOUND: NotFound = { ok: false, reason: 'CONCERT_NOT_FOUND' };

/** Headers the Worker sets when it hands a verified WebSocket upgrade to the room. */
export const WS_SEQ_HEADER = 'X-Frontrow-Queue-Seq';
export const WS_USER_HEADER = 'X-Frontrow-Queue-User';

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
  private readonly announcements: Announcements;
  private readonly sockets: QueueSockets;
  private readonly requests: Omit<RoomRequestCounts, 'holdStatements' | 'holdsWritten'> = { join: 0, joinBatch: 0, joinedInBatches: 0, reconcile: 0, reconcileRuns: 0 };
  private readonly reconcileRuns: CoalescedRuns<ReconcileReport | NotFound>;
  /** The drawn pre-queue's membership tree, once built (see drawnMembership). */
  private membership: MembershipTree | undefined;
  /** Holds, payments, cancellations, refunds and the waitlist's requests (checkout.ts). */
  private readonly checkout: Checkout;
  /** Joins placed per second, for the proof of work's surge rule (entry.ts). */
  private readonly joinRate = new JoinRate();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.announcements = new Announcements(() => ctx.id.name, () => this.sockets, () => this.snapshot());
    this.sockets = new QueueSockets(ctx, this.sql, () => this.snapshot(), () => this.announcements.pushEveryoneNow());
    this.reconcileRuns = new CoalescedRuns(
      () => this.reconcileOnce(),
      () => this.requests.reconcileRuns++,
    );
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the host reads the room's state at each use
    const room = this;
    this.checkout = new Checkout({
      ctx,
      env,
      get sql() {
        return room.sql;
      },
      get concertId() {
        return ctx.id.name!;
      },
      db: () => this.db(),
      config: () => this.config(),
      soldOut: () => this.soldOut(),
      change: (work) => this.change(work),
      settle: () => this.settle(),
      advance: (now) => this.advance(now),
      reconcile: () => this.reconcile(),
      sendToPlace: (seq, message) => this.sockets.sendToPlace(seq, message),
    });
    void ctx.blockConcurrencyWhile(() => {
      // A room for an id that names no concert must write nothing (issue 18): its schema is created
      // only once Postgres has the concert (loadFromPostgres); here it is only brought up to date.
      this.hasSchema = hasRoomSchema(this.sql);
      if (!this.hasSchema) return Promise.resolve();
      migrateRoomSchema(this.sql);
      this.checkout.mayHaveOrphans = hasPendingHolds(this.sql);
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

  /**
   * Joins the line (or returns the existing place) and admits at once when the window has room.
   * `proof`: the join's proof of work, already verified by the Worker; the room refuses a reuse.
   * `afterLostBatch`: the Worker re-sends a join its lobby lost (see checkProofs).
   */
  async join(userId: string, proof?: EntryProof | null, afterLostBatch = false): Promise<JoinResult> {
    this.requests.join++;
    const result = await this.placeAll([userId], [proof], afterLostBatch);
    if (!result.ok) return result;
    const place = result.places[0]!;
    return 'reason' in place ? place : { ok: true, ...place, snapshot: result.snapshot };
  }

  /**
   * Joins a batch a lobby gathered (issue 14), in its order, in one transaction: one request and one
   * SQLite commit for up to a lobby's batch of fans. Same answers as `join` for each.
   */
  async joinBatch(userIds: string[], proofs?: (EntryProof | null)[]): Promise<JoinBatchResult> {
    this.requests.joinBatch++;
    this.requests.joinedInBatches += userIds.length;
    return this.placeAll(userIds, proofs ?? []);
  }

  /**
   * The cost of a proof-of-work challenge issued now (null: this concert asks for none): the
   * concert's cost, raised by the surge rule while joins per second are high (surgeCost).
   */
  async entryChallengeCost(): Promise<{ ok: true; cost: number | null } | NotFound> {
    if (!(await this.ready())) return NOT_FOUND;
    const pow = this.config().entry?.proofOfWork ?? null;
    return { ok: true, cost: pow ? surgeCost(pow, this.joinRate.perSecond(Date.now())) : null };
  }

  /** Requests this instance has served, by kind, since it started (for bench:rush's per-object figures). */
  requestCounts(): RoomRequestCounts {
    const { statements, holds } = this.checkout.holdWrites.counts;
    return { ...this.requests, holdStatements: statements, holdsWritten: holds };
  }

  private async placeAll(
    allUserIds: readonly string[],
    allProofs: readonly (EntryProof | null | undefined)[],
    afterLostBatch = false,
  ): Promise<JoinBatchResult> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    const now = Date.now();
    const entry = this.config().entry;
    const joins = allUserIds.map((userId, i) => ({ userId, proof: allProofs[i] }));
    // Decided before the change and with no await in between: a refused join writes nothing.
    const refusals = checkProofs(this.sql, entry, joins, afterLostBatch);
    const accepted = joins.filter((_, i) => !refusals[i]);
    const userIds = accepted.map((join) => join.userId);
    // A proof sent where none is asked is not spent: the concert may turn its gate on later.
    const spent = entry?.proofOfWork ? accepted.filter((join): join is { userId: string; proof: EntryProof } => !!join.proof) : [];
    this.joinRate.record(userIds.length, now);
    const rows =
      userIds.length === 0
        ? []
        : this.change(() => {
            spendProofs(this.sql, spent, now);
            // Whoever joins at or after opening goes behind the pre-queue, which is fixed first.
            fixDraw(this.sql, this.config(), this.salesOpenAt(), now);
            const placed = userIds.map((userId) => joinLine(this.sql, userId, now, REISSUE_AFTER_SECONDS));
            if (!placed.some((place) => place.joined)) return { placed, touched: {} };
            const moved = this.advance(now);
            // Only a join that let someone in changes a joiner's row after its insert.
            const fresh = moved.admitted > 0 ? placed.map(({ row, joined }) => ({ row: findBySeq(this.sql, row.seq)!, joined })) : placed;
            return { placed: fresh, touched: { seqs: moved.expired } };
          }).placed;
    if (rows.length > 0) await this.settle();
    const snap = this.snapshot();
    let next = 0;
    return {
      ok: true,
      places: refusals.map((refusal) => {
        if (refusal) return refusal;
        const { row, joined } = rows[next++]!;
        return { seq: row.seq, jti: row.jti, issuedAt: row.issued_at, joined, status: statusOf(row, snap, now) };
      }),
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
      membershipRoot: this.drawnMembership()?.root ?? null,
    };
  }

  /** Every drawn place's leaf, for anyone to recompute the membership root (`npm run verify-draw`). */
  async openingMembership(): Promise<MembershipResult> {
    if (!(await this.ready())) return NOT_FOUND;
    await this.openIfDue(Date.now());
    if (peekOpening(this.sql)?.prequeueSize == null) return { ok: false, reason: 'DRAW_PENDING' };
    const tree = this.drawnMembership();
    return tree ? { ok: true, prequeueSize: tree.size, root: tree.root, leaves: tree.leaves() } : { ok: true, prequeueSize: 0, root: '', leaves: [] };
  }

  /** Place `seq`'s proof that it was drawn with the pre-queue (its owner's, checked like `status`), and its rank. */
  async openingProof(seq: number, userId: string, jti: string): Promise<InclusionProofResult> {
    if (!(await this.ready())) return NOT_FOUND;
    const row = findBySeq(this.sql, seq);
    if (!row || row.user_id !== userId || row.jti !== jti) return { ok: false, reason: 'INVALID_QUEUE_TOKEN' };
    await this.openIfDue(Date.now());
    const opening = peekOpening(this.sql);
    if (opening?.prequeueSize == null) return { ok: false, reason: 'DRAW_PENDING' };
    const tree = this.drawnMembership();
    const shuffle = { seed: opening.seed, prequeueSize: opening.prequeueSize };
    if (!tree || seq > tree.size) return { ok: true, inPrequeue: false, seq, rank: rankOfPlace(shuffle, seq), prequeueSize: opening.prequeueSize };
    return { ok: true, inPrequeue: true, proof: inclusionProof(this.sql, tree, shuffle, { seq, userId }) };
  }

  /** The drawn pre-queue's membership tree (built once per instance: places 1..P never change); null before the draw or for none. */
  private drawnMembership(): MembershipTree | null {
    const size = this.config().openingOrder === 'shuffle' ? (peekOpening(this.sql)?.prequeueSize ?? 0) : 0;
    if (size <= 0) return null;
    if (this.membership?.size !== size) this.membership = buildMembership(this.sql, size);
    return this.membership;
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

  // Checkout (checkout.ts): each call answers "no such concert" before it touches anything.

  /** Holds 1–4 seats all-or-nothing for an admitted fan (see Checkout.hold). */
  async hold(request: { userId: string; seq: number; jti: string; seatNumbers: number[]; claim?: IdempotencyClaim }): Promise<HoldResult> {
    return (await this.ready()) ? this.checkout.hold(request) : NOT_FOUND;
  }

  /** Pays a hold of `userId`'s, the caller holding the payment and balance locks (see Checkout.pay). */
  async pay(request: { userId: string; reservationId: string; fence: number | null; claim?: IdempotencyClaim }): Promise<PayResult> {
    return (await this.ready()) ? this.checkout.pay(request) : NOT_FOUND;
  }

  async cancel(userId: string, reservationId: string): Promise<CancelResult> {
    return (await this.ready()) ? this.checkout.cancel(userId, reservationId) : NOT_FOUND;
  }

  /** Refunds a paid reservation (`userId` null for an admin; see Checkout.refund). */
  async refund(request: { reservationId: string; userId: string | null; byAdmin: boolean }): Promise<RefundResult> {
    return (await this.ready()) ? this.checkout.refund(request) : NOT_FOUND;
  }

  async joinWaitlist(request: { userId: string; seats: number; together: boolean }): Promise<WaitlistJoinResult> {
    return (await this.ready()) ? this.checkout.joinWaitlist(request) : NOT_FOUND;
  }

  async waitlistEntry(userId: string): Promise<WaitlistEntryResult> {
    return (await this.ready()) ? this.checkout.waitlistEntry(userId) : NOT_FOUND;
  }

  async leaveWaitlist(userId: string): Promise<WaitlistLeaveResult> {
    return (await this.ready()) ? this.checkout.leaveWaitlist(userId) : NOT_FOUND;
  }


  /**
   * Compares the seat map and holds with Postgres and repairs the room where they differ
   * (Postgres wins). Returns what differed, seat by seat.
   */
  async reconcile(): Promise<ReconcileReport | NotFound> {
    this.requests.reconcile++;
    return this.reconcileRuns.request();
  }

  private async reconcileOnce(): Promise<ReconcileReport | NotFound> {
    if (!(await this.ready())) return { ok: false, reason: 'CONCERT_NOT_FOUND' };
    await this.checkout.settleOrphans();
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
      await this.checkout.settleOrphans();
      const notYet = await this.checkout.expireHolds(now);
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
    this.announcements.placesChanged(result.touched.seqs ?? []);
    this.checkout.queueOffers(offers);
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

  /** After a change: writes the offers it decided, points the alarm at the next due event, tells the world. */
  private async settle(): Promise<void> {
    await this.checkout.writeOffers();
    await this.rearm();
    await this.announcements.afterChange();
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
      membershipSecret(this.sql);
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
    if (stored.openingOrder && stored.waitlistOfferSeconds !== undefined && stored.lobbyShards !== undefined && stored.entry !== undefined) return stored;
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
    const expiry = this.checkout.hasOrphans() ? 0 : nextHoldExpiry(this.sql);
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
  const entry = pickEntryConfig(raw.entry);
  if (entry) picked.entry = entry;
  return picked;
}
