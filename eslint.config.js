// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Worker code never opens a Postgres connection per request (DESIGN.md §5 Connections): routes,
 * services and lib use Neon's HTTP query path (`c.var.sql()`, `c.var.db()`). A WebSocket `Pool` lives
 * only in the ConcertRoom (src/durable-objects), on its long-lived pool.
 */
const POOL_MESSAGE = 'No per-request Postgres pool in Worker code: use c.var.sql() / c.var.db() (Neon HTTP). Interactive transactions belong in the ConcertRoom.';
const noPerRequestPool = {
  'no-restricted-imports': [
    'error',
    {
      paths: [
        { name: '@neondatabase/serverless', importNames: ['Pool', 'Client', 'PoolClient'], message: POOL_MESSAGE },
        { name: 'drizzle-orm/neon-serverless', message: POOL_MESSAGE },
      ],
      patterns: [
        { group: ['**/db/client.ts', '**/db/client'], importNames: ['createPool', 'createDb', 'Pool', 'Db'], message: POOL_MESSAGE },
        { group: ['**/db/transaction.ts', '**/db/transaction'], message: POOL_MESSAGE },
      ],
    },
  ],
  'no-restricted-syntax': [
    'error',
    { selector: "MemberExpression[object.property.name='var'][property.name='pool']", message: POOL_MESSAGE },
    { selector: "CallExpression[callee.property.name='get'][arguments.0.value='pool']", message: POOL_MESSAGE },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules', '.tools', '**/.wrangler', 'worker-configuration.d.ts', 'dist', 'coverage', 'public/app', 'public/vendor', 'test-results'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An un-awaited RPC, Postgres or Redis call is a correctness bug here, not a style issue.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/routes/**/*.ts', 'src/services/**/*.ts', 'src/lib/**/*.ts', 'src/app.ts', 'src/index.ts'],
    rules: noPerRequestPool,
  },
  {
    // expect.any() and friends are typed `any` by design.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
