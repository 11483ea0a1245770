import { fc, it } from '@fast-check/vitest';
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { UuidSchema } from '../../src/lib/schemas.ts';
import { WaitlistJoinSchema } from '../../src/routes/waitlist.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { acceptedBy, bodyFor, headerValue, hostileString, RAW_BODIES, shapedBy, urlPart, wellFormed } from '../helpers/arbitraries.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { admittedUser, hold, openConcert, stats, tokenFor } from '../helpers/concerts.ts';
import { dbFingerprint, fingerprint } from '../helpers/fingerprint.ts';
import { expectOneOf, fuzzRuns, reportCounts, send, type FuzzResult } from '../helpers/fuzz.ts';

/*
 * Input fuzzing of the refund and waitlist routes (issue 18): hostile and real ids in the path,
 * bodies from the waitlist's own schema (mutated, hostile, raw), hostile, absent, user and admin
 * credentials. No 5xx, no leak, the status the schema and the state predict — any documented 4xx
 * of the business state, since the waitlist's opening rules and the refund figures are their own
 * suites' business — and the state moves only as the 2xx answers say. A refund checks credentials
 * before anything else: without them, 401 whatever the id.
 * BATCH cases per run in parallel; RUNS runs give ≥ 2,000 cases per endpoint.
 */

const BATCH = 20;
const RUNS = 100;
const TIMEOUT_MS = 240_000;

/**
 * Users the valid cases take turns as, in rotation rather than at random, so each gets an equal
 * share: 2,000 × 6/11 cases per property over 60 users is under 20 each, under 40 for join and
 * leave together (one budget), below the per-user limits (60 per 10 s) however fast the machine runs.
 */
const USERS = 60;
let nextUser = 0;
/** Fans with a refunded reservation, and fans with a held one; an owner case is one of theirs. */
const OWNERS = 4;

const ENDPOINTS = ['POST /reservations/:id/refund', 'POST /concerts/:id/waitlist', 'GET /concerts/:id/waitlist/me', 'DELETE /concerts/:id/waitlist/me'];

/** The concert with seats to hold (the waitlist is closed) and the one whose only seat is sold. */
let openId: string;
let soldOutId: string;
let users: { userId: string; token: string }[];
/** Each paid, then refunded by its owner: a repeat answers with `first`. */
let refunded: { token: string; reservationId: string; first: Record<string, unknown> }[];
/** Each held by its owner, unpaid. */
let held: { token: string; reservationId: string }[];
/** Paid by a fan outside the pool: nobody in the pool may refund it, and the admin is never sent at it. */
let paidId: string;
let before: Awaited<ReturnType<typeof fingerprint>>;

beforeAll(async () => {
  const concert = await openConcert({ seats: 10, price: 100, queue: { sessionSeconds: 3600, holdSeconds: 3600 } });
  openId = concert.id;
  refunded = await Promise.all(
    Array.from({ length: OWNERS }, async (_, k) => {
      const refunder = await admittedUser(openId, 'fz-refunder');
      expect((await charge(refunder.userToken, 100)).status).toBe(200);
      const reservationId = (await (await hold(openId, refunder, [1 + k])).json<{ reservationId: string }>()).reservationId;
      expect((await pay(refunder.userToken, reservationId)).status).toBe(201);
      const response = await api(`/reservations/${reservationId}/refund`, { method: 'POST', headers: authed(refunder.userToken) });
      expect(response.status).toBe(200);
      return { token: refunder.userToken, reservationId, first: await response.json<Record<string, unknown>>() };
    }),
  );
  held = await Promise.all(
    Array.from({ length: OWNERS }, async (_, k) => {
      const holder = await admittedUser(openId, 'fz-holder');
      return { token: holder.userToken, reservationId: (await (await hold(openId, holder, [1 + OWNERS + k])).json<{ reservationId: string }>()).reservationId };
    }),
  );
  const payer = await admittedUser(openId, 'fz-payer');
  expect((await charge(payer.userToken, 100)).status).toBe(200);
  paidId = (await (await hold(openId, payer, [1 + 2 * OWNERS])).json<{ reservationId: string }>()).reservationId;
  expect((await pay(payer.userToken, paidId)).status).toBe(201);
  users = await Promise.all(
    Array.from({ length: USERS }, async () => {
      const userId = uniqueId('fz-wl');
      return { userId, token: await tokenFor(userId) };
    }),
  );

  const soldOut = await openConcert({ seats: 1, price: 100 });
  soldOutId = soldOut.id;
  const buyer = await admittedUser(soldOutId, 'fz-buyer');
  expect((await charge(buyer.userToken, 100)).status).toBe(200);
  const bought = (await (await hold(soldOutId, buyer, [1])).json<{ reservationId: string }>()).reservationId;
  expect((await pay(buyer.userToken, bought)).status).toBe(201);
  before = await fingerprint([openId, soldOutId]);
});

