import { withTimeout } from '../lib/time.ts';

export type DependencyStatus = { status: 'ok'; latencyMs: number } | { status: 'down'; latencyMs: number; reason: 'error' | 'timeout' };

export interface HealthReport {
  ok: boolean;
  checks: { postgres: DependencyStatus; redis: DependencyStatus };
}

/** How long one dependency may take before it counts as down. @default 2000 */
export const HEALTH_CHECK_TIMEOUT_MS = 2_000;

async function probe(ping: () => Promise<unknown>, timeoutMs: number): Promise<DependencyStatus> {
  const startedAt = performance.now();
  try {
    await withTimeout(ping(), timeoutMs, 'health probe');
    return { status: 'ok', latencyMs: Math.round((performance.now() - startedAt) * 10) / 10 };
  } catch (error) {
    const latencyMs = Math.round((performance.now() - startedAt) * 10) / 10;
    return { status: 'down', latencyMs, reason: error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'error' };
  }
}

/** Pings Postgres and Redis in parallel through the real drivers. */
export async function checkHealth(deps: {
  pingPostgres: () => Promise<unknown>;
  pingRedis: () => Promise<unknown>;
  timeoutMs?: number;
}): Promise<HealthReport> {
  const timeoutMs = deps.timeoutMs ?? HEALTH_CHECK_TIMEOUT_MS;
  const [postgres, redis] = await Promise.all([probe(deps.pingPostgres, timeoutMs), probe(deps.pingRedis, timeoutMs)]);
  return { ok: postgres.status === 'ok' && redis.status === 'ok', checks: { postgres, redis } };
}
