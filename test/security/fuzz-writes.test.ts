import { fc, it } from '@fast-check/vitest';
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { QueueConfigPatchSchema, UuidSchema } from '../../src/lib/schemas.ts';
import { DevTokenRequest } from '../../src/routes/auth.ts';
import { AmountRequest } from '../../src/routes/balance.ts';
import { PaymentRequest } from '../../src/routes/payment.ts';
import { JoinRequestSchema } from '../../src/routes/queue.ts';
import { HoldRequestSchema } from '../../src/routes/reservations.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { acceptedBy, bodyFor, headerValue, hostileString, RAW_BODIES, shapedBy, urlPart, wellFormed } from '../helpers/arbitraries.ts';
import { authed, charge } from '../helpers/balance.ts';
import { admittedUser, createConcert, hold, openConcert, stats, tokenFor, type AdmittedUser } from '../helpers/concerts.ts';
import { dbFingerprint } from '../helpers/fingerprint.ts';
import { expectOneOf, fuzzRuns, reportCounts, send, type FuzzResult } from '../helpers/fuzz.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

/*
 * Input fuzzing of the routes that write (issue 10): bodies derived from each route's own zod
 * schema, mutated past its edges, hostile strings and numbers, raw non-JSON, hostile headers.
 * Every case: no 5xx, no leak (helpers/fuzz.ts), the status the schema and the state predict; every
 * batch: Postgres and the room moved by exactly what the 2xx answers say, so every 4xx changed nothing.
 * BATCH cases run in parallel per property run; RUNS runs give ≥ 2,000 cases per endpoint.
 */

const BATCH = 20;
const RUNS = 100;
const TIMEOUT_MS = 240_000;

/** Which credentials a case sends: the right ones, none, or a hostile header value. */
type Credential = { kind: 'valid' } | { kind: 'none' } | { kind: 'hostile'; value: string };
const credential: fc.Arbitrary<Credential> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ kind: 'valid' }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' }) },
  { weight: 1, arbitrary: headerValue.map((value): Credential => ({ kind: 'hostile', value })) },
);
const bearer = (credentialValue: Credential, token: string) =>
  credentialValue.kind === 'valid' ? `Bearer ${token}` : credentialValue.kind === 'hostile' ? `Bearer ${credentialValue.value}` : undefined;
const plain = (credentialValue: Credential, token: string) =>
  credentialValue.kind === 'valid' ? token : credentialValue.kind === 'hostile' ? credentialValue.value : undefined;

/** A JSON body (from the schema, mutated or hostile) or, one time in ten, a raw not-quite-JSON one. */
type Body = { json: unknown } | { raw: string };
const bodyOf = (schemaShaped: fc.Arbitrary<unknown>): fc.Arbitrary<Body> =>
  fc.oneof(
    { weight: 9, arbitrary: bodyFor(schemaShaped).map((json) => ({ json })) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_BODIES).map((raw) => ({ raw })) },
  );
const bodyRequest = (body: Body) => ('raw' in body ? { rawBody: body.raw } : { body: body.json });

/** What the Worker parses out of a body: JSON as `Request.json()` reads it, or nothing. */
async function parsed(body: Body): Promise<{ ok: true; value: unknown } | { ok: false }> {
  if (!('raw' in body)) return body.json === undefined ? { ok: false } : { ok: true, value: JSON.parse(JSON.stringify(body.json)) as unknown };
  try {
    return { ok: true, value: await new Response(body.raw).json() };
  } catch {
    return { ok: false };
  }
}

/** Does the route's schema accept this body as the Worker will parse it? */
async function accepted(schema: Parameters<typeof acceptedBy>[0], body: Body): Promise<{ ok: boolean; value?: Record<string, unknown> }> {
  const result = await parsed(body);
  if (!result.ok || !acceptedBy(schema, result.value)) return { ok: false };
  return { ok: true, value: result.value as Record<string, unknown> };
}

const idempotencyKey = fc.option(headerValue, { nil: undefined, freq: 2 });
/** An Idempotency-Key the route refuses (400): empty or longer than 255 characters. */
const keyInvalid = (key: string | undefined) => key !== undefined && (key.length === 0 || key.length > 255);
const replayed = (result: FuzzResult) => result.headers.get('Idempotent-Replayed') === 'true';

