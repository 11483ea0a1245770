import { describe, expect, it } from 'vitest';
import { api, uniqueId } from '../helpers/api.ts';
import { adminHeaders } from '../helpers/concerts.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';

const HOUR = 3_600_000;

/** A valid body for POST /admin/concerts, its times relative to now. */
function concertBody(title: string, startsAt: Date, salesOpenAt: Date) {
  return {
    title,
    venue: 'Hall',
    date: startsAt.toISOString().slice(0, 10),
    startsAt: startsAt.toISOString(),
    salesOpenAt: salesOpenAt.toISOString(),
    seats: { count: 5, price: 100 },
  };
}

async function concertsTitled(title: string): Promise<number> {
  const rows = await directQuery<{ n: string }>(`SELECT count(*) AS n FROM concerts WHERE title = $1`, [title]);
  return Number(rows[0]?.n ?? 0);
}

describe('POST /admin/concerts', () => {
  it('creates a concert that starts later than its sales open, both in the future', async () => {
    const now = Date.now();
    const response = await api('/admin/concerts', {
      method: 'POST',
      headers: adminHeaders(),
      json: concertBody(uniqueId('ok'), new Date(now + 48 * HOUR), new Date(now + HOUR)),
    });
    expect(response.status).toBe(201);
  });

  it('refuses with 400 VALIDATION_FAILED, writing nothing, a concert that started yesterday', async () => {
    const title = uniqueId('yesterday');
    const now = Date.now();
    const response = await api('/admin/concerts', {
      method: 'POST',
      headers: adminHeaders(),
      json: concertBody(title, new Date(now - 24 * HOUR), new Date(now - 48 * HOUR)),
    });
    const problem = await expectProblem(response, 400, 'VALIDATION_FAILED');
    expect(problem.errors).toEqual([{ path: 'startsAt', message: 'must be in the future' }]);
    expect(await concertsTitled(title)).toBe(0);
  });

  it('refuses with 400 VALIDATION_FAILED, writing nothing, a concert whose sales open at or after it starts', async () => {
    const startsAt = new Date(Date.now() + 48 * HOUR);
    for (const salesOpenAt of [new Date(startsAt.getTime() + HOUR), startsAt]) {
      const title = uniqueId('late-sales');
      const response = await api('/admin/concerts', { method: 'POST', headers: adminHeaders(), json: concertBody(title, startsAt, salesOpenAt) });
      const problem = await expectProblem(response, 400, 'VALIDATION_FAILED');
      expect(problem.errors).toEqual([{ path: 'salesOpenAt', message: 'must be before startsAt' }]);
      expect(await concertsTitled(title)).toBe(0);
    }
  });
});
