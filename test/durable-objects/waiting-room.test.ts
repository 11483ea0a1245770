import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api, uniqueId } from '../helpers/api.ts';
import { createConcert, joinOk, patchQueue, queueStatus, room, stats, type JoinBody } from '../helpers/concerts.ts';
import { expectProblem } from '../helpers/problem.ts';
import { directQuery } from '../helpers/postgres.ts';

/** Joins `count` users in order (seq i+1 for user i) and returns their join bodies. */
async function joinInOrder(concertId: string, count: number): Promise<JoinBody[]> {
  const prefix = uniqueId('u');
  const bodies: JoinBody[] = [];
  for (let i = 0; i < count; i++) bodies.push(await joinOk(concertId, `${prefix}-${i}`));
  return bodies;
}

/** Joins `count` users all at once. */
function joinConcurrently(concertId: string, count: number): Promise<JoinBody[]> {
  const prefix = uniqueId('u');
  return Promise.all(Array.from({ length: count }, (_, i) => joinOk(concertId, `${prefix}-${i}`)));
}

async function statusOf(token: string) {
  const response = await queueStatus(token);
  expect(response.status).toBe(200);
  return response.json<{ status: string; position: number; estimatedWaitSeconds: number; sessionExpiresAt: string | null }>();
}

describe('ConcertRoom waiting line', () => {
  it('gives 1,000 concurrent joiners exactly the positions 1..1,000 and distinct tokens', async () => {
    const concert = await createConcert();
    const bodies = await joinConcurrently(concert.id, 1000);
    const positions = bodies.map((b) => b.position).sort((a, b) => a - b);
    expect(positions).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(new Set(bodies.map((b) => b.token)).size).toBe(1000);
    expect(bodies.every((b) => b.status === 'waiting')).toBe(true);
    expect((await stats(concert.id)).waiting).toBe(1000);
  });

  it('keeps one place for a user who joins 20 times at once', async () => {
    const concert = await createConcert();
    await joinInOrder(concert.id, 3);
    const userId = uniqueId('eager');
    const bodies = await Promise.all(Array.from({ length: 20 }, () => joinOk(concert.id, userId)));
    expect(new Set(bodies.map((b) => b.position))).toEqual(new Set([4]));
    expect(new Set(bodies.map((b) => b.token)).size).toBe(1);
    expect((await stats(concert.id)).waiting).toBe(4);
  });

  it('answers 404 CONCERT_NOT_FOUND for an unknown concert and writes nothing', async () => {
    const concertId = crypto.randomUUID();
    const response = await api('/queue/token', {
      method: 'POST',
      headers: { Authorization: `Bearer ${(await import('../helpers/concerts.ts').then((m) => m.tokenFor('nobody')))}` },
      json: { concertId },
    });
    await expectProblem(response, 404, 'CONCERT_NOT_FOUND');
  });

  it('rejects a concertId that is not a uuid with 400', async () => {
    const { tokenFor } = await import('../helpers/concerts.ts');
    const response = await api('/queue/token', {
      method: 'POST',
      headers: { Authorization: `Bearer ${await tokenFor('x')}` },
      json: { concertId: 'not-a-uuid' },
    });
    await expectProblem(response, 400, 'VALIDATION_FAILED');
  });
});

