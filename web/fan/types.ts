import type { QueueStatus } from '../lib/queue-feed.ts';

/** The API's shapes the fan page reads (DESIGN.md §2; the OpenAPI document at /docs has them all). */

export interface Concert {
  id: string;
  title: string;
  venue: string;
  date: string;
  startsAt: string;
  salesOpenAt: string;
  seatCount: number;
}

export interface ConcertDetails extends Concert {
  counts: { available: number; held: number; sold: number };
}

/** `GET /concerts/:id/opening`: the pre-queue draw's commitment, and its seed once sales have opened. */
export interface Opening {
  order: 'shuffle' | 'fifo';
  salesOpenAt: string;
  commitment: string;
  seed: string | null;
  prequeueSize: number | null;
}

export interface Seat {
  seatNumber: number;
  section: string;
  price: number;
  status: 'available' | 'held' | 'sold';
}

export interface Hold {
  reservationId: string;
  seats: Omit<Seat, 'status'>[];
  amount: number;
  expiresAt: string;
}

export interface Payment {
  paymentId: string;
  amount: number;
  balance: number;
}

export interface Session {
  userId: string;
  token: string;
}

/** `GET /concerts/:id/waitlist/me`. */
export interface WaitlistEntry {
  concertId: string;
  seats: number;
  together: boolean;
  status: 'waiting' | 'offered' | 'accepted' | 'expired' | 'left';
  position: number;
  joinedAt: string;
  reason?: 'OFFER_EXPIRED' | 'HOLD_LIMIT';
  offer?: Hold;
  reservationId?: string;
}

/** The fan's way through one concert's sale, shown on its page. */
export type Step =
  | { name: 'waiting'; queueToken: string; first: QueueStatus }
  | { name: 'seats'; queueToken: string; sessionExpiresAt: string | null }
  | { name: 'checkout'; queueToken: string | null; hold: Hold; fromWaitlist?: boolean }
  | { name: 'confirmed'; hold: Hold; payment: Payment };

/** No seat available or held: the line has sold out and the waitlist is open (DESIGN.md §3). */
export const isSoldOut = (details: ConcertDetails): boolean => details.counts.available === 0 && details.counts.held === 0;
