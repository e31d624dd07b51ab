// Vitest configuration: tests run in forked processes; service-backed suites get generous timeouts.
import { configDefaults, defineConfig } from 'vitest/config';
import WatchdogReporter from './test/setup/watchdog-reporter.js';

// The soak test times /health answers; it runs alone (`npm run test:soak`, part of `npm test`).
const soak = 'test/e2e/soak.test.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: process.env.NEXUS_SOAK ? configDefaults.exclude : [...configDefaults.exclude, soak],
    pool: 'forks',
    // Two files at once: most files wait on the services they start more than they compute. On this
    // 2-core machine the whole run took 26 min one file at a time (Vitest's default here) and
    // 17.6 min two at a time, every test passing; more at once is untested (`--maxWorkers=N` overrides).
    maxWorkers: 2,
    minWorkers: 1,
    // Builds dist/web/* (the dashboard, GraphiQL) when stale, for the browser tests.
    globalSetup: ['test/setup/web-build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // A file that hangs (a blocked event loop, a stopped process) fails the run, named, after 15 min.
    reporters: ['default', new WatchdogReporter()],
  },
});
