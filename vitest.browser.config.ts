import { defineConfig } from 'vitest/config';

// The web front in headless Chromium, in Node (not workerd): test/browser/global-setup.ts builds the
// pages and serves them with the API from `wrangler dev` on a throwaway stack. `npm test` runs this
// after the workerd suites (vitest.config.ts), so the two never compete for the machine's cores.
export default defineConfig({
  test: {
    name: 'browser',
    environment: 'node',
    globalSetup: ['./test/browser/global-setup.ts'],
    include: ['test/browser/**/*.test.ts'],
    fileParallelism: false,
    // Chromium and wrangler dev on a shared 2-core machine: waits are on conditions, with room.
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
