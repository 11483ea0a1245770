import { beforeAll, describe, expect, it } from 'vitest';
import { WS_PROTOCOL, WS_TOKEN_PROTOCOL_PREFIX } from '../../src/routes/queue.ts';
import { api } from '../helpers/api.ts';
import { authed, charge, pay } from '../helpers/balance.ts';
import { admittedUser, hold, openConcert, type AdmittedUser } from '../helpers/concerts.ts';
import { fingerprint } from '../helpers/fingerprint.ts';
import { expectBareProblem, expectNoLeak } from '../helpers/leaks.ts';
import { directQuery } from '../helpers/postgres.ts';

/*
 * Object-level authorization (issues 10 and 18, Attacks): user B calls every route and verb with
 * user A's ids and tokens, refunds and the waitlist included. Each call is refused (404 for A's reservations, so ids reveal nothing; 403 where
 * B names A outright), nothing of A's changes, and no response carries anything A owns.
 */

interface Owner extends AdmittedUser {
  heldId: string;
  paidId: string;
  paymentId: string;
  /** Keys A used for its own charges; B sends them too. */
  keys: [string, string];
}

let concertId: string;
let a: Owner;
let b: AdmittedUser;

beforeAll(async () => {
  concertId = (await openConcert({ seats: 20, price: 100, queue: { sessionSeconds: 3600, holdSeconds: 3600 } })).id;
  const owner = await admittedUser(concertId, 'owner-a');
  const keys: [string, string] = [`a-key-${crypto.randomUUID()}`, `a-key-${crypto.randomUUID()}`];
  expect((await charge(owner.userToken, 10_000, { 'Idempotency-Key': keys[0] })).status).toBe(200);
  expect((await charge(owner.userToken, 10_000, { 'Idempotency-Key': keys[1] })).status).toBe(200);
  const held = await (await hold(concertId, owner, [1, 2])).json<{ reservationId: string }>();
  const toPay = await (await hold(concertId, owner, [3])).json<{ reservationId: string }>();
  const paid = await pay(owner.userToken, toPay.reservationId);
  expect(paid.status).toBe(201);
  const { paymentId } = await paid.json<{ paymentId: string }>();
  a = { ...owner, heldId: held.reservationId, paidId: toPay.reservationId, paymentId, keys };
  b = await admittedUser(concertId, 'intruder-b');
  expect((await charge(b.userToken, 500)).status).toBe(200);
});

/** A's state as A and Postgres see it: what no call of B's may move. */
async function ownerState() {
  const reservations = await directQuery<{ id: string; status: string }>('SELECT id, status FROM reservations WHERE user_id = $1 ORDER BY id', [a.userId]);
  const [balance] = await directQuery<{ amount: string }>('SELECT amount::text FROM balances WHERE user_id = $1', [a.userId]);
  const ledger = await directQuery<{ n: string }>('SELECT count(*)::text AS n FROM balance_ledger WHERE user_id = $1', [a.userId]);
  const status = await (await api('/queue/status', { headers: { 'Queue-Token': a.queueToken } })).json();
  return { reservations, balance: balance?.amount, ledger: ledger[0]?.n, status };
}

/** Strings that belong to A alone and may appear in no response to B. */
const ownerSecrets = () => [a.userId, a.queueToken, a.userToken, a.paymentId, ...a.keys];

interface Call {
  name: string;
  send: () => Promise<Response>;
  status: number;
  code?: string;
  /** Ids B sent itself, which a 404 detail may quote back. */
  quotes?: string[];
}

