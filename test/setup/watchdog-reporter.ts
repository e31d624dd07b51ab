/**
 * Vitest reporter that turns a hung test file into a named failure. Per-test and per-hook timeouts
 * cannot fire when a worker's event loop is blocked or its process is stopped, and then the run
 * waits forever (CI's limit is what ends it, with no word of why). Once a minute this checks the
 * files that are running: past WARN_MIN it prints the file, the test it is in and the process tree
 * under Vitest (state R: spinning, S: waiting, T: stopped, D: in the kernel); past LIMIT_MIN it
 * prints the same, SIGKILLs every process under Vitest and exits with 1.
 * NEXUS_TEST_FILE_WARN_MIN and NEXUS_TEST_FILE_LIMIT_MIN override the two (a limit of 0: never).
 */
import { execFileSync } from 'node:child_process';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

/** A positive number of minutes from `name`, `fallback` when unset; 0 only where `zero` allows it. */
function minutes(name: string, fallback: number, zero: boolean): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zero)) {
    throw new Error(`${name} must be a number of minutes${zero ? ' (0: never)' : ' above 0'}, got '${text}'`);
  }
  return value;
}

/** The slowest file takes about 2 minutes on the 2-core machines CI uses. */
const WARN_MIN = minutes('NEXUS_TEST_FILE_WARN_MIN', 5, false);
const LIMIT_MIN = minutes('NEXUS_TEST_FILE_LIMIT_MIN', 15, true);

interface Running {
  readonly module: TestModule;
  readonly startedAt: number;
  /** The file's last reported step (a worker that blocks stops reporting). */
  doing: string;
  warned: boolean;
}

/** `pid ppid stat elapsed %cpu rss args` of every process below `root`, one per line. */
function processTree(root: number): { lines: string[]; pids: number[] } {
  let table: string;
  try {
    table = execFileSync('ps', ['-eo', 'pid=,ppid=,stat=,etime=,pcpu=,rss=,args='], {
      encoding: 'utf8',
      timeout: 10_000,
    });
  } catch (error) {
    return { lines: [`(ps failed: ${(error as Error).message})`], pids: [] };
  }
  const rows = table
    .split('\n')
    // Not the `ps` that printed the table (gone already; its pid may be reused).
    .filter((l) => l.trim() !== '' && !/^\s*\d+\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+\s+ps -eo /.test(l))
    .map((line) => {
      const [pid, ppid] = line.trim().split(/\s+/, 2).map(Number);
      return { pid: pid ?? 0, ppid: ppid ?? 0, line: line.trim().slice(0, 220) };
    });
  const below = new Set([root]);
  const lines: string[] = [];
  const pids: number[] = [];
  // Parents come before their children in ps' pid order except after pid wrap-around: repeat until stable.
  for (let grew = true; grew;) {
    grew = false;
    for (const row of rows) {
      if (!below.has(row.pid) && below.has(row.ppid)) {
        below.add(row.pid);
        lines.push(row.line);
        pids.push(row.pid);
        grew = true;
      }
    }
  }
  return { lines, pids };
}

/** See the module comment. */
export default class WatchdogReporter implements Reporter {
  readonly #running = new Map<string, Running>();
  #timer: NodeJS.Timeout | undefined;

  onInit(): void {
    this.#timer = setInterval(() => this.#check(), Math.min(60_000, (WARN_MIN * 60_000) / 2));
    this.#timer.unref();
  }

  onTestModuleQueued(module: TestModule): void {
    this.#running.set(module.moduleId, {
      module,
      startedAt: Date.now(),
      doing: 'queued, loading',
      warned: false,
    });
  }

  onTestModuleStart(module: TestModule): void {
    this.#seen(module.moduleId, 'collected, in beforeAll hooks or the first test');
  }

  onTestCaseReady(test: TestCase): void {
    this.#seen(test.module.moduleId, `started "${test.fullName}"`);
  }

  onTestCaseResult(test: TestCase): void {
    this.#seen(test.module.moduleId, `finished "${test.fullName}" (then the next test or afterAll hooks)`);
  }

  onTestModuleEnd(module: TestModule): void {
    this.#running.delete(module.moduleId);
  }

  onTestRunEnd(): void {
    clearInterval(this.#timer);
  }

  #seen(moduleId: string, doing: string): void {
    const entry = this.#running.get(moduleId);
    if (entry !== undefined) entry.doing = doing;
  }

  #check(): void {
    const now = Date.now();
    // A module whose worker died without reporting its end is over too (Vitest moved on).
    for (const [id, r] of this.#running) {
      const state = r.module.state();
      if (state !== 'queued' && state !== 'pending') this.#running.delete(id);
    }
    const firstLook = LIMIT_MIN > 0 ? Math.min(WARN_MIN, LIMIT_MIN) : WARN_MIN;
    const late = [...this.#running].filter(([, r]) => now - r.startedAt >= firstLook * 60_000);
    if (late.length === 0) return;
    const overLimit = LIMIT_MIN > 0 && late.some(([, r]) => now - r.startedAt >= LIMIT_MIN * 60_000);
    if (!overLimit && late.every(([, r]) => r.warned)) return;
    const tree = processTree(process.pid);
    const out = [
      '',
      overLimit
        ? `watchdog: a test file passed ${LIMIT_MIN} min (NEXUS_TEST_FILE_LIMIT_MIN); stopping the run`
        : `watchdog: a test file has run for over ${WARN_MIN} min`,
      ...late.map(
        ([id, r]) => `  ${id}: ${((now - r.startedAt) / 60_000).toFixed(1)} min, last reported: ${r.doing}`,
      ),
      '  processes under Vitest (pid ppid state elapsed %cpu rss args):',
      ...tree.lines.map((l) => `    ${l}`),
      '',
    ];
    process.stderr.write(`${out.join('\n')}\n`);
    for (const [, r] of late) r.warned = true;
    if (!overLimit) return;
    for (const pid of tree.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    process.exit(1);
  }
}
