// Repairs the room from Postgres (Postgres wins). The read happens with awaits in between, so
// anything a request changed meanwhile is left alone: the next reconciliation will see it settled.
import type { RoomSource } from '../../db/room-source.ts';
import { completeSession } from './line.ts';
import { reconcileSeats, seatStates, type SeatDifference, type SeatState } from './seats.ts';

/** What the room looked like when the Postgres read began. */
export interface RoomSnapshot {
  takenAt: number;
  seats: Map<number, SeatState>;
  pendingHolds: Set<string>;
}

export function takeSnapshot(sql: SqlStorage, now: number): RoomSnapshot {
  return { takenAt: now, seats: seatStates(sql), pendingHolds: pendingHolds(sql) };
}

function pendingHolds(sql: SqlStorage): Set<string> {
  return new Set(
    sql
      .exec<{ reservation_id: string }>(`SELECT reservation_id FROM holds WHERE status = 'pending'`)
      .toArray()
      .map((row) => row.reservation_id),
  );
}

type HoldRow = { reservation_id: string; status: string; created_at: number };

const sameSeat = (a: SeatState | undefined, b: SeatState | undefined) => a?.status === b?.status && a?.reservationId === b?.reservationId;

/**
 * Applies Postgres's view to seats and holds. A hold Postgres shows paid that the room did not know
 * as paid (the payment's reply, or the room itself, was lost after the commit) also ends its buyer's
 * session, as the payment would have: `ended` lists the places whose session that ended. Call inside
 * transactionSync.
 */
export function reconcileRoom(sql: SqlStorage, source: RoomSource, before: RoomSnapshot): { differences: SeatDifference[]; ended: number[] } {
  const pendingNow = pendingHolds(sql);
  const inFlight = (id: string | null | undefined) => !!id && (pendingNow.has(id) || before.pendingHolds.has(id));
  const differences = reconcileSeats(
    sql,
    source.seats,
    (seatNumber, current) => !sameSeat(before.seats.get(seatNumber), current) || inFlight(current?.reservationId),
  );

  const live = new Map(source.reservations.map((r) => [r.id, r]));
  // Only the room's live holds are read whole (holds_live); a hold that ended here but is live in
  // Postgres is looked up by its id. The holds table keeps every hold the room ever made.
  const known = new Map(
    sql
      .exec<HoldRow>(`SELECT reservation_id, status, created_at FROM holds WHERE status IN ('pending', 'held', 'confirmed')`)
      .toArray()
      .map((row) => [row.reservation_id, row]),
  );
  const holdOf = (id: string) =>
    known.get(id) ?? sql.exec<HoldRow>(`SELECT reservation_id, status, created_at FROM holds WHERE reservation_id = ?`, id).toArray()[0];
  const paidNow: string[] = [];
  for (const reservation of source.reservations) {
    const hold = holdOf(reservation.id);
    if (reservation.status === 'confirmed' && hold?.status !== 'confirmed' && !inFlight(reservation.id)) paidNow.push(reservation.userId);
    if (!hold) {
      // Written to Postgres but unknown here (e.g. a reply lost after commit): adopt it so that the
      // alarm expires it or the payment confirms it.
      sql.exec(
        `INSERT INTO holds (reservation_id, user_id, seq, amount, expires_at, status, created_at) VALUES (?, ?, 0, ?, ?, ?, ?)`,
        reservation.id,
        reservation.userId,
        reservation.amount,
        reservation.expiresAt,
        reservation.status,
        reservation.createdAt,
      );
    } else if (hold.status !== reservation.status && !inFlight(reservation.id)) {
      sql.exec(`UPDATE holds SET status = ? WHERE reservation_id = ?`, reservation.status, reservation.id);
    }
  }
  for (const [id, hold] of known) {
    const settledBeforeRead = hold.created_at < before.takenAt && !inFlight(id);
    if (settledBeforeRead && (hold.status === 'held' || hold.status === 'confirmed') && !live.has(id)) {
      sql.exec(`UPDATE holds SET status = 'expired' WHERE reservation_id = ?`, id);
    }
  }
  const ended = paidNow.map((userId) => completeSession(sql, userId, before.takenAt)).filter((seq) => seq !== undefined);
  return { differences, ended };
}

/**
 * One reconciliation at a time per room. A trigger during a run may be about a change the run's
 * Postgres read missed, so it needs a run that starts afterwards; one such follow-up answers every
 * trigger until it starts. Reads of the whole seat map, one after another, never pile up however
 * many writes lose their replies.
 */
export class CoalescedRuns<T> {
  private running: Promise<T> | undefined;
  private followUp: Promise<T> | undefined;
  private readonly run: () => Promise<T>;
  private readonly onStart: () => void;

  constructor(run: () => Promise<T>, onStart: () => void) {
    this.run = run;
    this.onStart = onStart;
  }

  request(): Promise<T> {
    if (this.followUp) return this.followUp;
    const running = this.running;
    if (!running) return this.start();
    const followUp = running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.followUp = undefined;
        return this.start();
      });
    this.followUp = followUp;
    return followUp;
  }

  private start(): Promise<T> {
    this.onStart();
    const run = this.run().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}
