// Every Postgres message slowed by 2 s at the Neon adapter (both directions on the room's WebSocket
// connections, and each HTTP query): what the room decides alone is answered before the delayed write, and it keeps answering holds
// of other seats while one is waiting on Postgres (it never blocks on I/O).
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { charge } from '../helpers/balance.ts';
import { admittedUser, hold } from '../helpers/concerts.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { checkInvariantsAfterEach, expectSeatInvariants } from '../helpers/invariants.ts';
import { warmConcert } from './helpers.ts';

checkInvariantsAfterEach({ settleMs: 20_000 });

const DELAY_MS = 2_000;

// Orderings, not durations: a loaded 2-core box stretches every duration, but it cannot make a
// request that needs no Postgres finish after one that waits on a delayed Postgres round trip.
async function timed(request: Promise<Response>) {
  const start = Date.now();
  const response = await request;
  const text = await response.text();
  const end = Date.now();
  return { status: response.status, ms: end - start, end, text };
}

describe('the Neon path delayed by 2 s', () => {
  it('answers what the room decides alone before a delayed write returns, and keeps answering holds of other seats', async () => {
    const concert = await warmConcert({ seats: 20, warm: 8 });
    const fans = await Promise.all(Array.from({ length: 8 }, () => admittedUser(concert.id)));
    const rival = await admittedUser(concert.id, 'rival');
    const payer = await admittedUser(concert.id, 'payer');
    await setFault('neon', 'delay', DELAY_MS);
    let first: Awaited<ReturnType<typeof timed>>;
    let others: Awaited<ReturnType<typeof timed>>[];
    let sameSeat: Awaited<ReturnType<typeof timed>>;
    let seatMapRead: Awaited<ReturnType<typeof timed>>;
    let charged: Awaited<ReturnType<typeof timed>>;
    const startedAt = Date.now();
    try {
      const firstHold = timed(hold(concert.id, fans[0]!, [1]));
      await new Promise((resolve) => setTimeout(resolve, 200));
      // While that hold waits on Postgres: seven holds of other seats, a rival for the same seat,
      // a seat-map read and a charge, all at once.
      [others, sameSeat, seatMapRead, charged] = await Promise.all([
        Promise.all(fans.slice(1).map((fan, i) => timed(hold(concert.id, fan, [2 + i])))),
        timed(hold(concert.id, rival, [1])),
        timed(api(`/concerts/${concert.id}/seats`)),
        timed(charge(payer.userToken, 100)),
      ]);
      first = await firstHold;
    } finally {
      await clearFault('neon');
    }
    const total = Date.now() - startedAt;
    console.log(
      `[neon-delay] first hold ${first.status} in ${first.ms} ms; others ${others.map((o) => `${o.status}/${o.ms}`).join(' ')}; ` +
        `rival ${sameSeat.status}/${sameSeat.ms}; seat map ${seatMapRead.status}/${seatMapRead.ms}; charge ${charged.status}/${charged.ms}; total ${total} ms`,
    );
    // The room decided the rival at once, from its own state: seat 1 is pending, so 409 before the
    // first hold's delayed write came back, not after it.
    expect(sameSeat.status).toBe(409);
    expect(sameSeat.end).toBeLessThan(first.end);
    expect(seatMapRead.status).toBe(200);
    expect(seatMapRead.end).toBeLessThan(first.end);
    // Holds of other seats were answered, side by side rather than one after another (seven in a
    // row would take at least 7 × 4 s): each within about one delayed round trip of the first.
    expect(first.status).toBe(201);
    expect(others.map((o) => o.status)).toEqual(others.map(() => 201));
    expect(Math.max(...others.map((o) => o.ms))).toBeLessThan(first.ms + 3 * DELAY_MS);
    expect(charged.status).toBe(200);
    await expectSeatInvariants(concert.id);
  });
});
