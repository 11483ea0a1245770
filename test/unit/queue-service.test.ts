import { describe, expect, it } from 'vitest';
import type { StatusResult } from '../../src/durable-objects/concert-room/index.ts';
import type { AdmissionSnapshot } from '../../src/durable-objects/concert-room/model.ts';
import { certainlyWaiting, estimateWaitSeconds, waitingStatus } from '../../src/durable-objects/concert-room/model.ts';
import { queueStatus, type QueueDeps, type RoomStub } from '../../src/services/queue.ts';

const snap = (over: Partial<AdmissionSnapshot> = {}): AdmissionSnapshot => ({
  watermark: 250,
  soldOut: false,
  paused: false,
  salesOpenAt: 1_000_000,
  windowStartedAt: 1_000_000,
  admittedInWindow: 250,
  admitPerWindow: 250,
  windowSeconds: 10,
  openingOrder: 'fifo',
  prequeueSize: 0,
  shuffleSeed: null,
  lobbyShards: 1,
  ...over,
});

const claims = (seq: number) => ({ userId: 'u', concertId: 'c', seq, jti: 'j' });

/** A room stub that records calls; unit tests may stub, the integration suites use the real room. */
function fakeRoom(answer: StatusResult) {
  const calls: number[] = [];
  const room = { status: (seq: number) => (calls.push(seq), Promise.resolve(answer)) } as unknown as RoomStub;
  return { room, calls };
}

const deps = (room: RoomStub, cached?: AdmissionSnapshot): QueueDeps & { cached: AdmissionSnapshot | undefined } => ({
  room,
  queueTokenSecret: 'x'.repeat(32),
  publish: () => {},
  cached,
});

describe('queueStatus', () => {
  it('answers a waiting place from the edge snapshot without asking the room', async () => {
    const { room, calls } = fakeRoom({ ok: false, reason: 'CONCERT_NOT_FOUND' });
    const status = await queueStatus(deps(room, snap()), claims(260), 1_002_000);
    expect(status).toEqual({ status: 'waiting', position: 10, estimatedWaitSeconds: 8, sessionExpiresAt: null });
    expect(calls).toEqual([]);
  });

  it('asks the room for a place the rest of the window may have reached since the snapshot', async () => {
    const answer = { status: 'admitted', position: 0, estimatedWaitSeconds: 0, sessionExpiresAt: '2026-01-01T00:00:00.000Z' } as const;
    const { room, calls } = fakeRoom({ ok: true, status: answer, snapshot: snap() });
    expect(await queueStatus(deps(room, snap({ admittedInWindow: 200 })), claims(260), 1_002_000)).toEqual(answer);
    expect(calls).toEqual([260]);
  });

  it('asks the room for a place at or below the watermark', async () => {
    const answer = { status: 'admitted', position: 0, estimatedWaitSeconds: 0, sessionExpiresAt: '2026-01-01T00:00:00.000Z' } as const;
    const { room, calls } = fakeRoom({ ok: true, status: answer, snapshot: snap() });
    expect(await queueStatus(deps(room, snap()), claims(250))).toEqual(answer);
    expect(calls).toEqual([250]);
  });

  it('asks the room when nothing is cached', async () => {
    const { room, calls } = fakeRoom({ ok: false, reason: 'INVALID_QUEUE_TOKEN' });
    await expect(queueStatus(deps(room), claims(900))).rejects.toMatchObject({ status: 401, code: 'INVALID_QUEUE_TOKEN' });
    expect(calls).toEqual([900]);
  });
});

describe('certainlyWaiting', () => {
  it('holds beyond what the rest of the window can admit, and not within it', () => {
    const halfSpent = snap({ admittedInWindow: 100 });
    expect(certainlyWaiting(250 + 150, halfSpent, 1_005_000)).toBe(false);
    expect(certainlyWaiting(250 + 151, halfSpent, 1_005_000)).toBe(true);
  });

  it('gives up once the window may have ended, and at opening', () => {
    expect(certainlyWaiting(900, snap(), 1_009_999)).toBe(true);
    expect(certainlyWaiting(900, snap(), 1_010_000)).toBe(false);
    const beforeOpening = snap({ windowStartedAt: null, watermark: 0, admittedInWindow: 0 });
    expect(certainlyWaiting(1, beforeOpening, 999_999)).toBe(true);
    expect(certainlyWaiting(1, beforeOpening, 1_000_000)).toBe(false);
  });

  it('holds for everyone behind the watermark while paused or sold out, and never at or below it', () => {
    expect(certainlyWaiting(251, snap({ paused: true, admittedInWindow: 0 }), 2_000_000)).toBe(true);
    expect(certainlyWaiting(251, snap({ soldOut: true, admittedInWindow: 0 }), 2_000_000)).toBe(true);
    expect(certainlyWaiting(250, snap({ paused: true }), 1_000_000)).toBe(false);
  });
});

describe('estimateWaitSeconds', () => {
  it('counts whole windows ahead less the time spent in the current one', () => {
    expect(estimateWaitSeconds(1, snap(), 1_000_000)).toBe(10);
    expect(estimateWaitSeconds(250, snap(), 1_004_000)).toBe(6);
    expect(estimateWaitSeconds(251, snap(), 1_004_000)).toBe(16);
  });

  it('adds the time until sales open before the first window', () => {
    expect(estimateWaitSeconds(1, snap({ windowStartedAt: null }), 940_000)).toBe(60);
    expect(estimateWaitSeconds(251, snap({ windowStartedAt: null }), 940_000)).toBe(70);
  });

  it('reports sold_out, with the waitlist open, instead of a wait once nothing is left', () => {
    expect(waitingStatus(300, snap({ soldOut: true }), 0)).toMatchObject({ status: 'sold_out', estimatedWaitSeconds: 0, waitlist: 'open' });
    expect(waitingStatus(300, snap({ soldOut: false }), 0)).not.toHaveProperty('waitlist');
  });
});
