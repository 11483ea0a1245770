import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startWorker } from '../../bench/lib/worker.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { migrate } from '../../scripts/migrate.ts';
import { seed } from '../../scripts/seed.ts';
import { startStack } from '../../scripts/stack/index.ts';

/**
 * The browser tests need a real HTTP origin serving the static assets and the API together, which
 * the in-workerd test pool does not give: so this starts what `npm run dev` starts (a throwaway stack,
 * migrated and seeded, the web front built, `wrangler dev` with the production wrangler.toml) on free ports, with
 * fresh secrets passed in an env file (.dev.vars is neither read nor written). Stops it all after.
 */
export default async function setup(project: TestProject) {
  const log = (message: string) => console.log(`[browser] ${message}`);
  const root = path.resolve(import.meta.dirname, '../..');
  await buildWeb();
  const stack = await startStack({ log: (message) => log(`stack: ${message}`) });
  const adminToken = randomBytes(24).toString('base64url');
  let stopWorker: (() => Promise<void>) | undefined;
  try {
    await migrate(stack.databaseUrl);
    // As `npm run dev` does: the landing page's test looks for a seeded concert without creating one.
    await seed(stack.databaseUrl);
    const worker = await startWorker({
      mode: 'wrangler',
      root,
      configPath: 'wrangler.toml',
      startTimeoutMs: 120_000,
      log,
      vars: {
        DATABASE_URL: stack.databaseUrl,
        NEON_WS_PROXY: stack.neonWsProxy,
        UPSTASH_REDIS_REST_URL: stack.upstashUrl,
        UPSTASH_REDIS_REST_TOKEN: stack.upstashToken,
        AUTH_SECRET: randomBytes(32).toString('base64url'),
        QUEUE_TOKEN_SECRET: randomBytes(32).toString('base64url'),
        ENTRY_POW_SECRET: randomBytes(32).toString('base64url'),
        ADMIN_TOKEN: adminToken,
        DEV_AUTH: 'true',
      },
    });
    stopWorker = () => worker.stop();
    project.provide('webUrl', worker.url);
    project.provide('adminToken', adminToken);
  } catch (error) {
    await stopWorker?.();
    await stack.stop();
    throw error;
  }
  return async () => {
    await stopWorker?.();
    await stack.stop();
  };
}
