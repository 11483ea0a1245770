// Model-based run (issue 10; refunds and the waitlist since issue 18): random command sequences over a small concert, each step checked
// against a simple in-test model and against DESIGN.md §6 (Postgres and the room). A failure prints
// fast-check's seed and path; MODEL_SEED (and MODEL_PATH) replay it, MODEL_RUNS sets how many run
// (`npm run test:soak` runs ten times the default).
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import fc from 'fast-check';
import { expect, inject, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { authed, charge, pay, use } from '../helpers/balance.ts';
import { hold, join, openConcert, room, seatMap, tokenFor } from '../helpers/concerts.ts';
import { openDirectClient, type DirectClient } from '../helpers/direct-client.ts';
import { expectInvariants, invariantCounts } from '../helpers/invariants.ts';
import { resetRoom } from '../faults/helpers.ts';

const SEATS = 6;
/** One sequence in this many may evict its room (eviction is slow, see Restart). */
const EVICT_EVERY = 20;
const PRICE = 100;
const USERS = 4;
const ADMIT_PER_WINDOW = 2;
const MAX_SEATS = 4;
/** The concert's refund fee, kept from each refund (less than any reservation's amount). */
const REFUND_FEE = 30;

type Line = 'none' | 'waiting' | 'admitted' | 'completed' | 'expired';
type ReservationStatus = 'held' | 'confirmed' | 'expired' | 'cancelled' | 'refunded';

interface UserModel {
  id: string;
  token: string;
  queueToken?: string;
  seq?: number;
  line: Line;
  balance: number;
}

interface ReservationModel {
  id: string;
  user: number;
  seats: number[];
  amount: number;
  status: ReservationStatus;
}

interface Model {
  users: UserModel[];
  reservations: ReservationModel[];
  /** Whether this sequence may still evict its room (see Restart). */
  mayEvict: boolean;
  /** Whether every seat has been sold at some point: a refund after that may not reopen the line. */
  wasSoldOut: boolean;
}

interface Real {
  concertId: string;
  /** One Postgres connection for the whole run: the checks read through it. */
  db: DirectClient;
}

/** What one step may do to admission: nobody, only the joiner, or up to one window's worth. */
type Admits = { kind: 'none' } | { kind: 'joiner'; user: number } | { kind: 'window' };

const stats = { sequences: 0, commands: 0, refunds: 0, waitlistJoins: 0 };
const timing = { act: 0, check: 0 };

function seatStatus(model: Readonly<Model>, seat: number): 'available' | 'held' | 'sold' {
  const live = model.reservations.find((r) => r.seats.includes(seat) && (r.status === 'held' || r.status === 'confirmed'));
  return live === undefined ? 'available' : live.status === 'held' ? 'held' : 'sold';
}

const soldOut = (model: Readonly<Model>) => Array.from({ length: SEATS }, (_, i) => seatStatus(model, i + 1)).every((status) => status === 'sold');

function ownedSeats(model: Model, user: number): number {
  return model.reservations.filter((r) => r.user === user && (r.status === 'held' || r.status === 'confirmed')).reduce((n, r) => n + r.seats.length, 0);
}

async function answer(response: Response): Promise<{ status: number; code?: string; body: Record<string, unknown> }> {
  const text = await response.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  return { status: response.status, ...(typeof body.code === 'string' ? { code: body.code } : {}), body };
}

/** The place (`seq`) a queue token names. */
function seqOf(queueToken: string): number {
  const payload = queueToken.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
  return (JSON.parse(atob(payload)) as { seq: number }).seq;
}

/**
 * Reads the line from the room and checks it against the model: places never change, nobody moves
 * backwards, admission goes strictly by place, and the step admitted no more than it may. Then the
 * model takes the room's statuses (it does not predict admission timing, only its rules).
 */
async function syncLine(model: Model, real: Real, admits: Admits): Promise<void> {
  const rows = await runInDurableObject(room(real.concertId), (_instance, state) =>
    state.storage.sql.exec<{ user_id: string; seq: number; status: Line }>(`SELECT user_id, seq, status FROM line ORDER BY seq`).toArray(),
  );
  let seenWaiting = false;
  for (const row of rows) {
    if (row.status === 'waiting') seenWaiting = true;
    else expect(seenWaiting, `place ${row.seq} admitted after a waiting place`).toBe(false);
  }
  const newlyAdmitted: number[] = [];
  for (const [i, user] of model.users.entries()) {
    const row = rows.find((r) => r.user_id === user.id);
    if (!row) {
      expect(user.line).toBe('none');
      continue;
    }
    if (user.seq !== undefined) expect(row.seq).toBe(user.seq);
    const order: Line[] = ['none', 'waiting', 'admitted', 'completed'];
    expect(order.indexOf(row.status), `${user.id} went from ${user.line} to ${row.status}`).toBeGreaterThanOrEqual(order.indexOf(user.line));
    if (row.status === 'completed') expect(['admitted', 'completed']).toContain(user.line);
    if (row.status === 'admitted' && user.line !== 'admitted') newlyAdmitted.push(i);
    user.line = row.status;
  }
  if (admits.kind === 'none') expect(newlyAdmitted).toEqual([]);
  else if (admits.kind === 'joiner') expect(newlyAdmitted.filter((i) => i !== admits.user)).toEqual([]);
  else expect(newlyAdmitted.length).toBeLessThanOrEqual(ADMIT_PER_WINDOW);
}

/** Postgres and the room against the model, then every §6 invariant. */
async function checkAll(model: Model, real: Real): Promise<void> {
  const ids = model.users.map((u) => u.id);
  const [facts] = await real.db.query<{ balances: Record<string, string> | null; reservations: Record<string, string> | null }>(
    `SELECT (SELECT jsonb_object_agg(user_id, amount::text) FROM balances WHERE user_id = ANY($2::text[])) AS balances,
            (SELECT jsonb_object_agg(id, status) FROM reservations WHERE concert_id = $1) AS reservations`,
    [real.concertId, ids],
  );
  const balanceOf = new Map(Object.entries(facts?.balances ?? {}).map(([user, amount]) => [user, Number(amount)]));
  expect(model.users.map((u) => balanceOf.get(u.id) ?? 0)).toEqual(model.users.map((u) => u.balance));
  const statusOf = new Map(Object.entries(facts?.reservations ?? {}));
  expect(model.reservations.map((r) => statusOf.get(r.id))).toEqual(model.reservations.map((r) => r.status));
  const map = await seatMap(real.concertId);
  expect(map.map((s) => s.status)).toEqual(Array.from({ length: SEATS }, (_, i) => seatStatus(model, i + 1)));
  await expectInvariants({ concertIds: [real.concertId], userIds: ids }, { query: real.db.query });
}

abstract class Step implements fc.AsyncCommand<Model, Real> {
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  abstract act(model: Model, real: Real): Promise<Admits>;
  async run(model: Model, real: Real): Promise<void> {
    stats.commands++;
    const t0 = Date.now();
    const admits = await this.act(model, real);
    const t1 = Date.now();
    await syncLine(model, real, admits);
    await checkAll(model, real);
    timing.act += t1 - t0;
    timing.check += Date.now() - t1;
  }
  abstract toString(): string;
}

class Join extends Step {
  readonly user: number;
  constructor(user: number) {
    super();
    this.user = user;
  }
  async act(model: Model, real: Real): Promise<Admits> {
    const user = model.users[this.user]!;
    const { status, body } = await answer(await join(real.concertId, user.id, user.token));
    expect(status).toBe(201);
    const token = body.token as string;
    if (user.seq !== undefined) expect(seqOf(token)).toBe(user.seq);
    user.seq = seqOf(token);
    user.queueToken = token;
    return { kind: 'joiner', user: this.user };
  }
  toString() {
    return `join(u${this.user})`;
  }
}

class Tick extends Step {
  override check(model: Readonly<Model>) {
    // Sold out, admission stops and the next thing due is the end of everyone's session, which this
    // run keeps out of reach (24 h); so a tick needs someone waiting and seats still to be had.
    return !soldOut(model) && model.users.some((u) => u.line === 'waiting');
  }
  async act(model: Model, real: Real): Promise<Admits> {
    const ran = await runDurableObjectAlarm(room(real.concertId));
    // Once sold out, seats a refund frees need not reopen the line, so no admission may be armed.
    if (!model.wasSoldOut) expect(ran).toBe(true);
    return { kind: 'window' };
  }
  toString() {
    return 'tick()';
  }
}

class Hold extends Step {
  readonly user: number;
  readonly seats: number[];
  constructor(user: number, seats: number[]) {
    super();
    this.user = user;
    this.seats = seats;
  }
  override check(model: Readonly<Model>) {
    return model.users[this.user]!.queueToken !== undefined;
  }
  async act(model: Model, real: Real): Promise<Admits> {
    const user = model.users[this.user]!;
    const got = await answer(await hold(real.concertId, { userId: user.id, userToken: user.token, queueToken: user.queueToken! }, this.seats));
    const taken = this.seats.filter((s) => seatStatus(model, s) !== 'available').sort((a, b) => a - b);
    // Once sold out, seats come back only through the waitlist: a place in line holds nothing more.
    if (user.line !== 'admitted' || model.wasSoldOut) expect(got.code).toBe('NOT_ADMITTED');
    else if (ownedSeats(model, this.user) + this.seats.length > MAX_SEATS) expect(got.code).toBe('HOLD_LIMIT');
    else if (taken.length > 0) expect({ code: got.code, seats: got.body.seats }).toEqual({ code: 'SEAT_UNAVAILABLE', seats: taken });
    else {
      expect(got.status).toBe(201);
      expect((got.body.seats as { seatNumber: number }[]).map((s) => s.seatNumber)).toEqual(this.seats);
      expect(got.body.amount).toBe(PRICE * this.seats.length);
      model.reservations.push({ id: got.body.reservationId as string, user: this.user, seats: [...this.seats], amount: PRICE * this.seats.length, status: 'held' });
    }
    return { kind: 'none' };
  }
  toString() {
    return `hold(u${this.user}, [${this.seats.join(', ')}])`;
  }
}

/** Picks the k-th reservation (any user's: a stranger's must be refused). */
const nth = (model: Readonly<Model>, k: number) => model.reservations[k % model.reservations.length]!;

/** A step by user `user` on the k-th reservation; runs once there is one. */
abstract class ReservationStep extends Step {
  readonly user: number;
  readonly k: number;
  constructor(user: number, k: number) {
    super();
    this.user = user;
    this.k = k;
  }
  override check(model: Readonly<Model>) {
    return model.reservations.length > 0;
  }
}

class Cancel extends ReservationStep {
  async act(model: Model): Promise<Admits> {
    const reservation = nth(model, this.k);
    const user = model.users[this.user]!;
    const got = await answer(await api(`/reservations/${reservation.id}`, { method: 'DELETE', headers: authed(user.token) }));
    if (reservation.user !== this.user) expect(got.code).toBe('RESERVATION_NOT_FOUND');
    else if (reservation.status === 'confirmed') expect(got.code).toBe('ALREADY_PAID');
    else if (reservation.status === 'expired') expect(got.code).toBe('RESERVATION_EXPIRED');
    else {
      expect(got.status).toBe(204);
      // Cancelling what has already ended with its seats freed (cancelled, refunded) changes nothing.
      if (reservation.status === 'held') reservation.status = 'cancelled';
    }
    return { kind: 'none' };
  }
  toString() {
    return `cancel(u${this.user}, #${this.k})`;
  }
}

class Pay extends ReservationStep {
  async act(model: Model): Promise<Admits> {
    const reservation = nth(model, this.k);
    const user = model.users[this.user]!;
    const got = await answer(await pay(user.token, reservation.id));
    if (reservation.user !== this.user) expect(got.code).toBe('RESERVATION_NOT_FOUND');
    else if (reservation.status === 'confirmed') expect(got.code).toBe('ALREADY_PAID');
    else if (reservation.status !== 'held') expect(got.code).toBe('RESERVATION_EXPIRED');
    else if (user.balance < reservation.amount) expect(got.code).toBe('INSUFFICIENT_BALANCE');
    else {
      expect(got.status).toBe(201);
      expect(got.body).toMatchObject({ reservationId: reservation.id, amount: reservation.amount, balance: user.balance - reservation.amount });
      user.balance -= reservation.amount;
      reservation.status = 'confirmed';
      // Paying ends the session (checked by syncLine: admitted may become completed only here).
      if (user.line === 'admitted') user.line = 'completed';
      if (soldOut(model)) model.wasSoldOut = true;
    }
    return { kind: 'none' };
  }
  toString() {
    return `pay(u${this.user}, #${this.k})`;
  }
}

/**
 * A refund of a paid (or already refunded) reservation when there is one, by its owner (before the
 * cut-off: the show is a month away, less the fee) or by a stranger (404). Aimed at paid ones, since
 * a random pick rarely lands on one in a short sequence.
 */
class Refund extends ReservationStep {
  readonly byOwner: boolean;
  constructor(user: number, k: number, byOwner: boolean) {
    super(user, k);
    this.byOwner = byOwner;
  }
  async act(model: Model): Promise<Admits> {
    const paid = model.reservations.filter((r) => r.status === 'confirmed' || r.status === 'refunded');
    const reservation = paid.length > 0 ? paid[this.k % paid.length]! : nth(model, this.k);
    const by = this.byOwner ? reservation.user : this.user;
    const user = model.users[by]!;
    const got = await answer(await api(`/reservations/${reservation.id}/refund`, { method: 'POST', headers: authed(user.token) }));
    const refunded = reservation.amount - REFUND_FEE;
    if (reservation.user !== by) expect(got.code).toBe('RESERVATION_NOT_FOUND');
    else if (reservation.status === 'refunded') {
      // A repeat answers with the same refund and credits nothing (checkAll compares the balance).
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ reservationId: reservation.id, status: 'refunded', refunded, fee: REFUND_FEE });
    } else if (reservation.status !== 'confirmed') expect(got.code).toBe('RESERVATION_NOT_PAID');
    else {
      expect(got.status).toBe(200);
      user.balance += refunded;
      expect(got.body).toMatchObject({ reservationId: reservation.id, status: 'refunded', refunded, fee: REFUND_FEE, balance: user.balance });
      reservation.status = 'refunded';
      stats.refunds++;
    }
    return { kind: 'none' };
  }
  toString() {
    return `refund(${this.byOwner ? 'owner' : `u${this.user}`}, #${this.k})`;
  }
}

