import { describe, expect, it } from 'vitest';
import { WS_PROTOCOL, WS_TOKEN_PROTOCOL_PREFIX } from '../../src/routes/queue.ts';
import { api, apiWithoutAddress, uniqueId } from '../helpers/api.ts';
import { authed, balanceOf, charge } from '../helpers/balance.ts';
import { adminHeaders, admittedUser, createConcert, hold, joinOk, openConcert, seatMap, tokenFor, uniqueFutureDay } from '../helpers/concerts.ts';
import { roomFingerprint } from '../helpers/fingerprint.ts';
import { directQuery } from '../helpers/postgres.ts';
import { TEST_ADDRESS_RATE_LIMIT } from '../helpers/rate-limit-config.ts';
import { burstUntilLimited, clientAddress, expectRateLimited, roomInWindow } from '../helpers/rate-limits.ts';

/*
 * Rate limits (DESIGN.md §2, issues 10 and 18): per user and per client address on join, status,
 * holds, WebSocket opens, the public reads, the account reads, payments, cancels, refunds and the
 * waitlist. IPv6 clients are keyed by /64, IPv4-mapped ones by their IPv4, and requests without an
 * address share one "no-address" bucket. A burst over the limit gets 429 RATE_LIMITED with
 * Retry-After, and the request that was refused did no work in the room or in Postgres. The
 * per-user limit is the one in wrangler.toml (60 per action per 10 s); the per-address one is
 * lowered for the tests (vitest.config.ts) so that a burst past it fits one window on a busy machine.
 */

/** Enough requests to pass either limit within one window, whatever it was at before. */
const MAX_USER_BURST = 2 * 60 + 25;
const MAX_ADDRESS_BURST = 2 * TEST_ADDRESS_RATE_LIMIT + 25;
const ADDRESS_BURST_WINDOW_MS = 6_000;

const wsProtocols = (token: string) => `${WS_PROTOCOL}, ${WS_TOKEN_PROTOCOL_PREFIX}${token}`;

describe('per-user rate limits', () => {
  it('refuses joins past the limit with 429, and the refused join puts nobody in line', async () => {
    const first = await openConcert({ seats: 5 });
    const second = await openConcert({ seats: 5 });
    const userId = uniqueId('rl-join');
    const token = await tokenFor(userId);
    await roomInWindow(4_000);
    // Joining again keeps the same place, so the burst itself changes nothing after the first.
    await burstUntilLimited(() => api('/queue/token', { method: 'POST', headers: authed(token), json: { concertId: first.id } }), MAX_USER_BURST);
    const before = await roomFingerprint(second.id);
    await expectRateLimited(await api('/queue/token', { method: 'POST', headers: authed(token), json: { concertId: second.id } }));
    expect(await roomFingerprint(second.id)).toEqual(before);
    // Another user is not affected.
    expect((await joinOk(second.id, uniqueId('rl-join-other'))).status).toBe('admitted');
  });

  it('refuses status polls past the limit with 429, per user', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('rl-status'));
    const other = await joinOk(concert.id, uniqueId('rl-status-other'));
    await roomInWindow(4_000);
    await burstUntilLimited(() => api('/queue/status', { headers: { 'Queue-Token': token } }), MAX_USER_BURST);
    await expectRateLimited(await api('/queue/status', { headers: { 'Queue-Token': token } }));
    expect((await api('/queue/status', { headers: { 'Queue-Token': other.token } })).status).toBe(200);
  });

  it('refuses holds past the limit with 429, and the refused hold holds nothing', async () => {
    const concert = await openConcert({ seats: 10 });
    const user = await admittedUser(concert.id, 'rl-hold');
    const headers = authed(user.userToken, { 'Queue-Token': user.queueToken });
    await roomInWindow(4_000);
    // Invalid bodies count too: the limit is checked before validation, before any work.
    await burstUntilLimited(() => api('/reservations', { method: 'POST', headers, json: { concertId: concert.id, seatNumbers: [] } }), MAX_USER_BURST);
    const before = await roomFingerprint(concert.id);
    await expectRateLimited(await api('/reservations', { method: 'POST', headers, json: { concertId: concert.id, seatNumbers: [1] } }));
    expect(await roomFingerprint(concert.id)).toEqual(before);
    expect((await seatMap(concert.id)).find((seat) => seat.seatNumber === 1)?.status).toBe('available');
    expect(await directQuery('SELECT id FROM reservations WHERE user_id = $1', [user.userId])).toEqual([]);
  });

  it('refuses WebSocket opens past the limit with 429, per user', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('rl-ws'));
    const sockets: WebSocket[] = [];
    await roomInWindow(5_000);
    await burstUntilLimited(async () => {
      const response = await api('/queue/ws', { headers: { Upgrade: 'websocket', 'Sec-WebSocket-Protocol': wsProtocols(token) } });
      if (response.webSocket) {
        response.webSocket.accept();
        sockets.push(response.webSocket);
      }
      return response;
    }, MAX_USER_BURST);
    await expectRateLimited(await api('/queue/ws', { headers: { Upgrade: 'websocket', 'Sec-WebSocket-Protocol': wsProtocols(token) } }));
    for (const ws of sockets) ws.close(1000, 'done');
  });

  it('answers a socket’s own "status" requests at most once a second (the per-socket limit, in the room)', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('rl-ws-msg'));
    const response = await api('/queue/ws', { headers: { Upgrade: 'websocket', 'Sec-WebSocket-Protocol': wsProtocols(token) } });
    const ws = response.webSocket!;
    const messages: string[] = [];
    const first = new Promise<void>((resolve) =>
      ws.addEventListener('message', (event) => {
        messages.push(event.data as string);
        resolve();
      }),
    );
    ws.accept();
    await first;
    for (let i = 0; i < 50; i++) ws.send('status');
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The first message on connect, then one answer to the first of 50 requests.
    expect(messages.length).toBe(2);
    ws.close(1000, 'done');
  });
});

