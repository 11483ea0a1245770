import { describe, expect, it } from 'vitest';
import { SignJWT, jwtVerify } from 'jose';
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { createApp } from '../../src/app.ts';
import { api, userToken } from '../helpers/api.ts';
import { expectProblem } from '../helpers/problem.ts';

describe('error responses', () => {
  it('answers an unknown route with 404 problem+json', async () => {
    await expectProblem(await api('/no/such/route'), 404, 'ROUTE_NOT_FOUND');
  });

  it('answers malformed JSON with 400 VALIDATION_FAILED', async () => {
    const response = await api('/auth/dev-token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"userId": ',
    });
    const problem = await expectProblem(response, 400, 'VALIDATION_FAILED');
    expect(problem.detail).toMatch(/not valid JSON/);
  });

  it('rejects unknown body keys with 400', async () => {
    const problem = await expectProblem(
      await api('/auth/dev-token', { method: 'POST', json: { userId: 'u1', admin: true } }),
      400,
      'VALIDATION_FAILED',
    );
    expect(problem.detail).toMatch(/admin/);
  });

  it('rejects a body sent without a JSON content type with 415', async () => {
    await expectProblem(await api('/auth/dev-token', { method: 'POST', body: '{"userId":"u1"}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('sets secure headers and a request id on every response', async () => {
    const response = await api('/no/such/route');
    expect(response.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(response.headers.get('X-Request-Id')).toBeTruthy();
    await response.body?.cancel();
  });
});

describe('unexpected errors', () => {
  it('answer 500 problem+json with a request id and nothing internal', async () => {
    const app = createApp();
    app.get('/__test/boom', () => {
      throw new Error('invariant broken near 10.1.2.3 with password=hunter2');
    });
    const response = await app.request('/__test/boom', {}, env, createExecutionContext());
    const problem = await expectProblem(response, 500, 'INTERNAL_ERROR');
    expect(JSON.stringify(problem)).not.toMatch(/hunter2|10\.1\.2\.3|invariant/);
    expect(problem.requestId).toBe(response.headers.get('X-Request-Id'));
  });
});

describe('user auth', () => {
  it('mints a dev token that verifies', async () => {
    const token = await userToken('alice');
    // Verified as the API verifies it: HS256 under AUTH_SECRET, for alice, expiring in the future.
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(env.AUTH_SECRET), { algorithms: ['HS256'] });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.sub).toBe('alice');
    expect(payload.exp).toBeGreaterThan(Date.now() / 1000);
    const whoami = await api('/auth/whoami', { headers: { Authorization: `Bearer ${token}` } });
    expect(whoami.status).toBe(200);
    expect(await whoami.json()).toEqual({ userId: 'alice' });
    // Any other key fails it: the token is signed, not merely shaped like a JWT.
    await expect(jwtVerify(token, new TextEncoder().encode('y'.repeat(32)), { algorithms: ['HS256'] })).rejects.toThrow(/signature/);
  });

  it('answers 401 with WWW-Authenticate for a missing, tampered, alg:none or expired token', async () => {
    const good = await userToken('mallory');
    const [header, , signature] = good.split('.') as [string, string, string];
    const forgedPayload = btoa(JSON.stringify({ sub: 'alice', exp: 9_999_999_999 })).replaceAll('=', '');
    const none = `${btoa(JSON.stringify({ alg: 'none', typ: 'JWT' })).replaceAll('=', '')}.${forgedPayload}.`;
    const key = new TextEncoder().encode(env.AUTH_SECRET);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('alice').setExpirationTime(1).sign(key);
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('alice').sign(key);
    const otherSecret = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('x'.repeat(32)));
    for (const token of [undefined, `${header}.${forgedPayload}.${signature}`, none, expired, noExp, otherSecret, 'garbage']) {
      // A protected probe: any route behind requireUser. /auth/whoami exists for exactly this.
      const response = await api('/auth/whoami', { headers: token ? { Authorization: `Bearer ${token}` } : {} });
      await expectProblem(response, 401, 'UNAUTHENTICATED');
      expect(response.headers.get('WWW-Authenticate')).toMatch(/^Bearer /);
    }
    const ok = await api('/auth/whoami', { headers: { Authorization: `Bearer ${good}` } });
    expect(await ok.json()).toEqual({ userId: 'mallory' });
  });
});
