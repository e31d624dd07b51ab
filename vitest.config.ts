// Vitest configuration: tests run in forked processes; service-backed suites get generous timeouts.
import { configDefaults, defineConfig } from 'vitest/config';

// The soak test times /health answers; it runs alone (`npm run test:soak`, part of `npm test`).
const soak = 'test/e2e/soak.test.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: process.env.NEXUS_SOAK ? configDefaults.exclude : [...configDefaults.exclude, soak],
    pool: 'forks',
    // Builds dist/web/* (the dashboard, GraphiQL) when stale, for the browser tests.
    globalSetup: ['test/setup/web-build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