/** Users per balance batch (see there). */
const USERS_PER_BATCH = 5;

const ENDPOINTS = [
  'POST /balance/charge',
  'POST /balance/use',
  'POST /payment',
  'POST /queue/token',
  'POST /reservations',
  'POST /auth/dev-token',
  'PATCH /admin/concerts/:id/queue',
];

afterAll(() => reportCounts('writes', ENDPOINTS, BATCH * RUNS));

describe('fuzz: POST /balance/charge and /balance/use', () => {
  const balanceCase = fc.record({ body: bodyOf(shapedBy(AmountRequest)), key: idempotencyKey, auth: credential });

  const ledgerOf = async (userId: string) => {
    const [row] = await directQuery<{ balance: string; rows: string }>(
      `SELECT coalesce((SELECT amount FROM balances WHERE user_id = $1), 0)::text AS balance,
              (SELECT count(*) FROM balance_ledger WHERE user_id = $1)::text AS rows`,
      [userId],
    );
    return { balance: Number(row!.balance), rows: Number(row!.rows) };
  };

  it.prop([fc.array(balanceCase, { minLength: BATCH, maxLength: BATCH }), fc.array(balanceCase, { minLength: BATCH, maxLength: BATCH })], {
    ...fuzzRuns(RUNS),
  })(
    'moves a balance by exactly its 200 answers, and answers everything else 4xx',
    async (charges, uses) => {
      // Cases are dealt over a few users: one user's requests queue on its balance lock.
      const users = await Promise.all(
        Array.from({ length: USERS_PER_BATCH }, async () => {
          const userId = uniqueId('fz-bal');
          return { userId, token: await tokenFor(userId), delta: 0, effects: 0 };
        }),
      );
      const cases = [...charges.map((c) => ({ ...c, kind: 'charge' as const })), ...uses.map((c) => ({ ...c, kind: 'use' as const }))].map((c, i) => ({
        ...c,
        user: users[i % users.length]!,
      }));
      const globalBefore = await dbFingerprint();
      const results = await Promise.all(
        cases.map((c) =>
          send(`POST /balance/${c.kind}`, {
            method: 'POST',
            path: `/balance/${c.kind}`,
            headers: { Authorization: bearer(c.auth, c.user.token), 'Idempotency-Key': c.key },
            ...bodyRequest(c.body),
          }),
        ),
      );
      let delta = 0;
      let effects = 0;
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const body = await accepted(AmountRequest, c.body);
        const label = `${c.kind} ${JSON.stringify({ ...c, user: c.user.userId })}`;
        if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!body.ok || keyInvalid(c.key)) expectOneOf(result, { 400: ['VALIDATION_FAILED'], 409: ['REQUEST_IN_PROGRESS'], 422: ['IDEMPOTENCY_KEY_REUSED'] }, label);
        else
          expectOneOf(
            result,
            { 200: '*', 402: ['INSUFFICIENT_BALANCE'], 409: ['REQUEST_IN_PROGRESS'], 422: ['IDEMPOTENCY_KEY_REUSED', 'BALANCE_LIMIT'] },
            label,
          );
        if (result.status === 200 && !replayed(result)) {
          const amount = body.value!.amount as number;
          const change = c.kind === 'charge' ? amount : -amount;
          delta += change;
          effects++;
          c.user.delta += change;
          c.user.effects++;
        }
      }
      for (const user of users) expect(await ledgerOf(user.userId)).toEqual({ balance: user.delta, rows: user.effects });
      const globalAfter = await dbFingerprint();
      expect({ ...globalAfter, idempotencyKeys: 0, balances: 0 }).toEqual({
        ...globalBefore,
        ledger: globalBefore.ledger + effects,
        balanceTotal: globalBefore.balanceTotal + delta,
        idempotencyKeys: 0,
        balances: 0,
      });
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: POST /payment', () => {
  // Several payers, so that their balance locks do not queue every case behind one another, taken in
  // rotation so that none gets more than 2,000 / 40 = 50 cases: under the per-user payment limit
  // (60 per 10 s) however fast the machine runs them.
  const PAYERS = 40;
  let nextPayer = 0;
  let payers: { user: AdmittedUser; reservationId: string }[];

  beforeAll(async () => {
    const concert = await openConcert({ seats: PAYERS, queue: { sessionSeconds: 3600, holdSeconds: 3600 } });
    payers = await Promise.all(
      Array.from({ length: PAYERS }, async (_, i) => {
        const user = await admittedUser(concert.id, 'fz-payer');
        // One point: the payer has a balance row (a payer without one gets a zero row on the
        // first attempt, which the fingerprint would count), and still cannot afford the seat.
        expect((await charge(user.userToken, 1)).status).toBe(200);
        const held = await hold(concert.id, user, [i + 1]);
        return { user, reservationId: (await held.json<{ reservationId: string }>()).reservationId };
      }),
    );
  });

  it.prop(
    [
      fc.array(
        fc.record({
          path: fc.constantFrom('/payment', '/payments'),
          body: bodyOf(shapedBy(PaymentRequest, { reservationId: fc.oneof(fc.uuid(), fc.constant('OWN')) })),
          key: idempotencyKey,
          auth: credential,
        }),
        { minLength: BATCH, maxLength: BATCH },
      ),
    ],
    fuzzRuns(RUNS),
  )(
    'refuses every payment the payer cannot make (no balance) with 4xx and changes nothing',
    async (cases) => {
      const before = await dbFingerprint();
      const results = await Promise.all(
        cases.map((c) => {
          const { user, reservationId } = payers[nextPayer++ % PAYERS]!;
          // The payer's own held reservation stands in for "OWN": found, theirs, but unaffordable.
          const body: Body = 'json' in c.body ? { json: JSON.parse(JSON.stringify(c.body.json ?? null).replaceAll('"OWN"', `"${reservationId}"`)) as unknown } : c.body;
          return send('POST /payment', { method: 'POST', path: c.path, headers: { Authorization: bearer(c.auth, user.userToken), 'Idempotency-Key': c.key }, ...bodyRequest(body) });
        }),
      );
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const label = JSON.stringify(c);
        if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else
          expectOneOf(
            result,
            {
              400: ['VALIDATION_FAILED'],
              402: ['INSUFFICIENT_BALANCE'],
              404: ['RESERVATION_NOT_FOUND'],
              409: ['PAYMENT_IN_PROGRESS', 'REQUEST_IN_PROGRESS'],
              422: ['IDEMPOTENCY_KEY_REUSED'],
            },
            label,
          );
      }
      expect({ ...(await dbFingerprint()), idempotencyKeys: 0 }).toEqual({ ...before, idempotencyKeys: 0 });
    },
    TIMEOUT_MS,
  );

  it('leaves the payers’ reservations held', async () => {
    for (const { user, reservationId } of payers) {
      const response = await api(`/reservations/${reservationId}`, { headers: authed(user.userToken) });
      expect(await response.json()).toMatchObject({ status: 'held' });
    }
  });
});

