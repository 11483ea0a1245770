// The room's checkout: holds (a fan's own and the waitlist's offers), their Postgres writes, payment,
// cancellation, refunds and the waitlist's requests. Decisions are synchronous changes of the room's
// SQLite (see ConcertRoom.change); Postgres is written around them, and every way out of a write
// settles what the room decided. The room (index.ts) owns the RPC surface, the line and the alarm.
import type { Pool, PoolClient } from '@neondatabase/serverless';
import { createSql } from '../../db/http.ts';
import { isPostgresUnavailable } from '../../db/errors.ts';
import { withClient } from '../../db/transaction.ts';
import {
  endHolds,
  insertHold,
  insertHolds,
  payReservation,
  readPaymentOf,
  settledStatusOf,
  refundReservation,
  SeatConflictError,
  settleHoldWrite,
  type NewHold,
  type PaymentOutcome,
  type RecordedResponse,
  type RefundOutcome,
} from '../../db/reservations-repo.ts';
import { isRecordConflict, type IdempotencyClaim } from '../../lib/idempotency.ts';
import { describeError, logJson } from '../../lib/logging.ts';
import { rankOfPlace } from '../../lib/opening-shuffle.ts';
import { withDeadline } from './deadline.ts';
import {
  activateHold,
  confirmHold,
  decideHold,
  dueHolds,
  holdStatus,
  pendingHolds,
  refundHold,
  releaseHold,
  type PlacedHold,
} from './holds.ts';
import { completeSession, findBySeq, findByUser, fixedShuffle, latchSoldOut } from './line.ts';
import { writeMeta } from './meta.ts';
import type { QueueConfig } from './model.ts';
import type {
  CancelResult,
  HoldResult,
  NotFound,
  PayResult,
  ReconcileReport,
  RefundResult,
  Touched,
  WaitlistEntryResult,
  WaitlistJoinResult,
  WaitlistLeaveResult,
  WaitlistOfferMessage,
} from './types.ts';
import { entryView, findEntry, joinWaitlist, leaveWaiting, markOfferLeft, type WaitlistOffer } from './waitlist.ts';

/** Back-off before the alarm retries hold expiry after Postgres failed. @default 2000 */
export const HOLD_EXPIRY_RETRY_MS = 2_000;

/** Pauses before asking Postgres again about a write whose outcome was lost. */
export const RESOLVE_PAUSES_MS = [500, 1_000, 2_000, 4_000, 8_000] as const;

/** Most holds one group-commit statement writes. @default 32 */
export const HOLD_GROUP_MAX = 32;

/**
 * Hold statements a room keeps on their way at once; holds decided meanwhile wait for the next
 * statement, together. Two keep one statement's round trip from idling the room while the other
 * commits, and leave the rest of the pool to payments, cancellations and expiry. @default 2
 */
export const HOLD_STATEMENTS_IN_FLIGHT = 2;

/** How a hold's write ended: `sent` tells a failure to connect (nothing written) from one after sending. */
export type HoldWriteOutcome = { ok: true } | { ok: false; error: unknown; sent: boolean };

interface QueuedHoldWrite {
  hold: NewHold;
  record: RecordedResponse | undefined;
  done: (outcome: HoldWriteOutcome) => void;
}

/**
 * Group commit of hold writes (issue 19): an idle room writes a hold at once; holds decided while
 * HOLD_STATEMENTS_IN_FLIGHT statements are on their way wait and go together in the next one (up to
 * HOLD_GROUP_MAX, one statement, one round trip). Each hold's outcome is its own statement's: the
 * caller answers its fan only after the row committed. A group Postgres refuses (a seat it has taken,
 * a live idempotency record) wrote nothing; each of its holds is then written alone, so each is
 * settled exactly as a hold written alone would be.
 */
export class HoldWrites {
  private readonly queued: QueuedHoldWrite[] = [];
  private inFlight = 0;
  /** Statements sent and the holds they carried (see ConcertRoom.requestCounts). */
  readonly counts = { statements: 0, holds: 0 };
  private readonly pool: () => Pool;
  private readonly concertId: () => string;

  constructor(pool: () => Pool, concertId: () => string) {
    this.pool = pool;
    this.concertId = concertId;
  }

  write(hold: NewHold, record: RecordedResponse | undefined): Promise<HoldWriteOutcome> {
    return new Promise((done) => {
      this.queued.push({ hold, record, done });
      this.next();
    });
  }

  private next(): void {
    while (this.queued.length > 0 && this.inFlight < HOLD_STATEMENTS_IN_FLIGHT) {
      const group = this.queued.splice(0, HOLD_GROUP_MAX);
      this.inFlight++;
      void this.writeGroup(group).finally(() => {
        this.inFlight--;
        this.next();
      });
    }
  }

  private async writeGroup(group: QueuedHoldWrite[]): Promise<void> {
    if (group.length === 1) {
      group[0]!.done(await this.writeAlone(group[0]!));
      return;
    }
    const outcome = await this.send(group.length, (client) => insertHolds(client, this.concertId(), group));
    // Committed, or its fate unknown (each hold then settles its own, as after a lost reply): the same for all.
    if (outcome.ok || isPostgresUnavailable(outcome.error)) {
      for (const write of group) write.done(outcome);
      return;
    }
    await Promise.all(group.map(async (write) => write.done(await this.writeAlone(write))));
  }

  private writeAlone(write: QueuedHoldWrite): Promise<HoldWriteOutcome> {
    return this.send(1, (client) => insertHold(client, write.hold, write.record));
  }