afterAll(async () => {
  // Refunds and waitlist calls by the pool moved no money, no seat and no line.
  const after = await fingerprint([openId, soldOutId]);
  expect({ ...after.db, idempotencyKeys: 0 }).toEqual({ ...before.db, idempotencyKeys: 0 });
  expect(after.rooms).toEqual(before.rooms);
  // The fuzz reached the waitlist's 2xx paths too, not only its refusals.
  expect(total(await waitlistEntries(soldOutId))).toBeGreaterThan(0);
  reportCounts('refunds and waitlist', ENDPOINTS, BATCH * RUNS);
});

type Auth = { kind: 'user'; user: number } | { kind: 'owner' } | { kind: 'admin' } | { kind: 'none' } | { kind: 'hostile'; value: string };
const userAuth = fc.constant(null).map((): Auth => ({ kind: 'user', user: nextUser++ % USERS }));
const someAuth = (withOwnerAndAdmin: boolean): fc.Arbitrary<Auth> =>
  fc.oneof(
    { weight: 6, arbitrary: userAuth },
    ...(withOwnerAndAdmin
      ? [
          { weight: 1, arbitrary: fc.constant<Auth>({ kind: 'owner' }) },
          { weight: 2, arbitrary: fc.constant<Auth>({ kind: 'admin' }) },
        ]
      : []),
    { weight: 1, arbitrary: fc.constant<Auth>({ kind: 'none' }) },
    { weight: 2, arbitrary: headerValue.map((value): Auth => ({ kind: 'hostile', value })) },
  );
/** The token an owner case sends: the owner of the reservation it names (a fan of the pool for any other id). */
function ownerToken(id: string): string {
  return [...refunded, ...held].find((r) => r.reservationId === id)?.token ?? users[nextUser++ % USERS]!.token;
}
function authorization(a: Auth, id = ''): string | undefined {
  if (a.kind === 'user') return `Bearer ${users[a.user]!.token}`;
  if (a.kind === 'owner') return `Bearer ${ownerToken(id)}`;
  if (a.kind === 'admin') return `Bearer ${env.ADMIN_TOKEN}`;
  return a.kind === 'hostile' ? `Bearer ${a.value}` : undefined;
}

/** A path segment: hostile, a made-up uuid, or one of the known ids (`known(k)`, k < OWNERS, resolved once setup ran). */
const segment = (...known: ((k: number) => string)[]) =>
  fc.oneof(
    { weight: 4, arbitrary: hostileString },
    { weight: 2, arbitrary: fc.uuid() },
    ...known.map((id) => ({ weight: 2, arbitrary: fc.noBias(fc.nat({ max: OWNERS - 1 })).map(id) })),
  );
/** How a segment reaches the router: an empty or dot segment collapses the path (another route, or none). */
const collapses = (value: string) => value === '' || value === '.' || value === '..';
const batch = <T>(arbitrary: fc.Arbitrary<T>) => fc.array(arbitrary, { minLength: BATCH, maxLength: BATCH });
const anyClientError = Object.fromEntries([400, 401, 403, 404, 405, 409, 422].map((status) => [status, '*' as const]));

