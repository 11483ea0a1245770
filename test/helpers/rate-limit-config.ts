/** Per-address requests per action per 10 s in the tests (production: 1,000, wrangler.toml). */
export const TEST_ADDRESS_RATE_LIMIT = 200;
