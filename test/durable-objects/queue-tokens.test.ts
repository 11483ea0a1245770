import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { QUEUE_TOKEN_TYPE } from '../../src/lib/queue-token.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { createConcert, join, joinOk, queueStatus, room, stats, tokenFor } from '../helpers/concerts.ts';
import { expectProblem } from '../helpers/problem.ts';
import { openQueueSocket } from '../helpers/queue-socket.ts';

const b64url = (value: unknown) => btoa(JSON.stringify(value)).replaceAll('=', '').replaceAll('+', '-').replaceAll('/', '_');
const queueKey = () => new TextEncoder().encode(env.QUEUE_TOKEN_SECRET);

function forge(claims: Record<string, unknown>, options: { key?: Uint8Array; typ?: string } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: options.typ ?? QUEUE_TOKEN_TYPE });
  return jwt.sign(options.key ?? queueKey());
}

describe('queue token verification', () => {
  it('rejects tampered, expired, alg:none, wrongly signed and incomplete tokens with 401 and changes nothing', async () => {
    const concert = await createConcert();
    const userId = uniqueId('victim');
    const { token } = await joinOk(concert.id, userId);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(atob(payload.replaceAll('-', '+').replaceAll('_', '/'))) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const attacks = [
      `${header}.${b64url({ ...claims, seq: 7 })}.${signature}`, // tampered payload
      `${b64url({ alg: 'none', typ: QUEUE_TOKEN_TYPE })}.${payload}.`, // alg: none
      await forge({ ...claims, iat: now - 100, exp: now - 10 }), // expired
      await forge(claims, { key: new TextEncoder().encode('w'.repeat(32)) }), // wrong secret
      await forge(claims, { typ: 'JWT' }), // a user-token type header
      await forge({ sub: claims.sub, cid: claims.cid, seq: claims.seq, iat: now, exp: now + 60 }), // no jti
      await forge({ ...claims, seq: '1' }), // wrong claim type
      'not.a.token',
    ];
    for (const [index, attack] of attacks.entries()) {
      const response = await queueStatus(attack);
      expect({ index, status: response.status }).toEqual({ index, status: 401 });
      await expectProblem(response, 401, 'INVALID_QUEUE_TOKEN');
    }
    await expectProblem(await api('/queue/status'), 401, 'INVALID_QUEUE_TOKEN');
    expect(await stats(concert.id)).toMatchObject({ waiting: 1, admitted: 0 });
  });

  it('does not accept a queue token as a user token, nor a user token as a queue token', async () => {
    const concert = await createConcert();
    const { token: queueToken } = await joinOk(concert.id, uniqueId('u'));
    const asUser = await api('/queue/token', { method: 'POST', headers: { Authorization: `Bearer ${queueToken}` }, json: { concertId: concert.id } });
    await expectProblem(asUser, 401, 'UNAUTHENTICATED');
    await expectProblem(await queueStatus(await tokenFor('someone')), 401, 'INVALID_QUEUE_TOKEN');
  });

  it('rejects a join without a user token with 401', async () => {
    const concert = await createConcert();
    await expectProblem(await api('/queue/token', { method: 'POST', json: { concertId: concert.id } }), 401, 'UNAUTHENTICATED');
    const response = await join(concert.id, 'x', 'garbage');
    await expectProblem(response, 401, 'UNAUTHENTICATED');
  });
});

describe('queue WebSocket', () => {
  it('sends the status on connect and pushes a change after a tick', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('ws'));
    const { ws, messages, next } = await openQueueSocket(token);
    await next(1);
    expect(messages[0]).toMatchObject({ status: 'waiting', position: 1 });
    await runDurableObjectAlarm(room(concert.id));
    await next(2);
    expect(messages[1]).toMatchObject({ status: 'admitted', position: 0 });
    ws.close(1000, 'done');
  });

  it('refuses the WebSocket without a valid token', async () => {
    const response = await api('/queue/ws?token=bad', { headers: { Upgrade: 'websocket' } });
    await expectProblem(response, 401, 'INVALID_QUEUE_TOKEN');
  });
});

describe('admin queue settings', () => {
  it('validates settings and requires the admin token', async () => {
    const concert = await createConcert();
    const patch = (body: unknown, token = env.ADMIN_TOKEN) =>
      api(`/admin/concerts/${concert.id}/queue`, { method: 'PATCH', headers: { Authorization: `Bearer ${token}` }, json: body });
    for (const bad of [{ admitPerWindow: 0 }, { windowSeconds: 1.5 }, { sessionSeconds: -1 }, { admitPerWindow: 10_000_000 }, { paused: 'yes' }, { bogus: 1 }]) {
      await expectProblem(await patch(bad), 400, 'VALIDATION_FAILED');
    }
    await expectProblem(await patch({ paused: true }, 'wrong-token'), 403, 'FORBIDDEN');
    await expectProblem(await patch({ paused: true }, await tokenFor('user')), 403, 'FORBIDDEN');
    const ok = await patch({ admitPerWindow: 100, maxActive: null, holdSeconds: 120 });
    expect(await ok.json()).toMatchObject({ admitPerWindow: 100, maxActive: null, holdSeconds: 120, windowSeconds: 10 });
    const missing = await api(`/admin/concerts/${crypto.randomUUID()}/queue`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` },
      json: { paused: true },
    });
    await expectProblem(missing, 404, 'CONCERT_NOT_FOUND');
  });
});