describe('fuzz: POST /queue/token', () => {
  let concertId: string;

  beforeAll(async () => {
    concertId = (await createConcert()).id;
  });

  it.prop(
    [
      fc.array(
        fc.record({
          body: bodyOf(shapedBy(JoinRequestSchema, { concertId: fc.oneof({ weight: 4, arbitrary: fc.constant('THE-CONCERT') }, { weight: 1, arbitrary: fc.uuid() }) })),
          auth: credential,
        }),
        { minLength: BATCH, maxLength: BATCH },
      ),
    ],
    fuzzRuns(RUNS),
  )(
    'puts exactly the 201 answers in line and answers everything else 4xx',
    async (cases) => {
      const before = await stats(concertId);
      const results = await Promise.all(
        cases.map(async (c) => {
          const body: Body = 'json' in c.body ? { json: JSON.parse(JSON.stringify(c.body.json ?? null).replaceAll('"THE-CONCERT"', `"${concertId}"`)) as unknown } : c.body;
          const token = await tokenFor(uniqueId('fz-join'));
          const result = await send('POST /queue/token', { method: 'POST', path: '/queue/token', headers: { Authorization: bearer(c.auth, token) }, ...bodyRequest(body) });
          return { result, body };
        }),
      );
      let joined = 0;
      for (const [i, { result, body }] of results.entries()) {
        const c = cases[i]!;
        const verdict = await accepted(JoinRequestSchema, body);
        const label = JSON.stringify(body);
        if (c.auth.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (!verdict.ok) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        // A generated proof of work is never a solved challenge of this server: refused before the room.
        else if (verdict.value!.altcha !== undefined) expectOneOf(result, { 400: ['VALIDATION_FAILED'], 403: ['POW_INVALID'] }, label);
        else if (verdict.value!.concertId === concertId) expectOneOf(result, { 201: '*' }, label);
        else expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, label);
        if (result.status === 201) joined++;
      }
      const after = await stats(concertId);
      expect(after.waiting).toBe(before.waiting + joined);
      expect(after.admitted).toBe(before.admitted);
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: POST /reservations', () => {
  const SEATS = 1000;
  let concertId: string;
  let stranger: AdmittedUser;

  beforeAll(async () => {
    concertId = (await openConcert({ seats: SEATS, price: 10, queue: { sessionSeconds: 3600, holdSeconds: 3600 } })).id;
    stranger = await admittedUser(concertId, 'fz-stranger');
  });

  const seat = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: SEATS }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 100_000 }) });
  const queueCredential = fc.oneof(
    { weight: 8, arbitrary: credential },
    { weight: 1, arbitrary: fc.constant({ kind: 'hostile', value: 'STRANGER' }) },
  );

  const heldCounts = async () => {
    const [row] = await directQuery<{ reservations: string; seats: string }>(
      `SELECT (SELECT count(*) FROM reservations WHERE concert_id = $1)::text AS reservations,
              (SELECT count(*) FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
                WHERE r.concert_id = $1 AND rs.active)::text AS seats`,
      [concertId],
    );
    return { reservations: Number(row!.reservations), seats: Number(row!.seats), room: (await stats(concertId)).seats.held };
  };

  it.prop(
    [
      fc.array(
        fc.record({
          body: bodyOf(
            shapedBy(HoldRequestSchema, {
              concertId: fc.oneof({ weight: 6, arbitrary: fc.constant('THE-CONCERT') }, { weight: 1, arbitrary: fc.uuid() }),
              'seatNumbers[]': seat,
              seatNumber: seat,
            }),
          ),
          key: idempotencyKey,
          user: credential,
          queue: queueCredential,
        }),
        { minLength: BATCH, maxLength: BATCH },
      ),
    ],
    fuzzRuns(RUNS),
  )(
    'holds exactly the seats its 201 answers name, and answers everything else 4xx',
    async (cases) => {
      const holder = await admittedUser(concertId, 'fz-holder');
      const before = await heldCounts();
      const results = await Promise.all(
        cases.map(async (c) => {
          const body: Body = 'json' in c.body ? { json: JSON.parse(JSON.stringify(c.body.json ?? null).replaceAll('"THE-CONCERT"', `"${concertId}"`)) as unknown } : c.body;
          const queueToken = c.queue.kind === 'hostile' && c.queue.value === 'STRANGER' ? stranger.queueToken : plain(c.queue, holder.queueToken);
          const result = await send('POST /reservations', {
            method: 'POST',
            path: '/reservations',
            headers: { Authorization: bearer(c.user, holder.userToken), 'Queue-Token': queueToken, 'Idempotency-Key': c.key },
            ...bodyRequest(body),
          });
          return { result, body };
        }),
      );
      let reservations = 0;
      let seats = 0;
      for (const [i, { result, body }] of results.entries()) {
        const c = cases[i]!;
        const verdict = await accepted(HoldRequestSchema, body);
        const label = `${JSON.stringify(c)} ${JSON.stringify(body)}`;
        const stolen = c.queue.kind === 'hostile' && c.queue.value === 'STRANGER';
        if (c.user.kind !== 'valid') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (c.queue.kind !== 'valid' && !stolen) expectOneOf(result, { 401: ['INVALID_QUEUE_TOKEN'] }, label);
        else if (!verdict.ok || keyInvalid(c.key)) expectOneOf(result, { 400: ['VALIDATION_FAILED'], 409: ['REQUEST_IN_PROGRESS'], 422: ['IDEMPOTENCY_KEY_REUSED'] }, label);
        else if (stolen || verdict.value!.concertId !== concertId) expectOneOf(result, { 403: ['QUEUE_TOKEN_MISMATCH'], 409: ['REQUEST_IN_PROGRESS'], 422: ['IDEMPOTENCY_KEY_REUSED'] }, label);
        else
          expectOneOf(
            result,
            { 201: '*', 404: ['SEAT_NOT_FOUND'], 409: ['SEAT_UNAVAILABLE', 'REQUEST_IN_PROGRESS'], 422: ['HOLD_LIMIT', 'IDEMPOTENCY_KEY_REUSED'] },
            label,
          );
        if (result.status === 201 && !replayed(result)) {
          reservations++;
          seats += (result.json!.seats as unknown[]).length;
        }
      }
      expect(await heldCounts()).toEqual({ reservations: before.reservations + reservations, seats: before.seats + seats, room: before.room + seats });
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: POST /auth/dev-token', () => {
  it.prop([fc.array(bodyOf(shapedBy(DevTokenRequest)), { minLength: BATCH, maxLength: BATCH })], fuzzRuns(RUNS))(
    'mints a token exactly for the user ids the schema accepts',
    async (bodies) => {
      const results = await Promise.all(bodies.map((body) => send('POST /auth/dev-token', { method: 'POST', path: '/auth/dev-token', ...bodyRequest(body) })));
      for (const [i, result] of results.entries()) {
        const verdict = await accepted(DevTokenRequest, bodies[i]!);
        expectOneOf(result, verdict.ok ? { 201: '*' } : { 400: ['VALIDATION_FAILED'] }, JSON.stringify(bodies[i]));
        if (verdict.ok) expect(result.json!.userId).toBe(verdict.value!.userId);
      }
    },
    TIMEOUT_MS,
  );
});