describe('per-address rate limits (CF-Connecting-IP)', () => {
  it('refuses joins from an address past its limit, even with valid credentials, and nobody joins', async () => {
    const concert = await openConcert({ seats: 5 });
    const address = clientAddress();
    await roomInWindow(4_000);
    // A flood of junk (no token) from one address is cut off before the token is even read.
    await burstUntilLimited(() => api('/queue/token', { method: 'POST', headers: { 'CF-Connecting-IP': address }, json: {} }), MAX_ADDRESS_BURST, 50);
    const before = await roomFingerprint(concert.id);
    const token = await tokenFor(uniqueId('rl-join-ip'));
    await expectRateLimited(
      await api('/queue/token', { method: 'POST', headers: authed(token, { 'CF-Connecting-IP': address }), json: { concertId: concert.id } }),
    );
    expect(await roomFingerprint(concert.id)).toEqual(before);
    const elsewhere = await api('/queue/token', { method: 'POST', headers: authed(token, { 'CF-Connecting-IP': clientAddress() }), json: { concertId: concert.id } });
    expect(elsewhere.status).toBe(201);
  });

  it('refuses status polls and WebSocket opens from an address past its limit', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('rl-status-ip'));
    const address = clientAddress();
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    await burstUntilLimited(() => api('/queue/status', { headers: { 'CF-Connecting-IP': address } }), MAX_ADDRESS_BURST, 50);
    await expectRateLimited(await api('/queue/status', { headers: { 'Queue-Token': token, 'CF-Connecting-IP': address } }));

    const wsAddress = clientAddress();
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    await burstUntilLimited(() => api('/queue/ws', { headers: { Upgrade: 'websocket', 'CF-Connecting-IP': wsAddress } }), MAX_ADDRESS_BURST, 50);
    await expectRateLimited(
      await api('/queue/ws', { headers: { Upgrade: 'websocket', 'Sec-WebSocket-Protocol': wsProtocols(token), 'CF-Connecting-IP': wsAddress } }),
    );
    expect((await api('/queue/status', { headers: { 'Queue-Token': token, 'CF-Connecting-IP': clientAddress() } })).status).toBe(200);
  });

  it('refuses holds from an address past its limit, and the refused hold holds nothing', async () => {
    const concert = await openConcert({ seats: 10 });
    const user = await admittedUser(concert.id, 'rl-hold-ip');
    const address = clientAddress();
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    await burstUntilLimited(() => api('/reservations', { method: 'POST', headers: { 'CF-Connecting-IP': address }, json: {} }), MAX_ADDRESS_BURST, 50);
    const before = await roomFingerprint(concert.id);
    const response = await api('/reservations', {
      method: 'POST',
      headers: authed(user.userToken, { 'Queue-Token': user.queueToken, 'CF-Connecting-IP': address }),
      json: { concertId: concert.id, seatNumbers: [2] },
    });
    await expectRateLimited(response);
    expect(await roomFingerprint(concert.id)).toEqual(before);
    expect(await directQuery('SELECT id FROM reservations WHERE user_id = $1', [user.userId])).toEqual([]);
  });

  it('shares one budget across the public reads: seat map, concert details, concert list and by-date', async () => {
    const date = uniqueFutureDay();
    const concert = await createConcert({ date });
    const address = clientAddress();
    const reads = [`/concerts/${concert.id}/seats`, `/concerts/${concert.id}`, `/concerts?date=${date}`, `/reservations/${date}`];
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    await burstUntilLimited((i) => api(reads[i % reads.length]!, { headers: { 'CF-Connecting-IP': address } }), MAX_ADDRESS_BURST, 50);
    for (const path of reads) await expectRateLimited(await api(path, { headers: { 'CF-Connecting-IP': address } }));
    for (const path of reads) expect((await api(path, { headers: { 'CF-Connecting-IP': clientAddress() } })).status, path).toBe(200);
  });
});

