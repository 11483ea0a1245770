/**
 * A closed-loop generator for in-process operations (a lock acquire, one Redis command): the
 * counterpart of ./load.ts for work that is not one HTTP request. N clients each start their next
 * operation as soon as the last one settles; no operation starts after the step's deadline, and
 * operations already started run to their end, so a line of waiters drains rather than being cut.
 *
 * The operations run in this Node process, so the client CPU figure is part of the measurement: near
 * 100 % of a core means the figure is bounded by this process, not by what it talks to.
 */
import { countInto, describeError, sortedRecord, startStepMeter } from './closed-loop.ts';
import { summarize } from './stats.ts';
import type { Summary } from './stats.ts';

/** What one operation reports. */
export interface OpOutcome {
  /** The bucket it is counted in, e.g. "granted", "LOCK_TIMEOUT". */
  label: string;
  /** Whether it is what the step is measuring (counted in {@link OpResult.done} and the rate). */
  ok: boolean;
  /** Latency to record, ms; leave out to record none (e.g. for a failure). */
  latencyMs?: number;
}

export interface OpStep {
  /** Shown in tables and logs. */
  name: string;
  /** Concurrent clients. */
  concurrency: number;
  /** No operation starts after this many ms from the start of the step. */
  durationMs: number;
  /**
   * One operation of client `client` (0-based). A rejection counts as an error (by message) and the
   * client goes on. Resolve undefined when the client has no more work.
   */
  run: (client: number) => Promise<OpOutcome | undefined>;
  /** Aborting stops starting operations. */
  signal?: AbortSignal;
  /** CPU ms used so far by the services the operations talk to (see ./cpu.ts). */
  stackCpuMs?: () => number;
}

export interface OpResult {
  name: string;
  concurrency: number;
  /** Operations that settled, and those that resolved `ok`. */
  operations: number;
  done: number;
  /** Operations that rejected. */
  errors: number;
  /** From the start to the last operation's end. */
  elapsedS: number;
  /** `done` per second over `elapsedS`. */
  perSecond: number;
  /** Latencies the operations reported, ms. */
  latencyMs: Summary;
  /** Outcomes by label, errors by message; sorted by count. */
  outcomes: Record<string, number>;
  errorMessages: Record<string, number>;
  /** CPU of this Node process during the step, % of one core. */
  clientCpuPct: number;
  /** CPU of {@link OpStep.stackCpuMs} during the step, % of one core, and per `done` operation (ms). */
  stackCpuPct: number;
  stackCpuMsPerOp: number;
  stoppedBy: 'duration' | 'exhausted' | 'interrupted';
}

/** Runs one closed-loop step of in-process operations and summarizes it. */
export async function runOps(step: OpStep): Promise<OpResult> {
  const latencies: number[] = [];
  const outcomes = new Map<string, number>();
  const errorMessages = new Map<string, number>();
  let operations = 0;
  let done = 0;
  let errors = 0;
  let exhausted = 0;
  let lastEndAt = 0;

  const meter = startStepMeter({ stackCpuMs: step.stackCpuMs });
  const deadline = meter.startedAt + step.durationMs;
  const stop = (): boolean => step.signal?.aborted === true || performance.now() >= deadline;

  const client = async (index: number): Promise<void> => {
    while (!stop()) {
      try {
        const outcome = await step.run(index);
        lastEndAt = performance.now();
        if (outcome === undefined) {
          exhausted++;
          return;
        }
        operations++;
        if (outcome.ok) done++;
        if (outcome.latencyMs !== undefined) latencies.push(outcome.latencyMs);
        countInto(outcomes, outcome.label);
      } catch (error) {
        lastEndAt = performance.now();
        operations++;
        errors++;
        countInto(errorMessages, describeError(error));
      }
    }
  };

  await Promise.all(Array.from({ length: step.concurrency }, (_, index) => client(index)));
  const cpu = meter.cpu();
  const elapsedS = meter.elapsedS(lastEndAt);
  return {
    name: step.name,
    concurrency: step.concurrency,
    operations,
    done,
    errors,
    elapsedS,
    perSecond: done / elapsedS,
    latencyMs: summarize(latencies),
    outcomes: sortedRecord(outcomes),
    errorMessages: sortedRecord(errorMessages),
    clientCpuPct: cpu.clientPct,
    stackCpuPct: cpu.stackPct,
    stackCpuMsPerOp: cpu.stackMs / done,
    stoppedBy: step.signal?.aborted ? 'interrupted' : exhausted === step.concurrency ? 'exhausted' : 'duration',
  };
}