describe('fuzz: PATCH /admin/concerts/:id/queue', () => {
  let concertId: string;
  let userToken: string;

  beforeAll(async () => {
    concertId = (await createConcert()).id;
    userToken = await tokenFor(uniqueId('fz-not-admin'));
  });

  type AdminAuth = { kind: 'admin' } | { kind: 'user' } | { kind: 'none' } | { kind: 'hostile'; value: string };
  const adminAuth: fc.Arbitrary<AdminAuth> = fc.oneof(
    { weight: 6, arbitrary: fc.constant<AdminAuth>({ kind: 'admin' }) },
    { weight: 1, arbitrary: fc.constant<AdminAuth>({ kind: 'user' }) },
    { weight: 1, arbitrary: fc.constant<AdminAuth>({ kind: 'none' }) },
    { weight: 1, arbitrary: headerValue.map((value): AdminAuth => ({ kind: 'hostile', value })) },
  );
  const authorization = (a: AdminAuth) =>
    a.kind === 'admin' ? `Bearer ${env.ADMIN_TOKEN}` : a.kind === 'user' ? `Bearer ${userToken}` : a.kind === 'hostile' ? `Bearer ${a.value}` : undefined;
  const idSegment = fc.oneof(
    { weight: 4, arbitrary: fc.constant('THE-CONCERT') },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 2, arbitrary: hostileString },
  );

  it.prop([fc.array(fc.record({ id: idSegment, body: bodyOf(shapedBy(QueueConfigPatchSchema)), auth: adminAuth }), { minLength: BATCH, maxLength: BATCH })], fuzzRuns(RUNS))(
    'applies exactly the admin’s valid patches, and answers everything else 4xx',
    async (cases) => {
      const before = (await stats(concertId)).queue;
      const results = await Promise.all(
        cases.map((c) =>
          send('PATCH /admin/concerts/:id/queue', {
            method: 'PATCH',
            path: `/admin/concerts/${c.id === 'THE-CONCERT' ? concertId : urlPart(c.id)}/queue`,
            headers: { Authorization: authorization(c.auth) },
            ...bodyRequest(c.body),
          }),
        ),
      );
      let applied = 0;
      for (const [i, result] of results.entries()) {
        const c = cases[i]!;
        const id = c.id === 'THE-CONCERT' ? concertId : wellFormed(c.id);
        const verdict = await accepted(QueueConfigPatchSchema, c.body);
        const label = JSON.stringify(c);
        if (id === '' || id === '.' || id === '..') expectOneOf(result, { 400: '*', 401: '*', 403: '*', 404: '*', 405: '*' }, label);
        else if (c.auth.kind === 'none') expectOneOf(result, { 401: ['UNAUTHENTICATED'] }, label);
        else if (c.auth.kind === 'hostile') expectOneOf(result, { 401: ['UNAUTHENTICATED'], 403: ['FORBIDDEN'] }, label);
        else if (c.auth.kind === 'user') expectOneOf(result, { 403: ['FORBIDDEN'] }, label);
        else if (!acceptedBy(UuidSchema, id) || !verdict.ok) expectOneOf(result, { 400: ['VALIDATION_FAILED'] }, label);
        else if (id !== concertId) expectOneOf(result, { 404: ['CONCERT_NOT_FOUND'] }, label);
        else expectOneOf(result, verdict.value!.openingOrder === undefined ? { 200: '*' } : { 200: '*', 409: ['OPENING_ORDER_FIXED'] }, label);
        if (result.status === 200) {
          applied++;
          // The settings in force right after this patch include every field it set.
          expect(result.json, label).toMatchObject(verdict.value!);
        }
      }
      if (applied === 0) expect((await stats(concertId)).queue).toEqual(before);
    },
    TIMEOUT_MS,
  );
});

