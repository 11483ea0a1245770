/**
 * Issue 8's and issue 19's targets, printed beside the figures: ratios to the trivial 404 of the same
 * run (and p99), judged on the workerd mode at 50 clients with no added latency; p50 with
 * `--latency neon=20,redis=10` at 10 clients (issue 19, see ./wire.ts); and the scale target: an
 * operation at the large size costs at most 1.3× what it costs at the small one.
 */
import type { Measured } from './report.ts';
import { formatMs, formatRatio, printTable, rightAligned } from './table.ts';

/** Goals are judged on this mode and concurrency only (issue 8). */
export const GOAL_MODE = 'workerd';
export const GOAL_CLIENTS = 50;
/** Per-op cost at the large size ÷ at the small one, at most. */
export const SCALE_GOAL = 1.3;

/** What a goal is judged on. */
export interface GoalFigures {
  /** Expected answers/s ÷ the trivial 404's req/s (same mode, clients, run). */
  ratio: number;
  p50: number;
  p99: number;
}

export interface Goal {
  /** e.g. "≥ 0.80× trivial". */
  text: string;
  /** Whether the figures meet it. */
  met(figures: GoalFigures): boolean;
  /** Clients the goal is judged at. @default GOAL_CLIENTS */
  clients?: number;
  /** The `--latency` it is judged with (./wire.ts latencyLabel). @default 'none' */
  latency?: string;
}

/** Expected (2xx or as the step defines) answers per second: refusals do not count toward a goal. */
export function okRps(row: Measured): number {
  return row.result.expected / row.result.elapsedS;
}

/** Expected answers/s ÷ trivial req/s of the same mode, clients and run. */
export function ratioToTrivial(row: Measured): number {
  return row.trivial ? okRps(row) / row.trivial.rps : Number.NaN;
}

/** The figures of a measured row. */
export function figuresOf(row: Measured): GoalFigures {
  return { ratio: ratioToTrivial(row), p50: row.result.latencyMs.p50, p99: row.result.latencyMs.p99 };
}

function atLeast(ratio: number, p99Below?: number): Goal {
  return {
    text: `≥ ${ratio.toFixed(2)}× trivial${p99Below === undefined ? '' : `, p99 < ${p99Below} ms`}`,
    met: (f) => f.ratio >= ratio && (p99Below === undefined || f.p99 < p99Below),
  };
}

/** Issue 19's distance: the goals below with a p50 are judged with this `--latency` only. */
export const DISTANCE_LATENCY = 'neon=20,redis=10';
export const DISTANCE_CLIENTS = 10;

function p50AtDistance(ms: number): Goal {
  return { text: `p50 ≤ ${ms} ms at ${DISTANCE_LATENCY}`, met: (f) => f.p50 <= ms, clients: DISTANCE_CLIENTS, latency: DISTANCE_LATENCY };
}

export const GOALS = {
  status: atLeast(0.8),
  seatMap: atLeast(0.8),
  byDate: atLeast(0.8),
  join: atLeast(0.5),
  hold: atLeast(0.25, 100),
  // Issue 19 (checkout).
  payment: atLeast(0.12, 150),
  charge: atLeast(0.25),
  holdAtDistance: p50AtDistance(35),
  paymentAtDistance: p50AtDistance(60),
  chargeAtDistance: p50AtDistance(45),
} as const satisfies Record<string, Goal>;

/**
 * The goal of a checkout step for this run's `--latency` (./wire.ts latencyLabel): the ratio goal
 * without latency, the p50 goal at issue 19's distance, none at any other distance.
 */
export function checkoutGoal(step: 'hold' | 'payment' | 'charge', latency: string): Goal | undefined {
  if (latency === 'none') return GOALS[step];
  if (latency === DISTANCE_LATENCY) return GOALS[`${step}AtDistance`];
  return undefined;
}

/** Whether a goal is judged on a step of this mode and clients. */
export function judgedAt(goal: Goal, mode: string, clients: number): boolean {
  return mode === GOAL_MODE && clients === (goal.clients ?? GOAL_CLIENTS);
}

/** Whether `row` is one its goal is judged on. */
export function judged(row: Measured): boolean {
  return row.goal !== undefined && judgedAt(row.goal, row.mode, row.result.concurrency);
}

/** "met", "NOT MET" (with the goal), or "–" where no goal applies. */
export function goalCell(row: Measured): string {
  if (!row.goal || !judged(row)) return '–';
  return `${row.goal.met(figuresOf(row)) ? 'met' : 'NOT MET'} (${row.goal.text})`;
}

/** One step at two sizes of the same mode and clients. */
export interface ScalePair {
  mode: string;
  clients: number;
  step: string;
  small: Measured;
  large: Measured;
  /** Cost of one op in trivial-request units at the large size ÷ the same at the small size. */
  costRatio: number;
  /** Server CPU per request (÷ the trivial one's) at the large size ÷ the same at the small size. */
  cpuRatio: number;
  met: boolean;
}

/** Trivial req/s ÷ expected answers/s: one op's cost in trivial requests. */
function relativeCost(row: Measured): number {
  return row.trivial ? row.trivial.rps / okRps(row) : Number.NaN;
}

function relativeCpu(row: Measured): number {
  return row.trivial ? row.result.serverCpuMsPerRequest / row.trivial.serverCpuMsPerRequest : Number.NaN;
}

/**
 * Rows of the same mode, clients and step at different sizes: the first size seen against each later
 * one. Ceiling rows (no trivial, or the DO write) are left out.
 */
