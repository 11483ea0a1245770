// PostgreSQL stopped for 10 s under steady load, then started again (same port, same data): the
// throwaway cluster itself, through the Neon adapter's /__server switch.
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { authed, charge, pay, use } from '../helpers/balance.ts';
import { admittedUser, hold, openConcert, type AdmittedUser } from '../helpers/concerts.ts';
import { switchServer } from '../helpers/faults.ts';
import { checkInvariantsAfterEach } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { eventually, sleep } from './helpers.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

checkInvariantsAfterEach({ settleMs: 20_000 });

const DOWN_MS = 10_000;
/** After this long back up, every answer must be a normal one. */
const RECOVERY_MS = 5_000;

type Op = 'hold' | 'charge' | 'use' | 'pay' | 'cancel' | 'seats';

interface Outcome {
  op: Op;
  start: number;
  end: number;
  status: number;
  contentType: string;
  retryAfter: string | null;
  code?: string;
}


describe('Postgres stopped for 10 s under steady load, then restarted', () => {
  it('answers only 503 problem+json with Retry-After while down, normally within 5 s after; holds due meanwhile expire once it is back', async () => {
    const seed = Date.now() % 1_000_000;
    console.log(`[postgres-down] load seed ${seed}`);
    const next = seededRandom(seed);
    const seats = 40; // the load's; two more are kept for the holds that fall due while Postgres is down
    const concert = await openConcert({ seats: seats + 2, price: 100, queue: { holdSeconds: 3 } });
    const users = await Promise.all(Array.from({ length: 10 }, () => admittedUser(concert.id, 'load')));
    for (const user of users) expect((await charge(user.userToken, 10_000)).status).toBe(200);

    const outcomes: Outcome[] = [];
    const heldBy = new Map<string, string[]>();
    let running = true;

    async function send(op: Op, user: AdmittedUser): Promise<void> {
      const mine = heldBy.get(user.userId) ?? [];
      const start = Date.now();
      let response: Response;
      switch (op) {
        case 'hold':
          response = await hold(concert.id, user, [1 + Math.floor(next() * seats)]);
          break;
        case 'charge':
          response = await charge(user.userToken, 10);
          break;
        case 'use':
          response = await use(user.userToken, 1);
          break;
        case 'pay':
        case 'cancel': {
          const id = mine.shift();
          if (!id) return;
          response =
            op === 'pay'
              ? await pay(user.userToken, id)
              : await api(`/reservations/${id}`, { method: 'DELETE', headers: authed(user.userToken) });
          break;
        }
        case 'seats':
          response = await api(`/concerts/${concert.id}/seats`);
          break;
      }
      const text = await response.text();
      const contentType = response.headers.get('Content-Type') ?? '';
      const outcome: Outcome = { op, start, end: Date.now(), status: response.status, contentType, retryAfter: response.headers.get('Retry-After') };
      if (contentType.startsWith('application/problem+json')) outcome.code = (JSON.parse(text) as { code: string }).code;
      if (op === 'hold' && response.status === 201) heldBy.set(user.userId, [...mine, (JSON.parse(text) as { reservationId: string }).reservationId]);
      outcomes.push(outcome);
    }

    const OPS: [Op, number][] = [['hold', 0.35], ['seats', 0.2], ['charge', 0.15], ['use', 0.1], ['cancel', 0.12], ['pay', 0.08]];
    const pick = (): Op => {
      let r = next();
      for (const [op, weight] of OPS) if ((r -= weight) < 0) return op;
      return 'seats';
    };
    const workers = users.map(async (user) => {
      while (running) {
        await send(pick(), user);
        await sleep(50 + Math.floor(next() * 100));
      }
    });

    await sleep(2_000);
    // Two holds made just before the stop: they fall due (3 s) while Postgres is down.
    const late = await Promise.all([admittedUser(concert.id, 'late'), admittedUser(concert.id, 'late')]);
    const dueWhileDown: string[] = [];
    for (const [i, user] of late.entries()) {
      const response = await hold(concert.id, user, [seats + 1 + i]);
      expect(response.status).toBe(201);
      dueWhileDown.push((await response.json<{ reservationId: string }>()).reservationId);
    }

    let downFrom = 0;
    let restartFrom = 0;
    let upAt = 0;
    try {
      await switchServer('neon', 'stop');
      downFrom = Date.now();
      await sleep(DOWN_MS);
    } finally {
      restartFrom = Date.now();
      await switchServer('neon', 'start');
      upAt = Date.now();
    }
    await sleep(RECOVERY_MS + 3_000);
    running = false;
    await Promise.all(workers);

    // While down: a request either needed no Postgres (the room answers seat maps and refuses holds
    // on its own) or failed closed with 503 problem+json and Retry-After. Nothing else, and quickly.
    const whileDown = outcomes.filter((o) => o.start >= downFrom && o.end <= restartFrom);
    expect(whileDown.length).toBeGreaterThan(20);
    const unexpected = whileDown.filter(
      (o) =>
        !(o.status === 503 && o.contentType.startsWith('application/problem+json') && Number(o.retryAfter) >= 1) &&
        !(o.op === 'seats' && o.status === 200) &&
        !(o.op === 'hold' && ['SEAT_UNAVAILABLE', 'HOLD_LIMIT', 'NOT_ADMITTED'].includes(o.code ?? '')),
    );
    expect(unexpected).toEqual([]);
    expect(whileDown.filter((o) => o.status === 503).length).toBeGreaterThan(5);
    expect(Math.max(...whileDown.map((o) => o.end - o.start))).toBeLessThan(6_000);

    // Back up: within 5 s every answer is a normal one again, and writes succeed.
    const recovered = outcomes.filter((o) => o.start >= upAt + RECOVERY_MS);
    expect(recovered.filter((o) => o.status >= 500)).toEqual([]);
    expect(recovered.some((o) => o.op === 'charge' && o.status === 200)).toBe(true);
    expect(outcomes.some((o) => o.op === 'hold' && o.status === 201 && o.start >= upAt)).toBe(true);
    console.log(
      `[postgres-down] ${outcomes.length} requests, ${whileDown.length} while down (${whileDown.filter((o) => o.status === 503).length} × 503), ` +
        `restart took ${upAt - restartFrom} ms`,
    );

    // Holds that fell due while Postgres was down expire once it is back (the alarm retried).
    expect(dueWhileDown.length).toBeGreaterThan(0);
    await eventually('the holds due while down expired', async () => {
      const rows = await directQuery<{ status: string }>(`SELECT status FROM reservations WHERE id = ANY($1::uuid[])`, [dueWhileDown]);
      return rows.every((row) => row.status !== 'held') ? rows : undefined;
    });
    // ...and so does every other hold past its time, here and in the room.
    await eventually('no hold past its time', async () => {
      const stale = await directQuery(`SELECT id FROM reservations WHERE concert_id = $1 AND status = 'held' AND expires_at < now() - interval '3 seconds'`, [concert.id]);
      return stale.length === 0 ? true : undefined;
    });
  });
});