/**
 * The waitlist's gate: closed (409 WAITLIST_NOT_OPEN) until every seat has been sold, open from then
 * on whatever refunds free. The entry is left at once, so an offer it may have been made (a seat a
 * refund freed) goes back and the seat map stays what the model says.
 */
class WaitlistVisit extends Step {
  readonly user: number;
  readonly seats: number;
  constructor(user: number, seats: number) {
    super();
    this.user = user;
    this.seats = seats;
  }
  async act(model: Model, real: Real): Promise<Admits> {
    const user = model.users[this.user]!;
    const joined = await answer(
      await api(`/concerts/${real.concertId}/waitlist`, { method: 'POST', headers: { ...authed(user.token), 'content-type': 'application/json' }, body: JSON.stringify({ seats: this.seats }) }),
    );
    if (!model.wasSoldOut) {
      expect(joined.code).toBe('WAITLIST_NOT_OPEN');
      return { kind: 'none' };
    }
    if (ownedSeats(model, this.user) + this.seats > MAX_SEATS) {
      expect(joined.code).toBe('HOLD_LIMIT');
      return { kind: 'none' };
    }
    expect(joined.status).toBe(201);
    stats.waitlistJoins++;
    const left = await api(`/concerts/${real.concertId}/waitlist/me`, { method: 'DELETE', headers: authed(user.token) });
    expect(left.status).toBe(204);
    return { kind: 'none' };
  }
  toString() {
    return `waitlist(u${this.user}, ${this.seats})`;
  }
}

