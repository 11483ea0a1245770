import { createRoute, z } from '@hono/zod-openapi';
import { AppError } from '../lib/errors.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { getRedis } from '../lib/redis.ts';
import { checkHealth } from '../services/health.ts';
import type { App } from '../types.ts';

const DependencySchema = z.object({
  status: z.enum(['ok', 'down']),
  latencyMs: z.number(),
  reason: z.enum(['error', 'timeout']).optional(),
});

const HealthSchema = z
  .object({
    status: z.literal('ok'),
    checks: z.object({ postgres: DependencySchema, redis: DependencySchema }),
  })
  .openapi('Health');

const route = createRoute({
  method: 'get',
  path: '/health',
  tags: ['ops'],
  summary: 'Postgres and Redis reachability with latency',
  responses: {
    200: { description: 'Both stores answer', content: { 'application/json': { schema: HealthSchema } } },
    503: problemResponse('A store is down (DEPENDENCY_UNAVAILABLE); `checks` says which'),
  },
});

export function registerHealthRoutes(app: App): void {
  app.openapi(route, async (c) => {
    const sql = c.var.sql();
    const redis = getRedis(c.env);
    const report = await checkHealth({
      pingPostgres: () => sql`select 1`,
      pingRedis: () => redis.ping(),
    });
    if (!report.ok) {
      const down = Object.entries(report.checks)
        .filter(([, check]) => check.status === 'down')
        .map(([name]) => name);
      throw new AppError(503, 'DEPENDENCY_UNAVAILABLE', 'Dependency unavailable', `Unavailable: ${down.join(', ')}`, {
        extensions: { checks: report.checks },
        headers: { 'Retry-After': '1' },
      });
    }
    return c.json({ status: 'ok' as const, checks: report.checks }, 200);
  });
}
