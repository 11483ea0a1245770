import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { rankOfPlace, shuffleCommitment } from '../../src/lib/opening-shuffle.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { createConcert, joinOk, patchQueue, queueStatus, room, stats, type JoinBody } from '../helpers/concerts.ts';
import { expectProblem } from '../helpers/problem.ts';
import { openQueueSocket } from '../helpers/queue-socket.ts';
import { advanceRoomClock } from '../helpers/room-time.ts';

/*
 * The pre-queue draw (issue 13): fans who join before sales open are placed at random at opening,
 * by a permutation anyone can recompute from the seed the room committed to before opening and
 * reveals after; later joiners go behind them in arrival order. FIFO stays available per concert.
 */

interface Opening {
  concertId: string;
  order: 'shuffle' | 'fifo';
  salesOpenAt: string;
  commitment: string;
  seed: string | null;
  prequeueSize: number | null;
}

interface Status {
  status: string;
  position: number;
  estimatedWaitSeconds: number;
  randomizedAtOpening?: true;
}

async function opening(concertId: string): Promise<Opening> {
  const response = await api(`/concerts/${concertId}/opening`);
  expect(response.status).toBe(200);
  return response.json<Opening>();
}

async function statusOf(token: string): Promise<Status> {
  const response = await queueStatus(token);
  expect(response.status).toBe(200);
  return response.json<Status>();
}

const seqOf = (body: JoinBody) => decodeJwt(body.token).seq as number;

/** Joins `count` fans one after another (so their places are 1..count in that order). */
async function joinInOrder(concertId: string, count: number, prefix = uniqueId('pre')): Promise<JoinBody[]> {
  const bodies: JoinBody[] = [];
  for (let i = 0; i < count; i++) bodies.push(await joinOk(concertId, `${prefix}-${i}`));
  return bodies;
}

