/**
 * Teardown for benchmarks that start processes (the stack, wrangler, workerd): every step registered
 * here runs once, newest first, when the benchmark ends, fails, or is interrupted (SIGINT, SIGTERM,
 * SIGHUP). A signal also aborts {@link interrupted}, so load loops stop issuing requests at once.
 *
 * This is the polite layer. Processes started through scripts/stack/processes.ts (`trackChild`,
 * `makeTempDir`) are also covered by its exit hook and reaper if this process dies without it.
 */

interface Step {
  name: string;
  /** Runs the step's work the first time, and returns that same promise after. */
  once: () => Promise<void>;
}

const steps: Step[] = [];
const controller = new AbortController();
let running: Promise<void> | undefined;
let handlersInstalled = false;

/** Aborted when the benchmark is interrupted by a signal. Pass it to anything that loops. */
export const interrupted: AbortSignal = controller.signal;

/**
 * Registers a teardown step. Steps run newest first, each at most once, errors logged and skipped.
 * @returns a function that runs the step now (and unregisters it), for tearing down early.
 */
export function onCleanup(name: string, run: () => Promise<void> | void): () => Promise<void> {
  let done: Promise<void> | undefined;
  const step: Step = {
    name,
    once: () =>
      (done ??= (async () => {
        const index = steps.indexOf(step);
        if (index >= 0) steps.splice(index, 1);
        await run();
      })()),
  };
  steps.push(step);
  return step.once;
}

/** Runs every registered step, newest first. Idempotent: later calls wait for the first. */
export function cleanup(log: (message: string) => void = () => {}): Promise<void> {
  return (running ??= (async () => {
    while (steps.length > 0) {
      const step = steps.pop()!;
      try {
        await step.once();
      } catch (error) {
        log(`cleanup: ${step.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  })());
}

/** Exit codes by the shell's 128 + signal number convention. */
const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

/**
 * On SIGINT/SIGTERM/SIGHUP: abort {@link interrupted}, run {@link cleanup}, exit 128 + n. A second
 * signal exits at once (the stack's exit hook and reaper still stop its processes).
 */
export function installSignalHandlers(log: (message: string) => void): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of Object.entries(SIGNAL_EXIT_CODES)) {
    process.on(signal, () => {
      if (controller.signal.aborted) {
        log(`${signal} again: exiting now`);
        process.exit(code);
      }
      log(`${signal}: stopping load and cleaning up`);
      controller.abort(new Error(signal));
      void cleanup(log).finally(() => process.exit(code));
    });
  }
}
