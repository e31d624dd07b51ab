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
    // One file at a time. Two at once took 17.6 min instead of 26 here, every test passing, but the
    // project's CI run of that change (session 17) never finished: two files stopped reporting near
    // the end and the run hit CI's 90 min limit, with no word of which or why. One at a time is what
    // CI has passed with; the watchdog reporter below now names a file that hangs, whatever the
    // count (`--maxWorkers=2` still works by hand).
    maxWorkers: 1,
    minWorkers: 1,
    // Builds dist/web/* (the dashboard, GraphiQL) when stale, for the browser tests.
    globalSetup: ['test/setup/web-build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // A file that hangs (a blocked event loop, a stopped process) fails the run, named, after 15 min.
    reporters: ['default', new WatchdogReporter()],
  },
});
