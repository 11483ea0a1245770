/**
 * What the two closed-loop generators (./load.ts for HTTP requests, ./op-load.ts for in-process
 * operations) share: outcome counts, error labels, and the step's clock and CPU counters.
 */

export function countInto(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Counts as a record, most frequent first. */
export function sortedRecord(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1]));
}

/** "ECONNRESET: read ECONNRESET", "TimeoutError: …": an error's code (or name) and message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && code !== '' ? `${code}: ${error.message}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}

/** CPU counters a step reads before and after itself (see ./cpu.ts); either may be absent. */
export interface CpuSources {
  /** CPU ms used so far by the server under test. */
  serverCpuMs?: () => number;
  /** The same for the services behind it (database, cache, their adapters). */
  stackCpuMs?: () => number;
}

/** CPU spent during a step: ms in all (NaN when not sampled) and % of one core over its wall time. */
export interface StepCpu {
  clientPct: number;
  serverMs: number;
  serverPct: number;
  stackMs: number;
  stackPct: number;
}

/** Starts a step's clock and CPU counters; call it right before the step's first operation. */
export function startStepMeter(sources: CpuSources): {
  startedAt: number;
  /** Seconds from the start to `lastEndAt`, the step's last answer (at least 1 ms). */
  elapsedS(lastEndAt: number): number;
  /** Reads the counters: CPU spent since the start. */
  cpu(): StepCpu;
} {
  const cpuBefore = process.cpuUsage();
  const serverCpuBefore = sources.serverCpuMs?.() ?? Number.NaN;
  const stackCpuBefore = sources.stackCpuMs?.() ?? Number.NaN;
  const startedAt = performance.now();
  return {
    startedAt,
    elapsedS: (lastEndAt) => (Math.max(lastEndAt, startedAt + 1) - startedAt) / 1000,
    cpu: () => {
      const client = process.cpuUsage(cpuBefore);
      const serverMs = (sources.serverCpuMs?.() ?? Number.NaN) - serverCpuBefore;
      const stackMs = (sources.stackCpuMs?.() ?? Number.NaN) - stackCpuBefore;
      const wallMs = performance.now() - startedAt || 1;
      return {
        clientPct: ((client.user + client.system) / 1000 / wallMs) * 100,
        serverMs,
        serverPct: (serverMs / wallMs) * 100,
        stackMs,
        stackPct: (stackMs / wallMs) * 100,
      };
    },
  };
}