describe('ConcertRoom admission', () => {
  it('admits 250 at opening, then 250 per tick, so seq 251 is first in line after opening', async () => {
    const concert = await createConcert({ seats: 50 });
    const bodies = await joinConcurrently(concert.id, 600);
    const bySeq = [...bodies].sort((a, b) => a.position - b.position);
    const stub = room(concert.id);

    expect(await runDurableObjectAlarm(stub)).toBe(true); // sales open
    let counts = await stats(concert.id);
    expect(counts).toMatchObject({ admitted: 250, active: 250, waiting: 350 });
    expect(await statusOf(bySeq[249]!.token)).toMatchObject({ status: 'admitted', position: 0 });
    const first = await statusOf(bySeq[250]!.token);
    expect(first).toMatchObject({ status: 'waiting', position: 1 });
    expect(first.estimatedWaitSeconds).toBeGreaterThan(0);
    expect(first.estimatedWaitSeconds).toBeLessThanOrEqual(10);
    expect((await statusOf(bySeq[599]!.token)).position).toBe(350);

    expect(await runDurableObjectAlarm(stub)).toBe(true); // one window later
    counts = await stats(concert.id);
    expect(counts).toMatchObject({ admitted: 500, waiting: 100 });
    expect(await statusOf(bySeq[500]!.token)).toMatchObject({ status: 'waiting', position: 1 });
  });

  it('never lets live sessions exceed maxActive', async () => {
    const concert = await createConcert();
    await joinConcurrently(concert.id, 600);
    const stub = room(concert.id);
    await runDurableObjectAlarm(stub);
    expect((await stats(concert.id)).active).toBe(250);
    expect((await patchQueue(concert.id, { maxActive: 300 })).status).toBe(200);
    await runDurableObjectAlarm(stub);
    expect(await stats(concert.id)).toMatchObject({ admitted: 300, active: 300, waiting: 300 });
    await runDurableObjectAlarm(stub);
    expect(await stats(concert.id)).toMatchObject({ admitted: 300, active: 300 });
  });

  it('frees an expired session’s slot on the next tick', async () => {
    const concert = await createConcert({ queue: { admitPerWindow: 2, windowSeconds: 10, sessionSeconds: 5, maxActive: 2 } });
    const bodies = await joinInOrder(concert.id, 4);
    const stub = room(concert.id);
    await runDurableObjectAlarm(stub); // opening: seq 1 and 2 admitted
    expect(await stats(concert.id)).toMatchObject({ active: 2, waiting: 2 });
    await runDurableObjectAlarm(stub); // 5 s later their sessions end
    expect(await stats(concert.id)).toMatchObject({ active: 0, expired: 2, waiting: 2 });
    expect(await statusOf(bodies[0]!.token)).toMatchObject({ status: 'expired' });
    await runDurableObjectAlarm(stub); // next window: the freed slots go to seq 3 and 4
    expect(await stats(concert.id)).toMatchObject({ active: 2, waiting: 0 });
    expect(await statusOf(bodies[3]!.token)).toMatchObject({ status: 'admitted', position: 0 });
  });

  it('admits a joiner at once when sales are open and the window has room', async () => {
    const concert = await createConcert({ salesOpenAt: new Date(Date.now() - 1000) });
    const body = await joinOk(concert.id, uniqueId('early'));
    expect(body).toMatchObject({ status: 'admitted', position: 0, estimatedWaitSeconds: 0 });
    const status = await statusOf(body.token);
    expect(status.status).toBe('admitted');
    expect(Date.parse(status.sessionExpiresAt!)).toBeGreaterThan(Date.now() + 590_000);
  });

  it('holds everyone while paused and resumes on unpause', async () => {
    const concert = await createConcert({ salesOpenAt: new Date(Date.now() - 1000), queue: { paused: true } });
    const body = await joinOk(concert.id, uniqueId('patient'));
    expect(body.status).toBe('waiting');
    const patched = await patchQueue(concert.id, { paused: false });
    expect(await patched.json()).toMatchObject({ paused: false, admitPerWindow: 250 });
    expect(await statusOf(body.token)).toMatchObject({ status: 'admitted' });
  });

  it('loses nothing when the room is evicted between steps', async () => {
    const concert = await createConcert();
    const bodies = await joinInOrder(concert.id, 3);
    const stub = room(concert.id);
    await evictDurableObject(stub);
    const again = await joinOk(concert.id, uniqueId('late'));
    expect(again.position).toBe(4);
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await evictDurableObject(stub);
    expect(await stats(concert.id)).toMatchObject({ admitted: 4, active: 4, waiting: 0 });
    expect(await statusOf(bodies[0]!.token)).toMatchObject({ status: 'admitted' });
  });

  it('reports sold_out to waiting users when no seat is left to hold', async () => {
    const concert = await createConcert({ seats: 3 });
    await directQuery(`UPDATE seats SET status = 'sold' WHERE concert_id = $1`, [concert.id]);
    // The room loaded its map when the concert was created; reconcile it from Postgres.
    const stub = room(concert.id);
    const report = await stub.reconcile();
    expect(report).toMatchObject({ ok: true, changed: 3 });
    const body = await joinOk(concert.id, uniqueId('late'));
    expect(body.status).toBe('sold_out');
    expect(await statusOf(body.token)).toMatchObject({ status: 'sold_out' });
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });
});