function matrix(): Call[] {
  const asB = (extra: Record<string, string> = {}) => authed(b.userToken, extra);
  const wsProtocols = (token: string) => `${WS_PROTOCOL}, ${WS_TOKEN_PROTOCOL_PREFIX}${token}`;
  const calls: Call[] = [];
  for (const [label, id] of [
    ['held', a.heldId],
    ['paid', a.paidId],
  ] as const) {
    calls.push(
      { name: `GET /reservations/:id (A’s ${label})`, send: () => api(`/reservations/${id}`, { headers: asB() }), status: 404, code: 'RESERVATION_NOT_FOUND', quotes: [id] },
      { name: `GET /reservations/:id (A’s ${label}, no token)`, send: () => api(`/reservations/${id}`), status: 401, code: 'UNAUTHENTICATED' },
      {
        name: `DELETE /reservations/:id (A’s ${label})`,
        send: () => api(`/reservations/${id}`, { method: 'DELETE', headers: asB() }),
        status: 404,
        code: 'RESERVATION_NOT_FOUND',
        quotes: [id],
      },
      { name: `POST /payment (A’s ${label})`, send: () => pay(b.userToken, id), status: 404, code: 'RESERVATION_NOT_FOUND', quotes: [id] },
      { name: `POST /payments (A’s ${label})`, send: () => pay(b.userToken, id, {}, '/payments'), status: 404, code: 'RESERVATION_NOT_FOUND', quotes: [id] },
      {
        name: `POST /reservations/:id/refund (A’s ${label})`,
        send: () => api(`/reservations/${id}/refund`, { method: 'POST', headers: asB() }),
        status: 404,
        code: 'RESERVATION_NOT_FOUND',
        quotes: [id],
      },
      { name: `POST /reservations/:id/refund (A’s ${label}, no token)`, send: () => api(`/reservations/${id}/refund`, { method: 'POST' }), status: 401, code: 'UNAUTHENTICATED' },
    );
  }
  calls.push({
    name: 'POST /payment (A’s held, with A’s Idempotency-Key)',
    send: () => pay(b.userToken, a.heldId, { 'Idempotency-Key': a.keys[0] }),
    status: 404,
    code: 'RESERVATION_NOT_FOUND',
    quotes: [a.heldId],
  });
  calls.push(
    { name: 'GET /balance/:userId (A)', send: () => api(`/balance/${a.userId}`, { headers: asB() }), status: 403, code: 'FORBIDDEN', quotes: [a.userId] },
    {
      name: 'GET /queue/status (A’s queue token, B’s user token)',
      send: () => api('/queue/status', { headers: asB({ 'Queue-Token': a.queueToken }) }),
      status: 403,
      code: 'QUEUE_TOKEN_MISMATCH',
    },
    {
      name: 'POST /reservations (A’s queue token, B’s user token)',
      send: () => api('/reservations', { method: 'POST', headers: asB({ 'Queue-Token': a.queueToken }), json: { concertId, seatNumbers: [10] } }),
      status: 403,
      code: 'QUEUE_TOKEN_MISMATCH',
    },
    {
      name: 'GET /queue/ws (A’s queue token as subprotocol, B’s user token)',
      send: () => api('/queue/ws', { headers: asB({ Upgrade: 'websocket', 'Sec-WebSocket-Protocol': wsProtocols(a.queueToken) }) }),
      status: 403,
      code: 'QUEUE_TOKEN_MISMATCH',
    },
    {
      name: 'GET /queue/ws?token= (A’s queue token, B’s user token)',
      send: () => api(`/queue/ws?token=${encodeURIComponent(a.queueToken)}`, { headers: asB({ Upgrade: 'websocket' }) }),
      status: 403,
      code: 'QUEUE_TOKEN_MISMATCH',
    },
    // Credentials before input: without a token a refund reveals nothing, not even that the id is malformed.
    { name: 'POST /reservations/:id/refund (malformed id, no token)', send: () => api('/reservations/not-a-uuid/refund', { method: 'POST' }), status: 401, code: 'UNAUTHENTICATED' },
    {
      name: 'POST /reservations/:id/refund (malformed id, forged token)',
      send: () => api('/reservations/not-a-uuid/refund', { method: 'POST', headers: authed(`${b.userToken}x`) }),
      status: 401,
      code: 'UNAUTHENTICATED',
    },
    // The waitlist is keyed by the token's user: B reaching for the concert's waitlist meets only B's own (absent) entry.
    {
      name: 'GET /concerts/:id/waitlist/me (B, not on it)',
      send: () => api(`/concerts/${concertId}/waitlist/me`, { headers: asB() }),
      status: 404,
      code: 'WAITLIST_ENTRY_NOT_FOUND',
    },
    {
      name: 'DELETE /concerts/:id/waitlist/me (B, not on it)',
      send: () => api(`/concerts/${concertId}/waitlist/me`, { method: 'DELETE', headers: asB() }),
      status: 404,
      code: 'WAITLIST_ENTRY_NOT_FOUND',
    },
    { name: 'POST /concerts/:id/waitlist (no token)', send: () => api(`/concerts/${concertId}/waitlist`, { method: 'POST', json: { seats: 1 } }), status: 401, code: 'UNAUTHENTICATED' },
    { name: 'GET /concerts/:id/waitlist/me (no token)', send: () => api(`/concerts/${concertId}/waitlist/me`), status: 401, code: 'UNAUTHENTICATED' },
    { name: 'DELETE /concerts/:id/waitlist/me (no token)', send: () => api(`/concerts/${concertId}/waitlist/me`, { method: 'DELETE' }), status: 401, code: 'UNAUTHENTICATED' },
    { name: 'GET /admin/concerts/:id/stats', send: () => api(`/admin/concerts/${concertId}/stats`, { headers: asB() }), status: 403, code: 'FORBIDDEN' },
    {
      name: 'PATCH /admin/concerts/:id/queue',
      send: () => api(`/admin/concerts/${concertId}/queue`, { method: 'PATCH', headers: asB(), json: { paused: true } }),
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'POST /admin/concerts/:id/reconcile',
      send: () => api(`/admin/concerts/${concertId}/reconcile`, { method: 'POST', headers: asB() }),
      status: 403,
      code: 'FORBIDDEN',
    },
  );
  return calls;
}