/** A random IPv4 address of the benchmarking range 198.18.0.0/15, which no other suite sends from. */
const ipv4Address = () => `198.${18 + Math.floor(Math.random() * 2)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;

/** A random /64 of the documentation range, as its first four groups. */
const ipv6Prefix = () => {
  const hex = () => Math.floor(Math.random() * 0x10000).toString(16);
  return `2001:db8:${hex()}:${hex()}`;
};

describe('per-address keys (issue 18)', () => {
  it('counts every address of one IPv6 /64 against one budget', async () => {
    const concert = await createConcert();
    const prefix = ipv6Prefix();
    let host = 0;
    // A new interface id per request, as a host rotating through its privacy addresses would.
    const fromPrefix = () => `${prefix}:${(++host).toString(16)}:0:0:1`;
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    await burstUntilLimited(() => api(`/concerts/${concert.id}`, { headers: { 'CF-Connecting-IP': fromPrefix() } }), MAX_ADDRESS_BURST, 50);
    await expectRateLimited(await api(`/concerts/${concert.id}`, { headers: { 'CF-Connecting-IP': `${prefix}::abcd` } }));
    // The neighbouring /64 is someone else.
    const [a, b, c, d] = prefix.split(':');
    const neighbour = `${a}:${b}:${c}:${((parseInt(d!, 16) + 1) % 0x10000).toString(16)}::1`;
    expect((await api(`/concerts/${concert.id}`, { headers: { 'CF-Connecting-IP': neighbour } })).status).toBe(200);
  });

  it('counts an IPv4-mapped IPv6 address against its IPv4 address’s budget', async () => {
    const concert = await createConcert();
    const address = ipv4Address();
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    // A dual-stack client cannot double its budget by writing its IPv4 address the IPv6 way.
    await burstUntilLimited(() => api(`/concerts/${concert.id}`, { headers: { 'CF-Connecting-IP': `::ffff:${address}` } }), MAX_ADDRESS_BURST, 50);
    await expectRateLimited(await api(`/concerts/${concert.id}`, { headers: { 'CF-Connecting-IP': address } }));
  });

  it('limits requests without CF-Connecting-IP as one bucket of their own, not as no limit', async () => {
    const concert = await createConcert();
    await roomInWindow(ADDRESS_BURST_WINDOW_MS);
    await burstUntilLimited(() => apiWithoutAddress(`/concerts/${concert.id}/seats`), MAX_ADDRESS_BURST, 50);
    await expectRateLimited(await apiWithoutAddress(`/concerts/${concert.id}`));
    // Clients that do have an address are not caught by it.
    expect((await api(`/concerts/${concert.id}`)).status).toBe(200);
  });
});

describe('per-user limits on the account, payment, cancel, refund and waitlist routes (issue 18)', () => {
  // Each request comes from an address of its own (api's default), so only the per-user limit counts.
  it('refuses balance, ledger and My tickets reads past the limit, sharing one budget, per user', async () => {
    const userId = uniqueId('rl-account');
    const token = await tokenFor(userId);
    await roomInWindow(4_000);
    await burstUntilLimited(() => api('/balance', { headers: authed(token) }), MAX_USER_BURST);
    await expectRateLimited(await api('/balance/history', { headers: authed(token) }));
    await expectRateLimited(await api(`/balance/${userId}`, { headers: authed(token) }));
    await expectRateLimited(await api('/reservations', { headers: authed(token) }));
    expect((await api('/balance', { headers: authed(await tokenFor(uniqueId('rl-account-other'))) })).status).toBe(200);
  });

  it('refuses payments past the limit, and the refused payment pays nothing', async () => {
    const concert = await openConcert({ seats: 5, price: 100 });
    const user = await admittedUser(concert.id, 'rl-pay');
    expect((await charge(user.userToken, 100)).status).toBe(200);
    const { reservationId } = await (await hold(concert.id, user, [1])).json<{ reservationId: string }>();
    await roomInWindow(4_000);
    // Invalid bodies count too: the limit comes before validation and before any lock.
    await burstUntilLimited(() => api('/payment', { method: 'POST', headers: authed(user.userToken), json: {} }), MAX_USER_BURST);
    await expectRateLimited(await api('/payment', { method: 'POST', headers: authed(user.userToken), json: { reservationId } }));
    expect(await directQuery('SELECT id FROM payments WHERE reservation_id = $1', [reservationId])).toEqual([]);
    expect(await balanceOf(user.userToken)).toBe(100);
  });

  it('refuses cancels past the limit, and the refused cancel leaves the hold', async () => {
    const concert = await openConcert({ seats: 5 });
    const user = await admittedUser(concert.id, 'rl-cancel');
    const { reservationId } = await (await hold(concert.id, user, [2])).json<{ reservationId: string }>();
    await roomInWindow(4_000);
    await burstUntilLimited(() => api('/reservations/not-a-uuid', { method: 'DELETE', headers: authed(user.userToken) }), MAX_USER_BURST);
    await expectRateLimited(await api(`/reservations/${reservationId}`, { method: 'DELETE', headers: authed(user.userToken) }));
    expect((await seatMap(concert.id)).find((seat) => seat.seatNumber === 2)?.status).toBe('held');
  });

  it('refuses refunds past the limit per user; the admin token has none', async () => {
    const token = await tokenFor(uniqueId('rl-refund'));
    await roomInWindow(4_000);
    await burstUntilLimited(() => api('/reservations/not-a-uuid/refund', { method: 'POST', headers: authed(token) }), MAX_USER_BURST);
    await expectRateLimited(await api(`/reservations/${crypto.randomUUID()}/refund`, { method: 'POST', headers: authed(token) }));
    // An operator refunding a cancelled show refunds many: only the per-address limit applies.
    const statuses = new Set<number>();
    for (let sent = 0; sent < MAX_USER_BURST; sent += 25) {
      const responses = await Promise.all(Array.from({ length: 25 }, () => api('/reservations/not-a-uuid/refund', { method: 'POST', headers: adminHeaders() })));
      for (const response of responses) statuses.add(response.status);
    }
    expect([...statuses]).toEqual([400]);
  });

  it('refuses waitlist joins, reads and leaves past the limit, per user', async () => {
    const concert = await createConcert();
    const token = await tokenFor(uniqueId('rl-waitlist'));
    const path = `/concerts/${concert.id}/waitlist`;
    await roomInWindow(4_000);
    await burstUntilLimited(() => api(path, { method: 'POST', headers: authed(token), json: {} }), MAX_USER_BURST);
    await expectRateLimited(await api(path, { method: 'POST', headers: authed(token), json: { seats: 1 } }));
    await expectRateLimited(await api(`${path}/me`, { method: 'DELETE', headers: authed(token) }));
    await burstUntilLimited(() => api(`${path}/me`, { headers: authed(token) }), MAX_USER_BURST);
    await expectRateLimited(await api(`${path}/me`, { headers: authed(token) }));
  });
});

describe('per-address limits on the account, payment, cancel, refund and waitlist routes (issue 18)', () => {
  const routes: { name: string; send: (address: string) => Promise<Response> }[] = [
    { name: 'GET /balance', send: (address) => api('/balance', { headers: { 'CF-Connecting-IP': address } }) },
    { name: 'POST /payment', send: (address) => api('/payment', { method: 'POST', headers: { 'CF-Connecting-IP': address }, json: {} }) },
    { name: 'DELETE /reservations/:id', send: (address) => api(`/reservations/${crypto.randomUUID()}`, { method: 'DELETE', headers: { 'CF-Connecting-IP': address } }) },
    { name: 'POST /reservations/:id/refund', send: (address) => api(`/reservations/${crypto.randomUUID()}/refund`, { method: 'POST', headers: { 'CF-Connecting-IP': address } }) },
    { name: 'POST /concerts/:id/waitlist', send: (address) => api(`/concerts/${crypto.randomUUID()}/waitlist`, { method: 'POST', headers: { 'CF-Connecting-IP': address }, json: {} }) },
  ];

  for (const route of routes) {
    it(`cuts off a flood of junk from one address on ${route.name} before reading credentials`, async () => {
      const address = clientAddress();
      await roomInWindow(ADDRESS_BURST_WINDOW_MS);
      await burstUntilLimited(() => route.send(address), MAX_ADDRESS_BURST, 50);
      await expectRateLimited(await route.send(address));
      expect((await route.send(clientAddress())).status).toBe(401);
    });
  }
});