class Move extends Step {
  readonly kind: 'charge' | 'use';
  readonly user: number;
  readonly amount: number;
  constructor(kind: 'charge' | 'use', user: number, amount: number) {
    super();
    this.kind = kind;
    this.user = user;
    this.amount = amount;
  }
  async act(model: Model): Promise<Admits> {
    const user = model.users[this.user]!;
    const got = await answer(await (this.kind === 'charge' ? charge : use)(user.token, this.amount));
    if (this.kind === 'use' && user.balance < this.amount) expect(got.code).toBe('INSUFFICIENT_BALANCE');
    else {
      expect(got.status).toBe(200);
      user.balance += this.kind === 'charge' ? this.amount : -this.amount;
      expect(got.body).toEqual({ balance: user.balance });
    }
    return { kind: 'none' };
  }
  toString() {
    return `${this.kind}(u${this.user}, ${this.amount})`;
  }
}

/** A held reservation falls due (by both clocks) and the room's alarm runs. */
class Expire extends Step {
  readonly k: number;
  constructor(k: number) {
    super();
    this.k = k;
  }
  override check(model: Readonly<Model>) {
    return model.reservations.some((r) => r.status === 'held');
  }
  async act(model: Model, real: Real): Promise<Admits> {
    const held = model.reservations.filter((r) => r.status === 'held');
    const reservation = held[this.k % held.length]!;
    await real.db.query(`UPDATE reservations SET expires_at = now() - interval '1 millisecond' WHERE id = $1`, [reservation.id]);
    await runInDurableObject(room(real.concertId), (_instance, state) => {
      state.storage.sql.exec(`UPDATE holds SET expires_at = ? WHERE reservation_id = ?`, Date.now() - 1, reservation.id);
    });
    expect(await runDurableObjectAlarm(room(real.concertId))).toBe(true);
    reservation.status = 'expired';
    return { kind: 'window' };
  }
  toString() {
    return `expire(#${this.k})`;
  }
}

