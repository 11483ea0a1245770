import { insertConcert, type ConcertRow } from '../db/concerts-repo.ts';
import type { HttpDb } from '../db/http.ts';
import { DEFAULT_QUEUE_CONFIG, type QueueConfig } from '../durable-objects/concert-room/model.ts';
import { validationFailed } from '../lib/errors.ts';
import { describeError, logJson } from '../lib/logging.ts';
import type { RoomStub } from './queue.ts';

export interface CreateConcertInput {
  title: string;
  venue: string;
  date: string;
  startsAt: string;
  salesOpenAt: string;
  seats?: { count: number; price: number } | undefined;
  sections?: { name: string; count: number; price: number }[] | undefined;
  queue?: Partial<QueueConfig> | undefined;
  entry?: QueueConfig['entry'] | undefined;
  refunds?: { fee?: number | undefined; cutoffHours?: number | undefined } | undefined;
}

/** The same problem shape as a schema failure (see validationHook), for a rule across fields. */
const invalidField = (path: string, message: string) => validationFailed(`${path}: ${message}`, { errors: [{ path, message }] });

/** Total seats one concert may have; the room keeps them all in one SQLite table. */
export const MAX_SEATS_PER_CONCERT = 100_000;

export function concertView(row: ConcertRow) {
  return {
    id: row.id,
    title: row.title,
    venue: row.venue,
    date: row.date,
    startsAt: row.startsAt.toISOString(),
    salesOpenAt: row.salesOpenAt.toISOString(),
    seatCount: row.seatCount,
  };
}

/**
 * Writes the concert and its seats to Postgres (one transaction, one HTTP batch), then warms its room. The room
 * loads itself from Postgres on first use anyway, so a failed warm-up loses nothing.
 */
export async function createConcert(deps: { db: HttpDb; roomFor: (id: string) => RoomStub }, input: CreateConcertInput) {
  const sections = input.sections ?? (input.seats ? [{ name: 'general', ...input.seats }] : []);
  if ((input.seats ? 1 : 0) + (input.sections ? 1 : 0) !== 1) throw validationFailed('Give exactly one of seats or sections');
  const total = sections.reduce((sum, s) => sum + s.count, 0);
  if (total > MAX_SEATS_PER_CONCERT) throw validationFailed(`A concert has at most ${MAX_SEATS_PER_CONCERT} seats`);
  if (new Set(sections.map((s) => s.name)).size !== sections.length) throw validationFailed('Section names must be distinct');
  const startsAt = new Date(input.startsAt);
  const salesOpenAt = new Date(input.salesOpenAt);
  // A show already begun could sell nothing anyone can attend, and its refund deadline has passed.
  if (startsAt.getTime() <= Date.now()) throw invalidField('startsAt', 'must be in the future');
  if (salesOpenAt.getTime() >= startsAt.getTime()) throw invalidField('salesOpenAt', 'must be before startsAt');
  const queue = { ...DEFAULT_QUEUE_CONFIG, ...input.queue, ...(input.entry ? { entry: input.entry } : {}) };
  const row = await insertConcert(deps.db, {
    title: input.title,
    venue: input.venue,
    date: input.date,
    startsAt,
    salesOpenAt,
    queueConfig: { ...queue },
    refundFee: input.refunds?.fee ?? 0,
    refundCutoffHours: input.refunds?.cutoffHours ?? 24,
    sections,
  });
  try {
    await deps.roomFor(row.id).initialize();
  } catch (error) {
    logJson('warn', 'room warm-up failed; it will load on first use', { concertId: row.id, ...describeError(error) });
  }
  return { ...concertView(row), queue };
}
