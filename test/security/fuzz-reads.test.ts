import { fc, it } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { DateSchema, UuidSchema } from '../../src/lib/schemas.ts';
import { UserIdSchema } from '../../src/routes/auth.ts';
import { HistoryQuery } from '../../src/routes/balance.ts';
import { ListQuery } from '../../src/routes/concerts.ts';
import { uniqueId } from '../helpers/api.ts';
import { acceptedBy, headerValue, hostileString, shapedBy, urlPart, wellFormed } from '../helpers/arbitraries.ts';
import { charge } from '../helpers/balance.ts';
import { admittedUser, createConcert, hold, joinOk, openConcert, tokenFor, uniqueFutureDay } from '../helpers/concerts.ts';
import { dbFingerprint, fingerprint } from '../helpers/fingerprint.ts';
import { expectOneOf, fuzzRuns, reportCounts, send } from '../helpers/fuzz.ts';
import { flipCharacter } from '../helpers/jwt.ts';

/*
 * Input fuzzing of the routes that read (and of DELETE /reservations/:id): hostile path segments,
 * query strings derived from the routes' own query schemas and mutated, hostile tokens. No 5xx, no
 * leak, the status the schema predicts, and nothing in Postgres or the rooms changes.
 * BATCH cases per property run in parallel; RUNS runs give ≥ 2,000 cases per endpoint.
 */

const BATCH = 20;
const RUNS = 100;
const TIMEOUT_MS = 240_000;

const ENDPOINTS = [
  'GET /queue/status',
  'GET /queue/challenge',
  'GET /reservations/:key',
  'DELETE /reservations/:id',
  'GET /balance/:userId',
  'GET /balance/history',
  'GET /concerts',
  'GET /concerts/:id',
  'GET /concerts/:id/seats',
  'GET /concerts/:id/opening',
];

let waitingConcert: string;
let openConcertId: string;
let openConcertDate: string;
let waitingTokens: string[];
/**
 * Readers the valid cases take turns as, in rotation rather than at random, so each gets an equal
 * share: 2,000 × 6/9 valid cases per property over 60 readers is 22 each, 44 for the two account
 * reads together, under the per-user limit (60 per 10 s) however fast the machine runs them.
 */
const READERS = 60;
let nextReader = 0;
let readers: { userId: string; token: string }[];
let someoneElsesReservation: string;
let before: Awaited<ReturnType<typeof fingerprint>>;

beforeAll(async () => {
  waitingConcert = (await createConcert()).id;
  // Enough waiting users that the per-user status limit (60 per 10 s) never trips.
  waitingTokens = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await joinOk(waitingConcert, uniqueId(`fz-wait-${i}`))).token));
  openConcertDate = uniqueFutureDay();
  const open = await openConcert({ seats: 10, date: openConcertDate, queue: { sessionSeconds: 3600, holdSeconds: 3600 } });
  openConcertId = open.id;
  const owner = await admittedUser(open.id, 'fz-owner');
  someoneElsesReservation = (await (await hold(open.id, owner, [1])).json<{ reservationId: string }>()).reservationId;
  readers = await Promise.all(
    Array.from({ length: READERS }, async () => {
      const userId = uniqueId('fz-reader');
      const token = await tokenFor(userId);
      expect((await charge(token, 10)).status).toBe(200);
      return { userId, token };
    }),
  );
  before = await fingerprint([waitingConcert, openConcertId]);
});

afterAll(async () => {
  // Reads and refused deletes: nothing anywhere moved.
  expect(await fingerprint([waitingConcert, openConcertId])).toEqual(before);
  reportCounts('reads', ENDPOINTS, BATCH * RUNS);
});

type Auth = { kind: 'valid'; reader: number } | { kind: 'none' } | { kind: 'hostile'; value: string };
const auth: fc.Arbitrary<Auth> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null).map((): Auth => ({ kind: 'valid', reader: nextReader++ % READERS })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' }) },
  { weight: 2, arbitrary: headerValue.map((value): Auth => ({ kind: 'hostile', value })) },
);
const authorization = (a: Auth) => (a.kind === 'valid' ? `Bearer ${readers[a.reader]!.token}` : a.kind === 'hostile' ? `Bearer ${a.value}` : undefined);

