import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// Tests run inside workerd. test/global-setup.ts starts the real local stack (PostgreSQL behind the
// Neon WebSocket adapter, redis-server behind the Upstash REST adapter) and provides its URLs here.
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
          ADMIN_TOKEN: inject('adminToken'),
          DEV_AUTH: 'true',
        },
      },
    })),
  ],
  test: {
    globalSetup: ['./test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    // The adapters' fault switches are shared by every test file: a file that cuts Redis or
    // Postgres must not run beside one that needs them.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One JSON line per request is useful in production and noise here; failures still print.
    onConsoleLog: (log) => !log.includes('"message":"request"'),
  },
});
