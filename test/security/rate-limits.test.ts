import { describe, expect, it } from 'vitest';
import { WS_PROTOCOL, WS_TOKEN_PROTOCOL_PREFIX } from '../../src/routes/queue.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { authed } from '../helpers/balance.ts';
import { admittedUser, createConcert, joinOk, openConcert, seatMap, tokenFor, uniqueFutureDay } from '../helpers/concerts.ts';
import { roomFingerprint } from '../helpers/fingerprint.ts';
import { directQuery } from '../helpers/postgres.ts';
import { TEST_ADDRESS_RATE_LIMIT } from '../helpers/rate-limit-config.ts';
import { burstUntilLimited, clientAddress, expectRateLimited, roomInWindow } from '../helpers/rate-limits.ts';

/*
 * Rate limits (DESIGN.md §2, issue 10): per user and per client address on join, status, holds,
 * WebSocket opens and the public reads. A burst over the limit gets 429 RATE_LIMITED with
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