describe('bodies over the 64 KB limit', () => {
  const LIMIT = 64 * 1024;
  /** `{"amount":5}` padded with spaces (valid JSON) to exactly `size` bytes. */
  const padded = (json: string, size: number) => json + ' '.repeat(size - json.length);
  /** The same bytes as a stream without Content-Length (chunked), in 8 KB chunks. */
  const streamed = (text: string) => {
    const bytes = new TextEncoder().encode(text);
    return new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192));
        controller.close();
      },
    });
  };

  it('accepts a body of exactly the limit and refuses one byte more with 413, changing nothing', async () => {
    const userId = uniqueId('fz-413');
    const token = await tokenFor(userId);
    const at = await api('/balance/charge', { method: 'POST', headers: authed(token, { 'Content-Type': 'application/json' }), body: padded('{"amount":5}', LIMIT) });
    expect(at.status).toBe(200);
    const before = await dbFingerprint();
    const over = await api('/balance/charge', { method: 'POST', headers: authed(token, { 'Content-Type': 'application/json' }), body: padded('{"amount":5}', LIMIT + 1) });
    await expectProblem(over, 413, 'PAYLOAD_TOO_LARGE');
    const chunked = await api('/balance/charge', {
      method: 'POST',
      headers: authed(token, { 'Content-Type': 'application/json' }),
      body: streamed(padded('{"amount":5}', LIMIT + 1)),
    });
    await expectProblem(chunked, 413, 'PAYLOAD_TOO_LARGE');
    expect(await dbFingerprint()).toEqual(before);
  });

  it('refuses 1 MB bodies on every write route with 413 and changes nothing', async () => {
    const concert = await openConcert({ seats: 5 });
    const user = await admittedUser(concert.id, 'fz-413-all');
    expect((await charge(user.userToken, 100)).status).toBe(200);
    const big = `{"pad":"${'x'.repeat(1024 * 1024)}"}`;
    const headers = authed(user.userToken, { 'Queue-Token': user.queueToken, 'Content-Type': 'application/json' });
    const before = { db: await dbFingerprint(), room: await stats(concert.id) };
    const routes: [string, string][] = [
      ['POST', '/balance/charge'],
      ['POST', '/balance/use'],
      ['POST', '/payment'],
      ['POST', '/payments'],
      ['POST', '/queue/token'],
      ['POST', '/reservations'],
      ['POST', '/auth/dev-token'],
      ['POST', '/admin/concerts'],
      ['PATCH', `/admin/concerts/${concert.id}/queue`],
    ];
    for (const [method, path] of routes) {
      const routeHeaders = path.startsWith('/admin') ? { ...headers, Authorization: `Bearer ${env.ADMIN_TOKEN}` } : headers;
      await expectProblem(await api(path, { method, headers: routeHeaders, body: big }), 413, 'PAYLOAD_TOO_LARGE');
      await expectProblem(await api(path, { method, headers: routeHeaders, body: streamed(big) }), 413, 'PAYLOAD_TOO_LARGE');
    }
    expect({ db: await dbFingerprint(), room: await stats(concert.id) }).toEqual(before);
  });
});