describe('fuzz: POST /reservations/:id/refund', () => {
  // The admin refunds anything paid: it is never aimed at the one paid reservation left.
  const refundCase = fc
    .record({ id: segment((k) => refunded[k]!.reservationId, (k) => held[k]!.reservationId, () => paidId), auth: someAuth(true) })
    .filter((c) => !(c.auth.kind === 'admin' && c.id === paidId));

  it.prop([batch(refundCase)], fuzzRuns(RUNS))(
    'refunds nothing new: 401 without credentials whatever the id, 400/404/409 for the rest, the same refund again for its owner',
    async (cases) => {
      const dbBefore = await dbFingerprint();
      const results = await Promise.all(
        cases.map((c) =>
          send('POST /reservations/:id/refund', { method: 'POST', path: `/reservations/${urlPart(c.id)}/refund`, headers: { Authorization: authorization(c.auth, wellFormed(c.id)) } }),
        ),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = wellFormed(c.id);
        const label = JSON.stringify(c);
        const wasRefunded = refunded.find((r) => r.reservationId === id);
        const isHeld = held.some((r) => r.reservationId === id);
        const mayRefund = c.auth.kind === 'admin' || c.auth.kind === 'owner';
        if (collapses(id)) expectOneOf(result, anyClientError, label);
        else if (c.auth.kind === 'none' || c.auth.kind === 'hostile') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!acceptedBy(UuidSchema, id)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (!mayRefund || (!wasRefunded && !isHeld)) expectOneOf(result, { 404: ['RESERVATION_NOT_FOUND'] }, label);
        else if (isHeld) expectOneOf(result, { 409: ['RESERVATION_NOT_PAID', 'REQUEST_IN_PROGRESS'] }, label);
        else expectSameRefund(result, wasRefunded!.first, label);
      }
      expect({ ...(await dbFingerprint()), idempotencyKeys: 0 }).toEqual({ ...dbBefore, idempotencyKeys: 0 });
    },
    TIMEOUT_MS,
  );
});

/** A repeat refund answers with the first one and changes nothing. */
function expectSameRefund(result: FuzzResult, first: Record<string, unknown>, label: string): void {
  expectOneOf(result, { 200: '*', 409: ['REQUEST_IN_PROGRESS'] }, label);
  if (result.status !== 200) return;
  const { reservationId, status, refunded, fee, refundedAt } = first;
  expect(result.json, label).toMatchObject({ reservationId, status, refunded, fee, refundedAt });
}

/** A JSON body from the schema (mutated or hostile) or, one time in ten, a raw not-quite-JSON one. */
type Body = { json: unknown } | { raw: string };
const bodyOf: fc.Arbitrary<Body> = fc.oneof(
  { weight: 9, arbitrary: bodyFor(shapedBy(WaitlistJoinSchema)).map((json): Body => ({ json })) },
  { weight: 1, arbitrary: fc.constantFrom(...RAW_BODIES).map((raw): Body => ({ raw })) },
);
async function joinBodyAccepted(body: Body): Promise<boolean> {
  if ('json' in body) return acceptedBy(WaitlistJoinSchema, body.json);
  try {
    return acceptedBy(WaitlistJoinSchema, await new Response(body.raw).json());
  } catch {
    return false;
  }
}

const waitlistEntries = async (concertId: string) => {
  const { waitlist } = await stats(concertId);
  return waitlist;
};
const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, n) => sum + n, 0);
const concertSegment = segment(() => openId, () => soldOutId);

