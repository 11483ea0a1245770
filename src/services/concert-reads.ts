// The reads every fan refreshes (seat map, concert details, the seed's by-date call), served from
// the edge cache; a miss costs one room read and never a Postgres connection (DESIGN.md §5).
import type { SeatMapView } from '../durable-objects/concert-room/index.ts';
import type { RoomSeatStatus } from '../durable-objects/concert-room/seats.ts';
import { cachedRoomRead, type EdgeBody } from '../lib/edge-cache.ts';
import { AppError } from '../lib/errors.ts';
import { concertNotFound, type RoomStub } from './queue.ts';

export interface RoomReadDeps {
  roomFor: (concertId: string) => RoomStub;
  /** Keeps a background cache write alive after the response (executionCtx.waitUntil). */
  defer: (promise: Promise<unknown>) => void;
}

async function seatMapRead(deps: RoomReadDeps, concertId: string, view: SeatMapView, wrap: (seats: string, count: number) => string) {
  const read = await cachedRoomRead(
    concertId,
    `seats/${concertId}/${view}`,
    async () => {
      const result = await deps.roomFor(concertId).seatMapJson(view);
      return result.ok ? wrap(result.seats, result.count) : undefined;
    },
    deps.defer,
  );
  if (!read) throw concertNotFound(concertId);
  return read;
}

/** `GET /concerts/:id/seats` as a JSON string: `{concertId, seats}`. */
export function seatMap(deps: RoomReadDeps, concertId: string, status: RoomSeatStatus | undefined): Promise<EdgeBody> {
  // The seats array is spliced in as the room serialized it: a 50,000-seat map is never re-parsed here.
  return seatMapRead(deps, concertId, status ?? 'all', (seats) => `{"concertId":${JSON.stringify(concertId)},"seats":${seats}}`);
}

/** The seed's `GET /reservations/:date` body for one concert: `{date, concertId, available, seats}`. */
export function availableSeats(deps: RoomReadDeps, date: string, concertId: string): Promise<EdgeBody> {
  return seatMapRead(
    deps,
    concertId,
    'available-bare',
    (seats, count) => `{"date":${JSON.stringify(date)},"concertId":${JSON.stringify(concertId)},"available":${count},"seats":${seats}}`,
  );
}

/** `GET /concerts/:id`: the concert with live counts `{available, held, sold}`. */
export async function concertDetails(deps: RoomReadDeps, concertId: string): Promise<EdgeBody> {
  const read = await cachedRoomRead(
    concertId,
    `concert/${concertId}`,
    async () => {
      const result = await deps.roomFor(concertId).details();
      return result.ok ? JSON.stringify({ ...result.concert, counts: result.counts }) : undefined;
    },
    deps.defer,
  );
  if (!read) throw concertNotFound(concertId);
  return read;
}

/**
 * How long a drawn opening is served from the edge: once made, the draw never changes (the order is
 * fixed with it, OPENING_ORDER_FIXED), so it may be kept far longer than the live reads. @default 300
 */
export const OPENING_TTL_SECONDS = 300;

/**
 * `GET /concerts/:id/opening`: the pre-queue draw. Like the other public reads, a made-up id is
 * remembered as missing and never reaches a room twice; the answer is stored only once the draw is
 * made, because before it the admin may still switch the order (and the seed is still secret).
 */
export async function openingDraw(deps: RoomReadDeps, concertId: string): Promise<EdgeBody> {
  let drawn = false;
  const read = await cachedRoomRead(
    concertId,
    `opening/${concertId}`,
    async () => {
      const opening = await deps.roomFor(concertId).opening();
      if (!opening.ok) return undefined;
      const { ok: _ok, salesOpenAt, ...draw } = opening;
      drawn = draw.prequeueSize !== null;
      return JSON.stringify({ concertId, salesOpenAt: new Date(salesOpenAt).toISOString(), ...draw });
    },
    deps.defer,
    { ttlSeconds: OPENING_TTL_SECONDS, keep: () => drawn },
  );
  if (!read) throw concertNotFound(concertId);
  return read;
}

/** Before the draw there is no membership to audit (409 DRAW_PENDING). */
export const drawPending = () =>
  new AppError(409, 'DRAW_PENDING', 'Draw pending', 'The pre-queue is drawn when sales open; its membership is published then');

/**
 * `GET /concerts/:id/opening/membership`: every drawn place's leaf, in place order, and their root
 * (src/lib/draw-membership.ts). Fixed once drawn, so edge-cached like the opening.
 */
export async function openingMembership(deps: RoomReadDeps, concertId: string): Promise<EdgeBody> {
  let pending = false;
  const read = await cachedRoomRead(
    concertId,
    `opening-membership/${concertId}`,
    async () => {
      const membership = await deps.roomFor(concertId).openingMembership();
      if (!membership.ok) {
        pending = membership.reason === 'DRAW_PENDING';
        return pending ? '' : undefined;
      }
      const { ok: _ok, ...published } = membership;
      return JSON.stringify({ concertId, ...published });
    },
    deps.defer,
    { ttlSeconds: OPENING_TTL_SECONDS, keep: () => !pending },
  );
  if (pending) throw drawPending();
  if (!read) throw concertNotFound(concertId);
  return read;
}