/** A path segment: hostile, a uuid, a real date, or one of the given known ids. */
const segment = (...known: (() => string)[]) =>
  fc.oneof(
    { weight: 4, arbitrary: hostileString },
    { weight: 2, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: shapedBy(DateSchema) as fc.Arbitrary<string> },
    ...known.map((id) => ({ weight: 1, arbitrary: fc.constant(null).map(id) })),
  );

/** How a segment reaches the router: an empty or dot segment collapses the path (404 route). */
const collapses = (value: string) => value === '' || value === '.' || value === '..';
const batch = <T>(arbitrary: fc.Arbitrary<T>) => fc.array(arbitrary, { minLength: BATCH, maxLength: BATCH });

/** A query string of the given fields, each from the schema's values or hostile, or absent. */
function queryOf(schema: Parameters<typeof shapedBy>[0]) {
  const shaped = shapedBy(schema) as fc.Arbitrary<Record<string, unknown>>;
  return fc.tuple(shaped, fc.dictionary(fc.constantFrom(...Object.keys((schema as unknown as { shape: object }).shape)), hostileString, { maxKeys: 2 })).map(([valid, hostile]) => {
    const fields: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...valid, ...hostile })) if (value !== undefined) fields[key] = wellFormed(typeof value === 'string' ? value : JSON.stringify(value));
    return fields;
  });
}
const queryString = (fields: Record<string, string>) => {
  const text = Object.entries(fields)
    .map(([key, value]) => `${key}=${urlPart(value)}`)
    .join('&');
  return text ? `?${text}` : '';
};