describe('the pre-queue draw at opening', () => {
  it('says "randomized at opening" before, then admits in the order the revealed seed gives, later joiners behind', async () => {
    const concert = await createConcert({ queue: { openingOrder: 'shuffle', admitPerWindow: 5 } });
    const stub = room(concert.id);
    const early = await joinInOrder(concert.id, 20);
    for (const [i, body] of early.entries()) {
      expect(body).toMatchObject({ status: 'waiting', position: i + 1, randomizedAtOpening: true });
      expect(body.estimatedWaitSeconds).toBeGreaterThan(3_500);
      expect(seqOf(body)).toBe(i + 1);
    }
    expect(await statusOf(early[7]!.token)).toMatchObject({ status: 'waiting', position: 8, randomizedAtOpening: true });
    const socket = await openQueueSocket(early[0]!.token);
    await socket.next(1);
    expect(socket.messages[0]).toMatchObject({ status: 'waiting', randomizedAtOpening: true });

    const before = await opening(concert.id);
    expect(before).toMatchObject({ order: 'shuffle', seed: null, prequeueSize: null });
    expect(before.commitment).toMatch(/^[0-9a-f]{64}$/);

    expect(await runDurableObjectAlarm(stub)).toBe(true); // sales open: the draw, then the first window

    const after = await opening(concert.id);
    expect(after).toMatchObject({ order: 'shuffle', commitment: before.commitment, prequeueSize: 20 });
    expect(await shuffleCommitment(after.seed!)).toBe(before.commitment);
    const rank = (body: JoinBody) => rankOfPlace({ seed: after.seed!, prequeueSize: 20 }, seqOf(body));
    expect(new Set(early.map(rank))).toEqual(new Set(Array.from({ length: 20 }, (_, i) => i + 1)));
    expect(early.map(rank)).not.toEqual(early.map((_, i) => i + 1));

    const late = await joinOk(concert.id, uniqueId('late'));
    expect(seqOf(late)).toBe(21);
    expect(late).toMatchObject({ status: 'waiting', position: 16 });
    expect(late.randomizedAtOpening).toBeUndefined();

    // Window by window: exactly the next five ranks go in; everyone else's position is rank − admitted.
    for (let admitted = 5; admitted <= 20; admitted += 5) {
      for (const body of early) {
        const status = await statusOf(body.token);
        if (rank(body) <= admitted) expect(status.status, `rank ${rank(body)} after ${admitted}`).toBe('admitted');
        else expect(status, `rank ${rank(body)} after ${admitted}`).toMatchObject({ status: 'waiting', position: rank(body) - admitted });
        expect(status.randomizedAtOpening).toBeUndefined();
      }
      expect(await statusOf(late.token)).toMatchObject({ status: 'waiting', position: 21 - admitted });
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    }
    expect((await statusOf(late.token)).status).toBe('admitted');
    expect(await stats(concert.id)).toMatchObject({ waiting: 0, admitted: 21 });

    // The socket opened before the draw was told its drawn place without asking.
    await socket.waitFor('admitted');
    expect(socket.messages.some((m) => !('randomizedAtOpening' in m))).toBe(true);
    socket.ws.close();
  });

  it('keeps arrival order for a FIFO concert, and the order is fixed once sales open', async () => {
    const concert = await createConcert({ queue: { openingOrder: 'fifo', admitPerWindow: 3 } });
    const early = await joinInOrder(concert.id, 6);
    expect(early.every((body) => body.randomizedAtOpening === undefined)).toBe(true);
    expect(early.map((body) => body.position)).toEqual([1, 2, 3, 4, 5, 6]);

    // Before opening the admin may still switch; switching back keeps FIFO for the rest of the test.
    expect((await (await patchQueue(concert.id, { openingOrder: 'shuffle' })).json<{ openingOrder: string }>()).openingOrder).toBe('shuffle');
    expect((await statusOf(early[2]!.token)).randomizedAtOpening).toBe(true);
    expect((await patchQueue(concert.id, { openingOrder: 'fifo' })).status).toBe(200);

    await runDurableObjectAlarm(room(concert.id));
    expect((await Promise.all(early.map((body) => statusOf(body.token)))).map((s) => s.status)).toEqual([
      'admitted',
      'admitted',
      'admitted',
      'waiting',
      'waiting',
      'waiting',
    ]);
    expect(await opening(concert.id)).toMatchObject({ order: 'fifo', prequeueSize: 0 });
    await expectProblem(await patchQueue(concert.id, { openingOrder: 'shuffle' }), 409, 'OPENING_ORDER_FIXED');
    expect((await stats(concert.id)).queue.openingOrder).toBe('fifo');
  });

  it('places every fan once when joins race the opening: drawn if told so, behind the pre-queue otherwise', async () => {
    const salesOpenAt = new Date(Date.now() + 3_000);
    const concert = await createConcert({ salesOpenAt, queue: { openingOrder: 'shuffle', admitPerWindow: 1_000 } });
    const prefix = uniqueId('race');
    // 80 fans, one every ~35 ms from 1.4 s before the opening (however long creating the concert
    // took) to as long after it, each joining twice at once (a double click).
    const firstJoinAt = salesOpenAt.getTime() - 1_400;
    const bodies = await Promise.all(
      Array.from({ length: 80 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstJoinAt - Date.now()) + i * 35));
        const [a, b] = await Promise.all([joinOk(concert.id, `${prefix}-${i}`), joinOk(concert.id, `${prefix}-${i}`)]);
        expect(a.token).toBe(b.token);
        return a;
      }),
    );
    const draw = await opening(concert.id);
    expect(draw.seed).not.toBeNull();
    const size = draw.prequeueSize!;
    const seqs = bodies.map(seqOf);
    expect(new Set(seqs)).toEqual(new Set(Array.from({ length: 80 }, (_, i) => i + 1)));
    for (const [i, body] of bodies.entries()) {
      // Told "randomized" ⇔ placed in the pre-queue; nobody told so was left out of the draw.
      expect(body.randomizedAtOpening === true, `fan ${i} seq ${seqs[i]}`).toBe(seqs[i]! <= size);
    }
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThan(80);
    const ranks = seqs.map((seq) => rankOfPlace({ seed: draw.seed!, prequeueSize: size }, seq));
    expect(new Set(ranks).size).toBe(80);
    for (const [i, seq] of seqs.entries()) if (seq > size) expect(ranks[i], `late seq ${seq}`).toBe(seq);
    // Everyone fits in the first window: the draw's admission and each later join let everyone in.
    const statuses = await Promise.all(bodies.map((body) => statusOf(body.token)));
    expect(statuses.map((s) => s.status)).toEqual(bodies.map(() => 'admitted'));
  });

  it('draws before placing the first joiner after opening, even when the opening alarm has not run', async () => {
    // An hour ahead, so the five join before the opening however slow the box; then time is moved.
    const salesOpenAt = new Date(Date.now() + 3_600_000);
    const concert = await createConcert({ salesOpenAt, queue: { openingOrder: 'shuffle' } });
    const early = await joinInOrder(concert.id, 5);
    expect(early.every((body) => body.randomizedAtOpening === true)).toBe(true);
    // A late or lost alarm: only the next request can make the draw.
    await runInDurableObject(room(concert.id), (_instance, state) => state.storage.deleteAlarm());
    await advanceRoomClock(salesOpenAt.getTime() - Date.now() + 1_000);
    const late = await joinOk(concert.id, uniqueId('late'));
    expect(seqOf(late)).toBe(6);
    expect(late.randomizedAtOpening).toBeUndefined();
    expect(await opening(concert.id)).toMatchObject({ prequeueSize: 5 });
  });
});
