import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { QUEUE_TOKEN_TYPE } from '../../src/lib/queue-token.ts';
import { charge } from '../helpers/balance.ts';
import { createConcert, joinOk, queueStatus } from '../helpers/concerts.ts';
import { HOSTILE_SUBJECTS, hsToken, queueClaims, userClaims } from '../helpers/jwt.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

describe('user-token attacks', () => {
  it('gets 500 today on POST /balance/charge with a correctly signed sub of 2,000 characters or with "{" (the defect, now 401)', async () => {
    for (const sub of ['x'.repeat(2000), 'user{1}']) {
      const token = await hsToken(env.AUTH_SECRET, userClaims(sub), { typ: 'JWT' });
      const response = await charge(token, 5);
      expect(response.status, await response.clone().text()).toBe(401);
      expect(await directQuery('SELECT 1 FROM balances WHERE user_id = $1', [sub])).toEqual([]);
    }
  });

  it('refuses a correctly signed user token whose sub is no valid user id with 401', async () => {
    for (const { name, sub } of HOSTILE_SUBJECTS) {
      const token = await hsToken(env.AUTH_SECRET, userClaims(sub), { typ: 'JWT' });
      await expectProblem(await charge(token, 5), 401, 'UNAUTHENTICATED').catch((error: unknown) => {
        throw new Error(`${name}: ${String(error)}`);
      });
    }
  });
});

describe('queue-token attacks', () => {
  it('refuses a correctly signed queue token whose sub, cid or jti is malformed with 401', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, `q-${crypto.randomUUID()}`);
    const { seq, jti } = JSON.parse(atob(token.split('.')[1]!.replaceAll('-', '+').replaceAll('_', '/'))) as { seq: number; jti: string };
    const claims = { userId: 'someone', concertId: concert.id, seq, jti };
    const bad = [
      ...HOSTILE_SUBJECTS.map(({ sub }) => ({ ...claims, userId: sub })),
      { ...claims, concertId: `${concert.id}{}` },
      { ...claims, jti: 'j'.repeat(10 * 1024) },
    ];
    for (const place of bad) {
      const forged = await hsToken(env.QUEUE_TOKEN_SECRET, queueClaims(place), { typ: QUEUE_TOKEN_TYPE });
      await expectProblem(await queueStatus(forged), 401, 'INVALID_QUEUE_TOKEN');
    }
  });
});
