/**
 * Runs `nexus-telemetry` subcommands as real child processes, with output captured for assertions
 * and failure messages, and a kill-all for teardown: the compiled dist/ when asked (benchmarks) or
 * when the test run built it (NEXUS_TEST_BUILT=1, set by test/setup/web-build.ts), else src/
 * through tsx (no build needed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const BUILT_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Options of {@link spawnCli}. */
export interface SpawnCliOptions {
  /**
   * Run the compiled `dist/cli/main.js` (build it first, `npm run build`) instead of `src/` through
   * tsx: what a deployment runs, without tsx compiling every module at start (about 1 CPU-second).
   * Default: whether the test run built dist/ (NEXUS_TEST_BUILT=1).
   */
  built?: boolean;
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolve when the output matches `pattern`; reject on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolve with the exit code (or signal name) once the process ended and its output is drained. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

/** Start `nexus-telemetry <args>` with `env` added to the environment. */
export function spawnCli(
  args: string[],
  env: Record<string, string>,
  options: SpawnCliOptions = {},
): CliProcess {
  // BENCH_CPU_PROF=<dir>: every CLI process writes a V8 CPU profile there when it exits (benchmarks).
  const profile = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const built = options.built ?? process.env.NEXUS_TEST_BUILT === '1';
  const entry = built ? [BUILT_CLI] : ['--import', 'tsx', CLI];
  // The memory flags `npm start` passes, when this process has them (`npm run bench` does): the
  // CLI processes a bench starts then run as operators run them (docs/operations.md).
  const memoryFlags = process.execArgv.filter(
    (a) =>
      a.startsWith('--max-semi-space-size') ||
      a.startsWith('--heap-growing-percent') ||
      a === '--no-allocation-site-pretenuring',
  );
  const child = spawn(process.execPath, [...memoryFlags, ...profile, ...entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let text = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    if (text.length > 2_000_000) text = text.slice(-1_000_000);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  // 'close', not 'exit': it comes once stdout and stderr are drained too, so output() is complete.
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
      for (const l of listeners) l();
    }),
  );
  return {
    child,
    output: () => text,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(text);
          if (match) {
            done();
            resolve(match[0]);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`process exited before ${pattern}:\n${text.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${pattern}:\n${text.slice(-4000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** SIGKILL every child still running (teardown). */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}