/**
 * The runtime resets the room (`ctx.abort()`, as on a crash or deploy) or evicts it (gracefully)
 * between requests; either way it restarts from its storage. A graceful eviction waits for the room's
 * pending timers and connections to drain (4–10 s here: the HTTP queries' 5 s abort timers, the
 * pool's idle connections), so only one sequence in EVICT_EVERY evicts, once; the others reset.
 */
class Restart extends Step {
  readonly how: 'evict' | 'reset';
  constructor(how: 'evict' | 'reset') {
    super();
    this.how = how;
  }
  override check(model: Readonly<Model>) {
    return this.how === 'reset' || model.mayEvict;
  }
  async act(model: Model, real: Real): Promise<Admits> {
    if (this.how === 'evict') {
      model.mayEvict = false;
      await evictDurableObject(room(real.concertId)).catch(() => undefined);
    } else await resetRoom(real.concertId);
    return { kind: 'none' };
  }
  toString() {
    return `${this.how}()`;
  }
}

const user = fc.integer({ min: 0, max: USERS - 1 });
const pick = fc.nat({ max: 30 });
const seats = (max: number) => fc.uniqueArray(fc.integer({ min: 1, max: SEATS }), { minLength: 1, maxLength: max });
/** One weighted choice: sequences should mostly do things that can succeed once people are in. */
const step = fc.oneof(
  { weight: 10, arbitrary: user.map((u) => new Join(u)) },
  { weight: 6, arbitrary: fc.constant(new Tick()) },
  { weight: 16, arbitrary: fc.tuple(user, seats(3)).map(([u, s]) => new Hold(u, s)) },
  { weight: 6, arbitrary: fc.tuple(user, pick).map(([u, k]) => new Cancel(u, k)) },
  { weight: 9, arbitrary: fc.tuple(user, pick).map(([u, k]) => new Pay(u, k)) },
  { weight: 6, arbitrary: fc.tuple(user, pick, fc.boolean()).map(([u, k, byOwner]) => new Refund(u, k, byOwner)) },
  { weight: 4, arbitrary: fc.tuple(user, fc.integer({ min: 1, max: 2 })).map(([u, n]) => new WaitlistVisit(u, n)) },
  { weight: 9, arbitrary: fc.tuple(user, fc.constantFrom(100, 200, 500)).map(([u, amount]) => new Move('charge', u, amount)) },
  { weight: 3, arbitrary: fc.tuple(user, fc.constantFrom(50, 150, 400)).map(([u, amount]) => new Move('use', u, amount)) },
  { weight: 6, arbitrary: pick.map((k) => new Expire(k)) },
  { weight: 3, arbitrary: fc.constant(new Restart('reset')) },
  { weight: 1, arbitrary: fc.constant(new Restart('evict')) },
);

