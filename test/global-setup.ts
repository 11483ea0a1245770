import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { migrate } from '../scripts/migrate.ts';
import { startStack } from '../scripts/stack/index.ts';

/** Command sequences the model-based run tries in `npm test`; `npm run test:soak` tries ten times as many. */
const DEFAULT_MODEL_RUNS = 200;

function positiveInteger(value: string | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : undefined;
}

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/**
 * `TEST_TODAY=YYYY-MM-DD`: run the suite as if it were noon UTC that day. PostgreSQL runs under
 * libfaketime with the offset (its `now()` decides holds' expiry and refunds' cut-off); the workerd
 * side shifts itself (test/helpers/clock-shift.ts). Redis keeps the real clock: it cannot run under
 * libfaketime (jemalloc) and needs no shift, since the locks compare its TIME only with itself.
 */
function shiftClock(today: string | undefined): { offsetMs: number; postgresEnv?: Record<string, string> } {
  if (!today) return { offsetMs: 0 };
  const target = Date.parse(`${today}T12:00:00Z`);
  if (!Number.isFinite(target)) throw new Error(`TEST_TODAY must be YYYY-MM-DD, got ${today}`);
  if (!existsSync(LIBFAKETIME)) throw new Error(`TEST_TODAY needs libfaketime (${LIBFAKETIME}; Debian: apt-get install faketime)`);
  const seconds = Math.round((target - Date.now()) / 1000);
  console.log(`[clock] Postgres and the rooms read the clock as ${new Date(Date.now() + seconds * 1000).toISOString()}`);
  return { offsetMs: seconds * 1000, postgresEnv: { LD_PRELOAD: LIBFAKETIME, FAKETIME: `${seconds >= 0 ? '+' : ''}${seconds}`, FAKETIME_DONT_RESET: '1' } };
}

/**
 * Starts the same throwaway stack `npm run dev` uses (never a service someone else started on a
 * standard port), migrates it, and hands its URLs to the workerd side. Everything stops after the run.
 */
export default async function setup(project: TestProject) {
  const clock = shiftClock(process.env.TEST_TODAY);
  const stack = await startStack({ log: (message) => console.log(`[stack] ${message}`), ...(clock.postgresEnv ? { postgresEnv: clock.postgresEnv } : {}) });
  try {
    await migrate(stack.databaseUrl);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  project.provide('databaseUrl', stack.databaseUrl);
  project.provide('neonWsProxy', stack.neonWsProxy);
  project.provide('upstashUrl', stack.upstashUrl);
  project.provide('upstashToken', stack.upstashToken);
  project.provide('faults', stack.faults);
  project.provide('authSecret', randomBytes(32).toString('base64url'));
  project.provide('queueTokenSecret', randomBytes(32).toString('base64url'));
  project.provide('entryPowSecret', randomBytes(32).toString('base64url'));
  project.provide('adminToken', randomBytes(24).toString('base64url'));
  // The model-based run (test/model): how many sequences, and a seed (and path) to replay a failure.
  project.provide('modelRuns', positiveInteger(process.env.MODEL_RUNS) ?? DEFAULT_MODEL_RUNS);
  project.provide('modelSeed', process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined);
  project.provide('modelPath', process.env.MODEL_PATH || undefined);
  project.provide('clockOffsetMs', clock.offsetMs);
  return () => stack.stop();
}
