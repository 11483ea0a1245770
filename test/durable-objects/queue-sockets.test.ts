import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ConcertRoom } from '../../src/durable-objects/concert-room/index.ts';
import {
  FAR_BACK_PUSH_INTERVAL_MS,
  MAX_SOCKETS_PER_PLACE,
  SOCKET_REPLACED_CLOSE_CODE,
  type QueueSockets,
} from '../../src/durable-objects/concert-room/sockets.ts';
import { uniqueId } from '../helpers/api.ts';
import { createConcert, joinOk, room } from '../helpers/concerts.ts';
import { openQueueSocket } from '../helpers/queue-socket.ts';

/** The room's socket module, to drive its clock. */
const socketsOf = (instance: ConcertRoom) => (instance as unknown as { sockets: QueueSockets }).sockets;

/** Server ends of place `seq`'s sockets that are still open. */
const openOnServer = (concertId: string, seq: number) =>
  runInDurableObject(room(concertId), (_instance, state) => state.getWebSockets(`seq:${seq}`).filter((ws) => ws.readyState === WebSocket.OPEN).length);

/** An open concert whose line admits one fan per 10-minute window (sessions last a day), so positions move only when a test runs the alarm. */
const slowLine = () => createConcert({ seats: 10, salesOpenAt: new Date(Date.now() - 60_000), queue: { admitPerWindow: 1, windowSeconds: 600, sessionSeconds: 86_400 } });

describe('queue sockets', () => {
  it('keeps at most 4 sockets open per place: each one past that closes the oldest with 4008 "replaced"', async () => {
    const concert = await slowLine();
    await joinOk(concert.id, uniqueId('first')); // admitted: the rest wait
    const fan = await joinOk(concert.id, uniqueId('fan'));
    const sockets = [];
    for (let i = 0; i < 12; i++) sockets.push(await openQueueSocket(fan.token));

    const replaced = sockets.slice(0, 12 - MAX_SOCKETS_PER_PLACE);
    for (const socket of replaced) expect(await socket.waitForClose(15_000)).toEqual({ code: SOCKET_REPLACED_CLOSE_CODE, reason: 'replaced' });
    const kept = sockets.slice(12 - MAX_SOCKETS_PER_PLACE);
    expect(kept.map((socket) => socket.closed())).toEqual([undefined, undefined, undefined, undefined]);
    expect(await openOnServer(concert.id, 2)).toBe(MAX_SOCKETS_PER_PLACE); // the fan's seq: second to join

    // The survivors still hear from the room.
    for (const socket of kept) {
      socket.ws.send('status');
      await socket.next(2);
      expect(socket.messages[1]).toMatchObject({ status: 'waiting', position: 1 });
    }
    for (const socket of kept) socket.ws.close(1000, 'done');
  });

  it('leaves at most 4 open when 12 sockets of one place open at once', async () => {
    const concert = await slowLine();
    await joinOk(concert.id, uniqueId('first'));
    const fan = await joinOk(concert.id, uniqueId('fan'));
    const sockets = await Promise.all(Array.from({ length: 12 }, () => openQueueSocket(fan.token)));
    // Every socket has been accepted: each is now either replaced (it will see the close) or open (it answers).
    const outcomes = await Promise.all(
      sockets.map((socket) => {
        try {
          socket.ws.send('status');
        } catch {
          // already closed on our side
        }
        return Promise.race([socket.waitForClose(15_000).then((closed) => closed.code), socket.next(2).then(() => 'open' as const)]);
      }),
    );
    expect(outcomes.filter((outcome) => outcome === 'open')).toHaveLength(MAX_SOCKETS_PER_PLACE);
    expect(outcomes.filter((outcome) => outcome === SOCKET_REPLACED_CLOSE_CODE)).toHaveLength(12 - MAX_SOCKETS_PER_PLACE);
    expect(await openOnServer(concert.id, 2)).toBe(MAX_SOCKETS_PER_PLACE);
    for (const socket of sockets) if (!socket.closed()) socket.ws.close(1000, 'done');
  });

  it('pushes a place beyond the next two windows at most once per 5 s, and a nearer one at every change', async () => {
    const concert = await slowLine();
    const fans = [];
    for (let i = 0; i < 6; i++) fans.push(await joinOk(concert.id, uniqueId(`fan${i}`)));
    // Fan 0 is admitted; fans 1..5 wait at positions 1..5, and one window admits one fan.
    const near = await openQueueSocket(fans[2]!.token);
    const far = await openQueueSocket(fans[5]!.token);
    await near.next(1);
    await far.next(1);
    expect(near.messages[0]).toMatchObject({ status: 'waiting', position: 2 });
    expect(far.messages[0]).toMatchObject({ status: 'waiting', position: 5 });

    let now = Date.now();
    await runInDurableObject(room(concert.id), (instance: ConcertRoom) => {
      socketsOf(instance).clock = () => now;
    });

    // The next window admits fan 1: the near place hears at once; the far one (5 → 4) is held back.
    await runDurableObjectAlarm(room(concert.id));
    await near.waitForMessage((m) => m.position === 1, 'position 1');

    // Five seconds later by the room's clock, the window after admits fan 2: now the far place hears.
    await runInDurableObject(room(concert.id), async (instance: ConcertRoom) => {
      now += FAR_BACK_PUSH_INTERVAL_MS;
      await instance.alarm();
    });
    await near.waitFor('admitted');
    await far.waitForMessage((m) => m.position === 3, 'position 3');
    expect(far.messages.map((m) => m.position)).toEqual([5, 3]);

    near.ws.close(1000, 'done');
    far.ws.close(1000, 'done');
  });
});