const runs = inject('modelRuns');
const seed = inject('modelSeed') ?? Date.now() % 2 ** 31;
const path = inject('modelPath');

it(`keeps the model and every invariant over ${runs} random command sequences`, { timeout: 60 * 60 * 1000 }, async () => {
  console.log(`[model] seed ${seed}${path ? ` path ${path}` : ''} (replay: MODEL_SEED=${seed} npx vitest run test/model)`);
  invariantCounts.checks = 0;
  invariantCounts.violations = 0;
  const startedAt = Date.now();
  const db = await openDirectClient();
  try {
    await fc.assert(
      fc.asyncProperty(fc.commands([step], { maxCommands: 14, size: 'medium' }), async (commands) => {
        stats.sequences++;
        const concert = await openConcert({
          seats: SEATS,
          price: PRICE,
          queue: { admitPerWindow: ADMIT_PER_WINDOW, windowSeconds: 600, sessionSeconds: 86_400, holdSeconds: 3_600 },
          refunds: { fee: REFUND_FEE },
        });
        const tag = crypto.randomUUID().slice(0, 8);
        const users = await Promise.all(
          Array.from({ length: USERS }, async (_, i): Promise<UserModel> => {
            const id = `model-${tag}-u${i}`;
            return { id, token: await tokenFor(id), line: 'none', balance: 0 };
          }),
        );
        const model: Model = { users, reservations: [], mayEvict: stats.sequences % EVICT_EVERY === 1, wasSoldOut: false };
        const real: Real = { concertId: concert.id, db };
        // Two fans are in line from the start (the first window admits them); the rest join as steps.
        for (const first of [new Join(0), new Join(1)]) await first.run(model, real);
        // Every other sequence starts with one seat bought, so that refunds (and what follows them)
        // are reached: a short random sequence rarely charges, holds and pays with one user.
        if (stats.sequences % 4 === 0) for (const first of [new Move('charge', 0, PRICE), new Hold(0, [SEATS]), new Pay(0, 0)]) await first.run(model, real);
        // And one in four starts sold out (both fans buy three seats), so the waitlist's open side,
        // a refund after sell-out and a place in line refused its hold are reached too.
        if (stats.sequences % 4 === 2) {
          const sellOut = [new Move('charge', 0, 3 * PRICE), new Hold(0, [1, 2, 3]), new Pay(0, 0), new Move('charge', 1, 3 * PRICE), new Hold(1, [4, 5, 6]), new Pay(1, 1)];
          for (const first of sellOut) await first.run(model, real);
          expect(model.wasSoldOut).toBe(true);
        }
        await fc.asyncModelRun(() => ({ model, real }), commands);
      }),
      { numRuns: runs, seed, ...(path ? { path } : {}), endOnFailure: false },
    );
  } finally {
    await db.close();
  }
  console.log(
    `[model] ${stats.sequences} sequences (${runs} + shrinking), ${stats.commands} steps (${2 * stats.sequences} of them the opening joins), ` +
      `${stats.refunds} refunds, ${stats.waitlistJoins} waitlist joins, ${invariantCounts.checks} invariant checks, ` +
      `${invariantCounts.violations} violations in ${Math.round((Date.now() - startedAt) / 1000)} s (acting ${Math.round(timing.act / 1000)} s, checking ${Math.round(timing.check / 1000)} s)`,
  );
  expect(invariantCounts.violations).toBe(0);
});
