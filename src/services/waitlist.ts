import type { WaitlistEntryView } from '../durable-objects/concert-room/waitlist.ts';
import { AppError, notFound } from '../lib/errors.ts';
import { concertNotFound, type RoomStub } from './queue.ts';
import { requestInProgress } from './reservations.ts';

/** A waitlist entry as the API shows it. */
export type WaitlistEntry = { concertId: string } & WaitlistEntryView;

export const waitlistEntryNotFound = (concertId: string) =>
  notFound('WAITLIST_ENTRY_NOT_FOUND', `You are not on the waitlist of concert ${concertId}`);

const waitlistNotOpen = () =>
  new AppError(
    409,
    'WAITLIST_NOT_OPEN',
    'Waitlist not open',
    'This concert has not sold out: seats are available or held, and any that come back go to the fans the line admits. ' +
      'Join the line (POST /queue/token). The waitlist opens when no seat is available or held.',
  );

const holdLimit = (limit: number, owned: number) =>
  new AppError(422, 'HOLD_LIMIT', 'Hold limit reached', `At most ${limit} seats per person; you have ${owned}`, {
    extensions: { limit, owned },
  });

/**
 * Puts `userId` on the concert's waitlist for `seats` seats (adjacent if `together`), or returns the
 * entry they have: `created` says which (201 or 200).
 */
export async function joinWaitlist(
  deps: { room: RoomStub },
  input: { userId: string; concertId: string; seats: number; together: boolean },
): Promise<{ created: boolean; entry: WaitlistEntry }> {
  const result = await deps.room.joinWaitlist({ userId: input.userId, seats: input.seats, together: input.together });
  if (result.ok) return { created: result.created, entry: { concertId: input.concertId, ...result.entry } };
  switch (result.reason) {
    case 'CONCERT_NOT_FOUND':
      throw concertNotFound(input.concertId);
    case 'WAITLIST_NOT_OPEN':
      throw waitlistNotOpen();
    case 'HOLD_LIMIT':
      throw holdLimit(result.limit, result.owned);
  }
}

/** The caller's own entry: its status, its position while waiting, its offer while offered. */
export async function readWaitlistEntry(deps: { room: RoomStub }, userId: string, concertId: string): Promise<WaitlistEntry> {
  const result = await deps.room.waitlistEntry(userId);
  if (result.ok) return { concertId, ...result.entry };
  if (result.reason === 'CONCERT_NOT_FOUND') throw concertNotFound(concertId);
  throw waitlistEntryNotFound(concertId);
}

/** Takes the caller off the waitlist; an open offer is cancelled and its seats go to the next fan. */
export async function leaveWaitlist(deps: { room: RoomStub }, userId: string, concertId: string): Promise<void> {
  const result = await deps.room.leaveWaitlist(userId);
  if (result.ok) return;
  switch (result.reason) {
    case 'CONCERT_NOT_FOUND':
      throw concertNotFound(concertId);
    case 'WAITLIST_ENTRY_NOT_FOUND':
      throw waitlistEntryNotFound(concertId);
    case 'ALREADY_PAID':
      throw new AppError(409, 'ALREADY_PAID', 'Already paid', 'You paid for the seats you were offered; refund them instead');
    case 'REQUEST_IN_PROGRESS':
      throw requestInProgress('Your offer is still being written; retry shortly');
  }
}