describe('fuzz: the waitlist routes', () => {
  it.prop([batch(fc.record({ id: concertSegment, body: bodyOf, auth: someAuth(false) }))], fuzzRuns(RUNS))(
    'joins exactly where its 2xx answers say, and answers everything else 4xx',
    async (cases) => {
      const entriesBefore = total(await waitlistEntries(soldOutId));
      const results = await Promise.all(
        cases.map((c) =>
          send('POST /concerts/:id/waitlist', {
            method: 'POST',
            path: `/concerts/${urlPart(c.id)}/waitlist`,
            headers: { Authorization: authorization(c.auth) },
            ...('raw' in c.body ? { rawBody: c.body.raw } : { body: c.body.json }),
          }),
        ),
      );
      let created = 0;
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = wellFormed(c.id);
        const label = JSON.stringify(c);
        if (collapses(id)) expectOneOf(result, anyClientError, label);
        else if (c.auth.kind !== 'user') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!acceptedBy(UuidSchema, id) || !(await joinBodyAccepted(c.body))) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (id === openId) expectOneOf(result, { 409: ['WAITLIST_NOT_OPEN'] }, label);
        else if (id === soldOutId) expectOneOf(result, { 200: '*', 201: '*', 409: ['WAITLIST_NOT_OPEN', 'REQUEST_IN_PROGRESS'], 422: ['HOLD_LIMIT'] }, label);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, label);
        if (result.status === 201) created++;
        if (result.status < 300) expect(result.json, label).toMatchObject({ concertId: soldOutId });
      }
      // One entry per 201; a 200 is an entry that already was.
      expect(total(await waitlistEntries(soldOutId))).toBe(entriesBefore + created);
      expect(total(await waitlistEntries(openId))).toBe(0);
    },
    TIMEOUT_MS,
  );

  it.prop([batch(fc.record({ id: concertSegment, auth: someAuth(false) }))], fuzzRuns(RUNS))(
    'shows each caller only their own entry and changes nothing',
    async (cases) => {
      const entriesBefore = await waitlistEntries(soldOutId);
      const results = await Promise.all(
        cases.map((c) => send('GET /concerts/:id/waitlist/me', { method: 'GET', path: `/concerts/${urlPart(c.id)}/waitlist/me`, headers: { Authorization: authorization(c.auth) } })),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = wellFormed(c.id);
        const label = JSON.stringify(c);
        if (collapses(id)) expectOneOf(result, anyClientError, label);
        else if (c.auth.kind !== 'user') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!acceptedBy(UuidSchema, id)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (id === soldOutId) expectOneOf(result, { 200: '*', 404: ['WAITLIST_ENTRY_NOT_FOUND'] }, label);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND', 'WAITLIST_ENTRY_NOT_FOUND'] }, label);
        if (result.status === 200) expect(result.json, label).toMatchObject({ concertId: soldOutId });
      }
      expect(await waitlistEntries(soldOutId)).toEqual(entriesBefore);
    },
    TIMEOUT_MS,
  );

  it.prop([batch(fc.record({ id: concertSegment, auth: someAuth(false) }))], fuzzRuns(RUNS))(
    'leaves only the caller’s own entry, and answers everything else 4xx',
    async (cases) => {
      const entriesBefore = await waitlistEntries(soldOutId);
      const results = await Promise.all(
        cases.map((c) => send('DELETE /concerts/:id/waitlist/me', { method: 'DELETE', path: `/concerts/${urlPart(c.id)}/waitlist/me`, headers: { Authorization: authorization(c.auth) } })),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = wellFormed(c.id);
        const label = JSON.stringify(c);
        if (collapses(id)) expectOneOf(result, anyClientError, label);
        else if (c.auth.kind !== 'user') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!acceptedBy(UuidSchema, id)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (id === soldOutId) expectOneOf(result, { 204: '*', 404: ['WAITLIST_ENTRY_NOT_FOUND'], 409: ['REQUEST_IN_PROGRESS'] }, label);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND', 'WAITLIST_ENTRY_NOT_FOUND'] }, label);
      }
      // Leaving ends an entry, it never adds or revives one.
      const entriesAfter = await waitlistEntries(soldOutId);
      expect(total(entriesAfter)).toBe(total(entriesBefore));
      expect(entriesAfter.waiting).toBeLessThanOrEqual(entriesBefore.waiting);
    },
    TIMEOUT_MS,
  );
});