describe('object-level authorization: user B with user A’s ids', () => {
  it('refuses every call on A’s objects with 404/403, changes nothing of A’s, and shows B nothing of A’s', async () => {
    const before = { owner: await ownerState(), all: await fingerprint([concertId]) };
    const calls = matrix();
    for (const call of calls) {
      const response = await call.send();
      const text = await response.text();
      expect(`${call.name}: ${response.status}`, text).toBe(`${call.name}: ${call.status}`);
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body.code, call.name).toBe(call.code);
      expectBareProblem(body, []);
      expectNoLeak(text);
      const quoted = call.quotes ?? [];
      for (const secret of ownerSecrets().filter((value) => !quoted.includes(value))) expect(text, call.name).not.toContain(secret);
    }
    // B's own refused requests may store B's own idempotency records; nothing else may move.
    const after = { owner: await ownerState(), all: await fingerprint([concertId]) };
    expect({ ...after, all: { ...after.all, db: { ...after.all.db, idempotencyKeys: 0 } } }).toEqual({
      ...before,
      all: { ...before.all, db: { ...before.all.db, idempotencyKeys: 0 } },
    });
    console.log(`authorization matrix: ${calls.length} calls by B on A’s objects, all refused`);
  });

  it('shows B only B’s own balance, history, tickets and place, even with A’s Idempotency-Key', async () => {
    const ownerBefore = await ownerState();
    const balance = await api('/balance', { headers: authed(b.userToken) });
    expect(await balance.json()).toEqual({ userId: b.userId, balance: 500 });
    const history = await (await api('/balance/history', { headers: authed(b.userToken) })).json<{ entries: { delta: number; reference: string | null }[] }>();
    expect(history.entries.map((entry) => entry.delta)).toEqual([500]);
    // My tickets lists B's own reservations only: B holds none, A holds two.
    const mine = await (await api('/reservations', { headers: authed(b.userToken) })).json<{ reservations: unknown[] }>();
    expect(mine.reservations).toEqual([]);
    // The key is A's, the request is B's own: a fresh effect for B, never A's stored answer.
    const reused = await charge(b.userToken, 10_000, { 'Idempotency-Key': a.keys[1] });
    expect(reused.status).toBe(200);
    expect(reused.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await reused.json()).toEqual({ balance: 10_500 });
    const rejoin = await api('/queue/token', { method: 'POST', headers: authed(b.userToken), json: { concertId } });
    const place = await rejoin.json<{ token: string }>();
    expect(place.token).toBe(b.queueToken);
    for (const text of [JSON.stringify(history), JSON.stringify(place), JSON.stringify(mine)]) for (const secret of ownerSecrets()) expect(text).not.toContain(secret);
    expect(await ownerState()).toEqual(ownerBefore);
  });
});
