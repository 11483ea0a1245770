import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { migrate } from '../scripts/migrate.ts';
import { startStack } from '../scripts/stack/index.ts';

/** Command sequences the model-based run tries in `npm test`; `npm run test:soak` tries ten times as many. */
const DEFAULT_MODEL_RUNS = 200;

function positiveInteger(value: string | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Starts the same throwaway stack `npm run dev` uses (never a service someone else started on a
 * standard port), migrates it, and hands its URLs to the workerd side. Everything stops after the run.
 */
export default async function setup(project: TestProject) {
  const stack = await startStack({ log: (message) => console.log(`[stack] ${message}`) });
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
  project.provide('adminToken', randomBytes(24).toString('base64url'));
  // The model-based run (test/model): how many sequences, and a seed (and path) to replay a failure.
  project.provide('modelRuns', positiveInteger(process.env.MODEL_RUNS) ?? DEFAULT_MODEL_RUNS);
  project.provide('modelSeed', process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined);
  project.provide('modelPath', process.env.MODEL_PATH || undefined);
  return () => stack.stop();
}
