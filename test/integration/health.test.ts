import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { expectProblem } from '../helpers/problem.ts';

describe('GET /health', () => {
  it('reports both stores ok with latencies when Postgres and Redis answer', async () => {
    const response = await api('/health');
    expect(response.status).toBe(200);
    const body = await response.json<{ status: string; checks: Record<string, { status: string; latencyMs: number }> }>();
    expect(body.status).toBe('ok');
    expect(body.checks.postgres).toMatchObject({ status: 'ok', latencyMs: expect.any(Number) });
    expect(body.checks.redis).toMatchObject({ status: 'ok', latencyMs: expect.any(Number) });
  });

  it('answers 503 DEPENDENCY_UNAVAILABLE naming Redis when the Upstash adapter refuses', async () => {
    await setFault('upstash', 'refuse');
    try {
      const response = await api('/health');
      const problem = await expectProblem(response, 503, 'DEPENDENCY_UNAVAILABLE');
      expect(response.headers.get('Retry-After')).toBe('1');
      expect(problem.checks).toMatchObject({ postgres: { status: 'ok' }, redis: { status: 'down' } });
    } finally {
      await clearFault('upstash');
    }
    expect((await api('/health')).status).toBe(200);
  });

  it('answers 503 naming Postgres when the Neon adapter refuses', async () => {
    await setFault('neon', 'refuse');
    try {
      const problem = await expectProblem(await api('/health'), 503, 'DEPENDENCY_UNAVAILABLE');
      expect(problem.checks).toMatchObject({ postgres: { status: 'down' }, redis: { status: 'ok' } });
    } finally {
      await clearFault('neon');
    }
  });
});
