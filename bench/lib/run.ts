/**
 * The frame of the benchmarks that run against the throwaway stack (bench:queue, bench:holds,
 * bench:locks): signal handling, the stack, the run's clock, and teardown however the run ends.
 */
import { cleanup, installSignalHandlers, interrupted } from './cleanup.ts';
import { startBenchStack } from './frontrow.ts';
import type { BenchStack } from './frontrow.ts';

/** What a benchmark's body gets. */
export interface BenchRun {
  bench: BenchStack;
  startedAt: Date;
  /** Seconds since the run started, the stack's start-up included. */
  elapsedSeconds: () => number;
}

/**
 * Runs `body`, then every cleanup step (stack, Workers) whether it ends, fails or is interrupted. A
 * failure sets exit code 1; an interruption does not print its error, since the signal handler has
 * already said what happened and sets the exit code itself.
 */
export async function runFramed(log: (message: string) => void, body: () => Promise<void>): Promise<void> {
  installSignalHandlers(log);
  try {
    await body();
  } catch (error) {
    if (!interrupted.aborted) {
      console.error(error);
      process.exitCode = 1;
    }
  } finally {
    await cleanup(log);
  }
}

/** Starts the stack and runs `body` within {@link runFramed}. */
export function runBenchmark(log: (message: string) => void, body: (run: BenchRun) => Promise<void>): Promise<void> {
  return runFramed(log, async () => {
    const startedAt = new Date();
    const t0 = performance.now();
    const bench = await startBenchStack(log);
    await body({ bench, startedAt, elapsedSeconds: () => (performance.now() - t0) / 1000 });
  });
}
