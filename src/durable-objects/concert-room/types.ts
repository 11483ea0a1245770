// What the room's RPC methods answer, shared by the room, its checkout and the Worker's services.
import type { PaymentOutcome, RefundOutcome } from '../../db/reservations-repo.ts';
import type { InclusionProof } from './draw-proof.ts';
import type { HeldSeat } from './holds.ts';
import type { AdmissionSnapshot, OpeningOrder, QueueConfig, QueueStatus } from './model.ts';
import type { RoomSeatStatus, SeatDifference } from './seats.ts';
import type { WaitlistEntryView, WaitlistStatus } from './waitlist.ts';
import type { EntryRefusal } from './entry.ts';

export type { EntryRefusal } from './entry.ts';

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

export type JoinResult = ({ ok: true; snapshot: AdmissionSnapshot } & JoinPlace) | NotFound | EntryRefusal;

/** Each fan's place, or why the room refused them (issue 20: a proof of work missing, reused or too cheap). */
export type JoinBatchResult = { ok: true; places: (JoinPlace | EntryRefusal)[]; snapshot: AdmissionSnapshot } | NotFound;

export interface RoomRequestCounts {
  /** Single joins (straight from a Worker). */
  join: number;
  /** Batches from lobbies, and the joins they carried. */
  joinBatch: number;
  joinedInBatches: number;
  /** Reconciliations asked for (admin, start-up, a write that lost its reply), and those that ran. */
  reconcile: number;
  reconcileRuns: number;
  /** Hold statements sent to Postgres (group commit, checkout.ts) and the holds they carried. */
  holdStatements: number;
  holdsWritten: number;
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
  /** Merkle root of the drawn places' salted membership (draw-membership.ts); null before the draw or when nobody was drawn. */
  membershipRoot: string | null;
}

/** The drawn pre-queue's leaves in place order (see draw-membership.ts). */
export type MembershipResult = { ok: true; prequeueSize: number; root: string; leaves: string[] } | NotFound | { ok: false; reason: 'DRAW_PENDING' };

export type InclusionProofResult =
  | { ok: true; inPrequeue: true; proof: InclusionProof }
  | { ok: true; inPrequeue: false; seq: number; rank: number; prequeueSize: number | null }
  | NotFound
  | { ok: false; reason: 'INVALID_QUEUE_TOKEN' | 'DRAW_PENDING' };

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
export interface Touched {
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