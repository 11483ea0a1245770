import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { configDefaults, defineConfig } from 'vitest/config';
import { TEST_ADDRESS_RATE_LIMIT } from './test/helpers/rate-limit-config.ts';

// Two projects. "workers" (this file's own config, extended): the suites, inside workerd;
// test/global-setup.ts starts the real local stack (PostgreSQL behind the Neon WebSocket adapter,
// redis-server behind the Upstash REST adapter) and provides its URLs here. "bench": smoke runs of
// the benchmarks, in Node, because they start processes (a stack and a Worker of their own) and drive
// them from outside as a client would.
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: {
          DATABASE_URL: inject('databaseUrl'),
          NEON_WS_PROXY: inject('neonWsProxy'),
          UPSTASH_REDIS_REST_URL: inject('upstashUrl'),
          UPSTASH_REDIS_REST_TOKEN: inject('upstashToken'),
          AUTH_SECRET: inject('authSecret'),
          QUEUE_TOKEN_SECRET: inject('queueTokenSecret'),
          ENTRY_POW_SECRET: inject('entryPowSecret'),
          ADMIN_TOKEN: inject('adminToken'),
          DEV_AUTH: 'true',
        },
        // The per-address limit is 1,000 per 10 s in wrangler.toml; a test proving it must send that
        // many within one window, which a busy 2-core machine does not always manage. Same code path,
        // a fifth of the burst (test/security/rate-limits.test.ts).
        ratelimits: { RATE_LIMIT_ADDRESS: { namespace_id: '1002', simple: { limit: TEST_ADDRESS_RATE_LIMIT, period: 10 } } },
      },
    })),
  ],
  test: {
    // The adapters' fault switches are shared by every test file: a file that cuts Redis or
    // Postgres must not run beside one that needs them. Set here, it holds across both projects,
    // so a benchmark's smoke run does not take the cores from a suite's timing-sensitive tests.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One JSON line per request is useful in production and noise here; failures still print.
    onConsoleLog: (log) => !log.includes('"message":"request"'),
    projects: [
      {
        extends: true,
        test: {
          name: 'workers',
          globalSetup: ['./test/global-setup.ts'],
          setupFiles: ['./test/helpers/clock-shift.ts'],
          include: ['test/**/*.test.ts'],
          // The browser tests run in Node against a served origin: vitest.browser.config.ts.
          exclude: [...configDefaults.exclude, 'test/browser/**', 'test/bench/**'],
        },
      },
      {
        test: {
          name: 'bench',
          environment: 'node',
          include: ['test/bench/**/*.test.ts'],
          testTimeout: 180_000,
        },
      },
    ],
  },
});