  /**
   * Connected first, so that a failure to connect (nothing sent, nothing written) is told apart from
   * a failure once the statement was on its way (it may have committed, or may yet).
   */
  private async send(holds: number, statement: (client: PoolClient) => Promise<void>): Promise<HoldWriteOutcome> {
    let sent = false;
    try {
      await withClient(this.pool(), (client) => {
        sent = true;
        this.counts.statements++;
        this.counts.holds += holds;
        return withDeadline(statement(client));
      });
      return { ok: true };
    } catch (error) {
      return { ok: false, error, sent };
    }
  }
}

/** What checkout needs from its room: its storage, and the orchestration that follows every change. */
export interface CheckoutHost {
  readonly ctx: DurableObjectState;
  readonly env: Env;
  /** Read at each use: tests swap the room's SqlStorage for a recorder. */
  readonly sql: SqlStorage;
  readonly concertId: string;
  db(): Pool;
  config(): QueueConfig;
  soldOut(): boolean;
  /** A synchronous change of the room's state (see ConcertRoom.change); its offers come back through `queueOffers`. */
  change<T extends { touched: Touched }>(work: () => T): T;
  /** After a change: writes queued offers (through `writeOffers`), re-arms the alarm, tells the world. */
  settle(): Promise<void>;
  /** Moves the line forward to `now`; inside `change()`. */
  advance(now: number): { admitted: number; expired: number[] };
  reconcile(): Promise<ReconcileReport | NotFound>;
  sendToPlace(seq: number, message: string): void;
}

export class Checkout {
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
  mayHaveOrphans = false;
  /** Waitlist offers decided by a change and not yet written to Postgres; the room's `settle()` writes them. */
  private readonly offerQueue: WaitlistOffer[] = [];
  private readonly host: CheckoutHost;
  /** Every hold's Postgres write, fans' own and offers alike, goes through this group commit. */
  readonly holdWrites: HoldWrites;

  constructor(host: CheckoutHost) {
    this.host = host;
    this.holdWrites = new HoldWrites(() => host.db(), () => host.concertId);
  }

  private get sql(): SqlStorage {
    return this.host.sql;
  }
  private get env(): Env {
    return this.host.env;
  }
  private get ctx(): DurableObjectState {
    return this.host.ctx;
  }
  private db(): Pool {
    return this.host.db();
  }
  private config(): QueueConfig {
    return this.host.config();
  }
  private soldOut(): boolean {
    return this.host.soldOut();
  }
  private change<T extends { touched: Touched }>(work: () => T): T {
    return this.host.change(work);
  }
  private settle(): Promise<void> {
    return this.host.settle();
  }
  private advance(now: number): { admitted: number; expired: number[] } {
    return this.host.advance(now);
  }
  private reconcile(): Promise<ReconcileReport | NotFound> {
    return this.host.reconcile();
  }

  /** Offers a change decided: in `writing` from the moment they exist, so none is taken for a reset's orphan. */
  queueOffers(offers: readonly WaitlistOffer[]): void {
    for (const offer of offers) {
      this.writing.add(offer.reservationId);
      this.offerQueue.push(offer);
    }
  }

  /**
   * Holds 1–4 seats all-or-nothing for an admitted user. The room decides and marks the seats in one
   * synchronous transaction, then writes the reservation to Postgres; if Postgres refuses or is
   * unreachable the seats are released again and nothing stays behind.
   */
  async hold(request: { userId: string; seq: number; jti: string; seatNumbers: number[]; claim?: IdempotencyClaim }): Promise<HoldResult> {
    const now = Date.now();
    const concertId = this.host.concertId;
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
    const written = await this.holdWrites.write(newHold, request.claim && { claim: request.claim, status: 201, body });
    if (!written.ok) {
      const { error, sent } = written;
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
        logJson('error', 'payment failed', { concertId: this.host.concertId, reservationId: request.reservationId, ...describeError(error) });
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
  async resolvePaymentLater(request: { userId: string; reservationId: string; fence: number | null }): Promise<void> {
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
      logJson('error', 'refund failed', { concertId: this.host.concertId, reservationId: request.reservationId, ...describeError(error) });
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
  waitlistEntry(userId: string): WaitlistEntryResult {
    const row = findEntry(this.sql, userId);
    if (!row) return { ok: false, reason: 'WAITLIST_ENTRY_NOT_FOUND' };
    return { ok: true, entry: entryView(this.sql, row) };
  }

  /**
   * Takes a fan off the waitlist. An open offer is cancelled like the fan's own hold (Postgres first),
   * and its seats go to the next entry. An entry already ended stays as it is.
   */
  async leaveWaitlist(userId: string): Promise<WaitlistLeaveResult> {
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
  async writeOffers(): Promise<void> {
    const concertId = this.host.concertId;
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
    this.host.sendToPlace(place.seq, JSON.stringify(message));
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
  async expireHolds(now: number): Promise<number> {
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
  async settleOrphans(): Promise<void> {
    if (!this.mayHaveOrphans) return;
    const orphans = pendingHolds(this.sql).filter((hold) => !this.writing.has(hold.reservationId));
    if (orphans.length === 0) {
      this.mayHaveOrphans = false;
      return;
    }
    const sql = createSql(this.env);
    const concertId = this.host.concertId;
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
  hasOrphans(): boolean {
    if (!this.mayHaveOrphans) return false;
    this.mayHaveOrphans = pendingHolds(this.sql).some((hold) => !this.writing.has(hold.reservationId));
    return this.mayHaveOrphans;
  }
}