describe('fuzz: GET /queue/challenge', () => {
  const concertId = fc.option(segment(() => waitingConcert), { nil: undefined, freq: 8 });

  it.prop([batch(fc.record({ concertId, auth }))], fuzzRuns(RUNS))(
    'answers a signed-in fan of a real concert 200, and anything else 4xx, writing nothing',
    async (cases) => {
      const results = await Promise.all(
        cases.map((c) =>
          send('GET /queue/challenge', {
            method: 'GET',
            path: `/queue/challenge${c.concertId === undefined ? '' : `?concertId=${urlPart(c.concertId)}`}`,
            headers: { Authorization: authorization(c.auth) },
          }),
        ),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = c.concertId === undefined ? undefined : wellFormed(c.concertId);
        const label = JSON.stringify(c);
        if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (id === undefined || !acceptedBy(UuidSchema, id)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (id === waitingConcert) expectOneOf(result, { 200: '*' }, label);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, label);
        // That concert asks for no proof of work: the fan is told so, and given no challenge.
        if (result.status === 200) expect(result.json).toEqual({ required: false });
      }
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: GET /queue/status', () => {
  const token = fc.oneof(
    { weight: 3, arbitrary: fc.nat().map((i) => ({ token: waitingTokens[i % waitingTokens.length]!, valid: true })) },
    { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.nat()).map(([i, at]) => {
      const good = waitingTokens[i % waitingTokens.length]!;
      return { token: flipCharacter(good, at % good.length), valid: false };
    }) },
    { weight: 3, arbitrary: headerValue.map((value) => ({ token: value, valid: false })) },
  );

  it.prop([batch(token)], fuzzRuns(RUNS))(
    'answers 200 to a real queue token and 401 to anything else',
    async (cases) => {
      const results = await Promise.all(cases.map((c) => send('GET /queue/status', { method: 'GET', path: '/queue/status', headers: { 'Queue-Token': c.token } })));
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        // A flipped '.' is no flip at all: the token stays valid.
        const valid = c.valid || waitingTokens.includes(c.token);
        expectOneOf(result, valid ? { 200: '*' } : { 401: ['INVALID_QUEUE_TOKEN'] }, c.token);
        if (valid) expect(result.json).toMatchObject({ status: 'waiting' });
      }
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: GET /reservations/:key and DELETE /reservations/:id', () => {
  const readCase = fc.record({
    key: segment(() => someoneElsesReservation, () => openConcertDate),
    concertId: fc.option(fc.oneof(fc.uuid(), hostileString, fc.constant(null).map(() => openConcertId)), { nil: undefined }),
    auth,
  });

  it.prop([batch(readCase)], fuzzRuns(RUNS))(
    'reads only the caller’s reservations and the dates’ seats; refuses the rest with 4xx',
    async (cases) => {
      const results = await Promise.all(
        cases.map((c) =>
          send('GET /reservations/:key', {
            method: 'GET',
            path: `/reservations/${urlPart(c.key)}${c.concertId === undefined ? '' : `?concertId=${urlPart(c.concertId)}`}`,
            headers: { Authorization: authorization(c.auth) },
          }),
        ),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const key = wellFormed(c.key);
        const label = JSON.stringify(c);
        if (collapses(key)) expectOneOf(result, { 404: ['ROUTE_NOT_FOUND'] }, label);
        else if (c.concertId !== undefined && !acceptedBy(UuidSchema, wellFormed(c.concertId))) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (acceptedBy(UuidSchema, key)) expectOneOf(result, c.auth.kind === 'valid' ? { 404: ['RESERVATION_NOT_FOUND'] } : { 401: ['UNAUTHENTICATED'] }, label);
        else if (acceptedBy(DateSchema, key)) expectOneOf(result, { 200: '*', 400: ['VALIDATION_FAILED'], 404: ['CONCERT_NOT_FOUND'] }, label);
        else expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
      }
    },
    TIMEOUT_MS,
  );

  it.prop([batch(fc.record({ key: segment(() => someoneElsesReservation), auth }))], fuzzRuns(RUNS))(
    'cancels nothing that is not the caller’s',
    async (cases) => {
      const dbBefore = await dbFingerprint();
      const results = await Promise.all(
        cases.map((c) => send('DELETE /reservations/:id', { method: 'DELETE', path: `/reservations/${urlPart(c.key)}`, headers: { Authorization: authorization(c.auth) } })),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const key = wellFormed(c.key);
        const label = JSON.stringify(c);
        if (collapses(key)) expectOneOf(result, { 404: ['ROUTE_NOT_FOUND'] }, label);
        else if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (acceptedBy(UuidSchema, key)) expectOneOf(result, { 404: ['RESERVATION_NOT_FOUND'] }, label);
        else expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
      }
      expect({ ...(await dbFingerprint()), idempotencyKeys: 0 }).toEqual({ ...dbBefore, idempotencyKeys: 0 });
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: GET /balance/:userId and /balance/history', () => {
  const OWN_ID = '<own id>';
  const userIdSegment = fc.oneof(
    { weight: 3, arbitrary: hostileString },
    { weight: 2, arbitrary: shapedBy(UserIdSchema) as fc.Arbitrary<string> },
    { weight: 1, arbitrary: fc.noBias(fc.nat({ max: READERS - 1 })).map((i) => readers[i]!.userId) },
    // The caller's own id, whichever reader the case calls as.
    { weight: 1, arbitrary: fc.constant(OWN_ID) },
  );

  it.prop([batch(fc.record({ userId: userIdSegment, auth }))], fuzzRuns(RUNS))(
    'shows a balance to its owner only',
    async (generated) => {
      const cases = generated.map((c) => (c.userId === OWN_ID ? { ...c, userId: readers[c.auth.kind === 'valid' ? c.auth.reader : 0]!.userId } : c));
      const results = await Promise.all(
        cases.map((c) => send('GET /balance/:userId', { method: 'GET', path: `/balance/${urlPart(c.userId)}`, headers: { Authorization: authorization(c.auth) } })),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const userId = wellFormed(c.userId);
        const label = JSON.stringify(c);
        if (collapses(userId)) expectOneOf(result, { 200: '*', 401: ['UNAUTHENTICATED'], 404: ['ROUTE_NOT_FOUND'] }, label);
        else if (['history', 'charge', 'use'].includes(userId)) expectOneOf(result, { 200: '*', 400: '*', 401: '*', 403: '*', 404: '*' }, label);
        else if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!acceptedBy(UserIdSchema, userId)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (userId === readers[c.auth.reader]!.userId) expectOneOf(result, { 200: '*' }, label);
        else expectOneOf(result, { 403: ['FORBIDDEN'] }, label);
        if (result.status === 200 && c.auth.kind === 'valid' && userId === readers[c.auth.reader]!.userId) expect(result.json).toEqual({ userId, balance: 10 });
      }
    },
    TIMEOUT_MS,
  );

  it.prop([batch(fc.record({ query: queryOf(HistoryQuery), auth }))], fuzzRuns(RUNS))(
    'pages the caller’s own history, refusing bad cursors with 400',
    async (cases) => {
      const results = await Promise.all(
        cases.map((c) => send('GET /balance/history', { method: 'GET', path: `/balance/history${queryString(c.query)}`, headers: { Authorization: authorization(c.auth) } })),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const label = JSON.stringify(c);
        if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else expectOneOf(result, acceptedBy(HistoryQuery, c.query) ? { 200: '*' } : { 400: ['VALIDATION_FAILED'] }, label);
        if (result.status === 200) {
          const { entries } = result.json as { entries: { delta: number }[] };
          expect(entries.every((entry) => entry.delta === 10)).toBe(true);
        }
      }
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: the public concert reads', () => {
  it.prop([batch(queryOf(ListQuery))], fuzzRuns(RUNS))(
    'lists concerts for any valid query and answers 400 to the rest',
    async (queries) => {
      const results = await Promise.all(queries.map((query) => send('GET /concerts', { method: 'GET', path: `/concerts${queryString(query)}` })));
      for (const [i, result] of results.entries()) {
        const query = queries[i]!;
        // The schema decides the fields; the route adds rules across them (date or range, order, span).
        expectOneOf(result, acceptedBy(ListQuery, query) ? { 200: '*', 400: ['VALIDATION_FAILED'] } : { 400: ['VALIDATION_FAILED'] }, JSON.stringify(query));
      }
    },
    TIMEOUT_MS,
  );

  const concertSegment = segment(() => openConcertId, () => waitingConcert);
  const seatStatus = fc.option(fc.oneof(fc.constantFrom('available', 'held', 'sold'), hostileString), { nil: undefined });

  it.prop([batch(concertSegment)], fuzzRuns(RUNS))(
    'shows a concert by id, 404 for an unknown one, 400 for a non-id',
    async (ids) => {
      const results = await Promise.all(ids.map((id) => send('GET /concerts/:id', { method: 'GET', path: `/concerts/${urlPart(id)}` })));
      for (const [i, result] of results.entries()) {
        const id = wellFormed(ids[i]!);
        if (collapses(id)) expectOneOf(result, { 200: '*', 400: '*', 404: ['ROUTE_NOT_FOUND'] }, id);
        else if (!acceptedBy(UuidSchema, id)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, id);
        else if (id === openConcertId || id === waitingConcert) expectOneOf(result, { 200: '*' }, id);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, id);
      }
    },
    TIMEOUT_MS,
  );

  it.prop([batch(fc.record({ id: concertSegment, status: seatStatus }))], fuzzRuns(RUNS))(
    'shows a seat map by id and status, 404 for an unknown concert, 400 for the rest',
    async (cases) => {
      const results = await Promise.all(
        cases.map((c) =>
          send('GET /concerts/:id/seats', { method: 'GET', path: `/concerts/${urlPart(c.id)}/seats${c.status === undefined ? '' : `?status=${urlPart(c.status)}`}` }),
        ),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = wellFormed(c.id);
        const status = c.status === undefined ? undefined : wellFormed(c.status);
        const label = JSON.stringify(c);
        if (collapses(id)) expectOneOf(result, { 200: '*', 400: '*', 404: '*' }, label);
        else if (!acceptedBy(UuidSchema, id) || (status !== undefined && !['available', 'held', 'sold'].includes(status))) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (id === openConcertId || id === waitingConcert) expectOneOf(result, { 200: '*' }, label);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, label);
      }
    },
    TIMEOUT_MS,
  );
  it.prop([batch(concertSegment)], fuzzRuns(RUNS))(
    'shows a concert’s opening draw by id, 404 for an unknown one, 400 for a non-id',
    async (ids) => {
      const results = await Promise.all(ids.map((id) => send('GET /concerts/:id/opening', { method: 'GET', path: `/concerts/${urlPart(id)}/opening` })));
      for (const [i, result] of results.entries()) {
        const id = wellFormed(ids[i]!);
        if (collapses(id)) expectOneOf(result, { 200: '*', 400: '*', 404: '*' }, id);
        else if (!acceptedBy(UuidSchema, id)) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, id);
        else if (id === openConcertId || id === waitingConcert) expectOneOf(result, { 200: '*' }, id);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, id);
      }
    },
    TIMEOUT_MS,
  );
});
