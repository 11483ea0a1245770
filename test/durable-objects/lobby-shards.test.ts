import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { LOBBY_BATCH_SIZE } from '../../src/durable-objects/concert-lobby.ts';
import { rankOfPlace } from '../../src/lib/opening-shuffle.ts';
import { lobbyShardFor } from '../../src/services/queue.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { createConcert, joinOk, queueStatus, room, stats, type JoinBody } from '../helpers/concerts.ts';
import { directQuery } from '../helpers/postgres.ts';

/*
 * Lobby shards (issue 14): a concert with lobbyShards K > 1 sends each join to one of K lobby
 * objects (by user id), which gather joins into batches and send the room one request per batch.
 * The room still hands out every place, so places stay 1..N, admission stays by rank, and a lobby
 * lost mid-batch loses no place.
 */

const lobby = (concertId: string, shard: number) => env.CONCERT_LOBBY.getByName(`${concertId}/${shard}`);
const seqOf = (body: JoinBody) => decodeJwt(body.token).seq as number;

/** Joins `count` fans with at most `inFlight` joins at once; returns their bodies in fan order. */
async function joinMany(concertId: string, count: number, inFlight: number, prefix = uniqueId('fan')): Promise<JoinBody[]> {
  const bodies = new Array<JoinBody>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++;
        bodies[i] = await joinOk(concertId, `${prefix}-${i}`);
      }
    }),
  );
  return bodies;
}

describe('lobby shards', () => {
  it('gives 10,000 fans joining through 8 lobbies the places 1..10,000, with the room seeing one request per batch', async () => {
    const concert = await createConcert({ queue: { lobbyShards: 8, admitPerWindow: 2_500 } });
    const before = await room(concert.id).requestCounts();
    const fans = 10_000;
    const bodies = await joinMany(concert.id, fans, 400);
    const seqs = bodies.map(seqOf).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: fans }, (_, i) => i + 1));
    expect(new Set(bodies.map((body) => body.token)).size).toBe(fans);
    expect((await stats(concert.id)).waiting).toBe(fans);

    const after = await room(concert.id).requestCounts();
    const lobbies = await Promise.all(Array.from({ length: 8 }, (_, shard) => lobby(concert.id, shard).requestCounts()));
    // Every join went through a lobby; the room got batches, never more than one per LOBBY_BATCH_SIZE
    // joins plus the partial ones each lobby sends when its gathering time runs out.
    expect(after.join - before.join).toBe(0);
    expect(after.joinedInBatches - before.joinedInBatches).toBe(fans);
    const batches = after.joinBatch - before.joinBatch;
    expect(batches).toBe(lobbies.reduce((n, counts) => n + counts.batches, 0));
    expect(lobbies.reduce((n, counts) => n + counts.joins, 0)).toBe(fans);
    expect(lobbies.every((counts) => counts.joins > fans / 8 / 2)).toBe(true);
    expect(batches).toBeLessThan(fans / 10);
    console.log(`lobby shards: ${fans} joins → ${batches} room requests (${(fans / batches).toFixed(1)} joins each; batch limit ${LOBBY_BATCH_SIZE})`);

    // Admission by seq (FIFO concert): the first window takes exactly places 1..2,500.
    await runDurableObjectAlarm(room(concert.id));
    const admitted = await runInDurableObject(room(concert.id), (_instance, state) =>
      state.storage.sql.exec<{ seq: number }>(`SELECT seq FROM line WHERE status = 'admitted' ORDER BY seq`).toArray().map((row) => row.seq),
    );
    expect(admitted).toEqual(Array.from({ length: 2_500 }, (_, i) => i + 1));
  }, 240_000);

  it('keeps a re-joining fan on their lobby and their place', async () => {
    const concert = await createConcert({ queue: { lobbyShards: 4 } });
    await joinMany(concert.id, 30, 10);
    const userId = uniqueId('again');
    const first = await joinOk(concert.id, userId);
    const again = await Promise.all(Array.from({ length: 5 }, () => joinOk(concert.id, userId)));
    expect(new Set(again.map((body) => body.token))).toEqual(new Set([first.token]));
    expect(first.position).toBe(31);
    const shard = lobbyShardFor(userId, 4);
    expect((await lobby(concert.id, shard).requestCounts()).joins).toBeGreaterThanOrEqual(6);
  });

  it('loses no place and gives none twice when lobbies are reset mid-batch', async () => {
    const concert = await createConcert({ queue: { lobbyShards: 2 } });
    const prefix = uniqueId('reset');
    const warn = vi.spyOn(console, 'warn');
    let done = false;
    const joining = joinMany(concert.id, 200, 50, prefix).finally(() => (done = true));
    // Both lobbies are reset (as a crash would: evictDurableObject waits for requests to drain, so it
    // cannot) again and again while joins are gathered in them and in flight to the room.
    let resets = 0;
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const shard of [0, 1]) {
        await runInDurableObject(lobby(concert.id, shard), (_instance, state) => state.abort('test: lobby reset')).catch(() => undefined);
      }
      resets++;
    }
    const bodies = await joining;
    const fellBack = warn.mock.calls.filter(([line]) => String(line).includes('lobby join failed')).length;
    warn.mockRestore();
    // The resets caught joins in the lobbies: their Workers joined at the room instead.
    expect(resets).toBeGreaterThan(0);
    expect(fellBack).toBeGreaterThan(0);
    expect(bodies.map(seqOf).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect((await stats(concert.id)).waiting).toBe(200);
    // Each fan's token still names their place: joining again answers the same one.
    const again = await joinOk(concert.id, `${prefix}-7`);
    expect(again.token).toBe(bodies[7]!.token);
  });

  it('answers sold_out through the lobbies, and draws a sharded pre-queue at opening', async () => {
    const soldOut = await createConcert({ seats: 3, queue: { lobbyShards: 4 } });
    await directQuery(`UPDATE seats SET status = 'sold' WHERE concert_id = $1`, [soldOut.id]);
    await room(soldOut.id).reconcile();
    const late = await joinMany(soldOut.id, 12, 12);
    expect(late.every((body) => body.status === 'sold_out')).toBe(true);
    expect((await room(soldOut.id).requestCounts()).join).toBe(0);

    const drawn = await createConcert({ queue: { lobbyShards: 4, openingOrder: 'shuffle', admitPerWindow: 10 } });
    const early = await joinMany(drawn.id, 40, 40);
    expect(early.every((body) => body.randomizedAtOpening === true)).toBe(true);
    await runDurableObjectAlarm(room(drawn.id));
    const opening = await (await fetchOpening(drawn.id)).json<{ seed: string; prequeueSize: number }>();
    expect(opening.prequeueSize).toBe(40);
    for (const body of early) {
      const rank = rankOfPlace({ seed: opening.seed, prequeueSize: 40 }, seqOf(body));
      const status = await (await queueStatus(body.token)).json<{ status: string; position: number }>();
      if (rank <= 10) expect(status.status).toBe('admitted');
      else expect(status).toMatchObject({ status: 'waiting', position: rank - 10 });
    }
  });
});

const fetchOpening = (concertId: string) => api(`/concerts/${concertId}/opening`);
