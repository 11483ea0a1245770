import { env } from 'cloudflare:workers';
import type { QueueConfig } from '../../src/durable-objects/concert-room/model.ts';
import type { RoomSeatStatus } from '../../src/durable-objects/concert-room/seats.ts';
import type { ConcertStats } from '../../src/routes/admin.ts';
import { signUserToken } from '../../src/lib/auth.ts';
import { api } from './api.ts';

export const adminHeaders = () => ({ Authorization: `Bearer ${env.ADMIN_TOKEN}` });

const DAY_MS = 86_400_000;

/**
 * The UTC calendar day `days` from now, as `YYYY-MM-DD`. Every concert date in the suite comes from
 * here (never a literal), so no test stops passing once the calendar reaches some fixed day.
 */
export function dayFromNow(days: number): string {
  return new Date(Date.now() + days * DAY_MS).toISOString().slice(0, 10);
}

/**
 * A day of its own, one to eleven years ahead, for a test that reads concerts by date and must not
 * meet another test's concert there.
 */
export function uniqueFutureDay(): string {
  return dayFromNow(365 + Math.floor(Math.random() * 3_650));
}

/** How far ahead the helpers date a concert: well past any cut-off a test sets (the default is 24 h). */
export const DEFAULT_CONCERT_DAYS_AHEAD = 30;

export interface TestConcert {
  id: string;
  title: string;
  date: string;
  salesOpenAt: string;
  seatCount: number;
}

/**
 * Creates a concert through the admin API. By default sales open in an hour, so joins queue up
 * until a test runs the room's alarm; pass `salesOpenAt` to change that. The pre-queue keeps arrival
 * order unless `queue.openingOrder` says otherwise: the suites that check admission mechanics count
 * places by arrival, and the draw (the API's default) has its own (test/durable-objects/opening-draw.test.ts).
 */
export async function createConcert(
  options: {
    seats?: number;
    price?: number;
    salesOpenAt?: Date;
    date?: string;
    queue?: Partial<QueueConfig>;
    refunds?: { fee?: number; cutoffHours?: number };
  } = {},
): Promise<TestConcert> {
  const salesOpenAt = options.salesOpenAt ?? new Date(Date.now() + 3_600_000);
  const date = options.date ?? dayFromNow(DEFAULT_CONCERT_DAYS_AHEAD);
  const response = await api('/admin/concerts', {
    method: 'POST',
    headers: adminHeaders(),
    json: {
      title: `Test concert ${crypto.randomUUID().slice(0, 8)}`,
      venue: 'Test Hall',
      date,
      startsAt: `${date}T20:00:00Z`,
      salesOpenAt: salesOpenAt.toISOString(),
      seats: { count: options.seats ?? 50, price: options.price ?? 500 },
      queue: { openingOrder: 'fifo', ...options.queue },
      ...(options.refunds ? { refunds: options.refunds } : {}),
    },
  });
  if (response.status !== 201) throw new Error(`create concert failed: ${response.status} ${await response.text()}`);
  return response.json<TestConcert>();
}

export const room = (concertId: string) => env.CONCERT_ROOM.getByName(concertId);

/** A user token signed directly (faster than the dev-token endpoint for a thousand users). */
export async function tokenFor(userId: string): Promise<string> {
  return (await signUserToken(env.AUTH_SECRET, userId)).token;
}

export interface JoinBody {
  token: string;
  position: number;
  status: string;
  estimatedWaitSeconds: number;
  randomizedAtOpening?: true;
}

/** POST /queue/token as `userId`; returns the raw response. */
export async function join(concertId: string, userId: string, userToken?: string): Promise<Response> {
  return api('/queue/token', {
    method: 'POST',
    headers: { Authorization: `Bearer ${userToken ?? (await tokenFor(userId))}` },
    json: { concertId },
  });
}

export async function joinOk(concertId: string, userId: string): Promise<JoinBody> {
  const response = await join(concertId, userId);
  if (response.status !== 201) throw new Error(`join failed: ${response.status} ${await response.text()}`);
  return response.json<JoinBody>();
}

export async function queueStatus(queueToken: string): Promise<Response> {
  return api('/queue/status', { headers: { 'Queue-Token': queueToken } });
}

export async function stats(concertId: string) {
  const response = await api(`/admin/concerts/${concertId}/stats`, { headers: adminHeaders() });
  if (response.status !== 200) throw new Error(`stats failed: ${response.status} ${await response.text()}`);
  return response.json<ConcertStats>();
}

export async function patchQueue(concertId: string, patch: Partial<QueueConfig>): Promise<Response> {
  return api(`/admin/concerts/${concertId}/queue`, { method: 'PATCH', headers: adminHeaders(), json: patch });
}

export interface AdmittedUser {
  userId: string;
  userToken: string;
  queueToken: string;
}

/** A user who joined `concertId` and was admitted at once (the concert must be open with room). */
export async function admittedUser(concertId: string, prefix = 'fan'): Promise<AdmittedUser> {
  const userId = `${prefix}-${crypto.randomUUID()}`;
  const userToken = await tokenFor(userId);
  const response = await join(concertId, userId, userToken);
  if (response.status !== 201) throw new Error(`join failed: ${response.status} ${await response.text()}`);
  const body = await response.json<JoinBody>();
  if (body.status !== 'admitted') throw new Error(`expected admission, got ${body.status}`);
  return { userId, userToken, queueToken: body.token };
}

/** An open concert whose every joiner is admitted at once. */
export function openConcert(
  options: { seats?: number; price?: number; date?: string; queue?: Partial<QueueConfig>; refunds?: { fee?: number; cutoffHours?: number } } = {},
) {
  return createConcert({
    ...options,
    salesOpenAt: new Date(Date.now() - 60_000),
    queue: { admitPerWindow: 5000, ...options.queue },
  });
}

/** POST /reservations as `user` for `seatNumbers`. */
export function hold(concertId: string, user: AdmittedUser, seatNumbers: number[], headers: Record<string, string> = {}): Promise<Response> {
  return api('/reservations', {
    method: 'POST',
    headers: { Authorization: `Bearer ${user.userToken}`, 'Queue-Token': user.queueToken, ...headers },
    json: { concertId, seatNumbers },
  });
}

/**
 * The room's own seat map (straight from the ConcertRoom, not the edge-cached API, which may be up
 * to a second old): what invariant checks compare with Postgres.
 */
export async function seatMap(concertId: string, status?: RoomSeatStatus): Promise<{ seatNumber: number; section: string; price: number; status: string }[]> {
  const seats = await room(concertId).seats(status);
  if (!Array.isArray(seats)) throw new Error(`seat map failed: ${seats.reason}`);
  return seats;
}