export function scalePairs(rows: readonly Measured[]): ScalePair[] {
  const groups = new Map<string, Measured[]>();
  for (const row of rows) {
    if (row.size === undefined || row.trivial === undefined || row.isDoWriteCeiling) continue;
    const key = `${row.mode}\n${row.result.concurrency}\n${row.result.name}`;
    const group = groups.get(key) ?? [];
    group.push(row);
    groups.set(key, group);
  }
  const pairs: ScalePair[] = [];
  for (const group of groups.values()) {
    const small = group[0]!;
    for (const large of group.slice(1)) {
      if (large.size === small.size) continue;
      const costRatio = relativeCost(large) / relativeCost(small);
      pairs.push({
        mode: small.mode,
        clients: small.result.concurrency,
        step: small.result.name,
        small,
        large,
        costRatio,
        cpuRatio: relativeCpu(large) / relativeCpu(small),
        met: costRatio <= SCALE_GOAL,
      });
    }
  }
  return pairs;
}

/** The scale table: each step at its small and large size, and the cost ratio against the 1.3× goal. */
export function printScaleTable(title: string, pairs: readonly ScalePair[]): void {
  if (pairs.length === 0) return;
  printTable(
    title,
    [
      'mode',
      ...rightAligned('clients'),
      'step',
      'small',
      ...rightAligned('req/s', '× trivial', 'p50 ms', 'p99 ms'),
      'large',
      ...rightAligned('req/s', '× trivial', 'p50 ms', 'p99 ms', 'cost large/small', 'CPU large/small'),
      `goal (≤ ${SCALE_GOAL}×)`,
    ],
    pairs.map((pair) => [
      pair.mode,
      String(pair.clients),
      pair.step,
      pair.small.size ?? '',
      Math.round(okRps(pair.small)).toLocaleString('en-US'),
      formatRatio(ratioToTrivial(pair.small)),
      formatMs(pair.small.result.latencyMs.p50),
      formatMs(pair.small.result.latencyMs.p99),
      pair.large.size ?? '',
      Math.round(okRps(pair.large)).toLocaleString('en-US'),
      formatRatio(ratioToTrivial(pair.large)),
      formatMs(pair.large.result.latencyMs.p50),
      formatMs(pair.large.result.latencyMs.p99),
      formatRatio(pair.costRatio),
      formatRatio(pair.cpuRatio),
      Number.isFinite(pair.costRatio) ? (pair.met ? 'met' : 'NOT MET') : '–',
    ]),
  );
  console.log(
    [
      'req/s: expected answers per second; × trivial: that ÷ the trivial 404 measured just before the step (each size has its own).',
      'cost large/small: (trivial req/s ÷ req/s) at the large size ÷ the same at the small size — what one op costs in trivial',
      '  requests, large against small; ≤ 1.3× is the goal. CPU large/small: the same with server CPU per request (÷ the',
      "  trivial step's) instead of throughput.",
    ].join('\n'),
  );
}

/** Every goal judged in the run, one line each (workerd, 50 clients; scale pairs in any mode). */
export function printGoalSummary(rows: readonly Measured[], pairs: readonly ScalePair[]): void {
  const lines: string[][] = [];
  for (const row of rows) {
    if (!row.goal || !judged(row)) continue;
    const figure = `${formatRatio(ratioToTrivial(row))} trivial, p50 ${formatMs(row.result.latencyMs.p50)} ms, p99 ${formatMs(row.result.latencyMs.p99)} ms`;
    lines.push([row.result.name, row.size ?? '', row.goal.text, figure, row.goal.met(figuresOf(row)) ? 'met' : 'NOT MET']);
  }
  for (const pair of pairs) {
    if (pair.small.mode !== GOAL_MODE || pair.clients !== GOAL_CLIENTS) continue;
    lines.push([
      pair.step,
      `${pair.small.size} → ${pair.large.size}`,
      `cost ≤ ${SCALE_GOAL}× small`,
      `${formatRatio(pair.costRatio)} (CPU ${formatRatio(pair.cpuRatio)})`,
      Number.isFinite(pair.costRatio) ? (pair.met ? 'met' : 'NOT MET') : '–',
    ]);
  }
  if (lines.length === 0) {
    console.log(
      `\nGoals (issues 8 and 19): none judged — they apply to the ${GOAL_MODE} mode at ${GOAL_CLIENTS} clients without --latency, ` +
        `or at ${DISTANCE_CLIENTS} clients with --latency ${DISTANCE_LATENCY}, which this run did not measure.`,
    );
    return;
  }
  printTable(
    `Goals (issues 8 and 19): ${GOAL_MODE} mode; ratios to the trivial 404 of the same run at ${GOAL_CLIENTS} clients, p50 at ${DISTANCE_CLIENTS} clients with --latency ${DISTANCE_LATENCY}`,
    ['step', 'size', 'goal', 'measured', 'verdict'],
    lines,
  );
}

/** The goals of a run for the JSON report. */
export function jsonGoals(rows: readonly Measured[], pairs: readonly ScalePair[]): Record<string, unknown>[] {
  return [
    ...rows
      .filter((row) => row.goal && judged(row))
      .map((row) => ({
        step: row.result.name,
        size: row.size,
        goal: row.goal!.text,
        ratioToTrivial: ratioToTrivial(row),
        p50Ms: row.result.latencyMs.p50,
        p99Ms: row.result.latencyMs.p99,
        met: row.goal!.met(figuresOf(row)),
      })),
    ...pairs.map((pair) => ({
      step: pair.step,
      mode: pair.mode,
      clients: pair.clients,
      small: pair.small.size,
      large: pair.large.size,
      goal: `cost ≤ ${SCALE_GOAL}× small`,
      costRatio: pair.costRatio,
      cpuRatio: pair.cpuRatio,
      met: pair.met,
    })),
  ];
}
