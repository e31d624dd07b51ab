/**
 * Builds dist/ once per bench process, so the measured pipelines run the compiled CLI as a
 * deployment does (`node dist/cli/main.js`), not src/ through tsx, whose start-up compile costs each
 * process about 2 CPU-seconds inside the timed window.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
let built: Promise<void> | undefined;

/** Compile src/ to dist/ (`tsc -p tsconfig.build.json`) once; later calls share the first build. */
export function ensureBuilt(log: (line: string) => void): Promise<void> {
  built ??= (async () => {
    log('bench: building dist/ (the CLI processes run compiled code, as deployed) ...');
    const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
    await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT });
  })();
  return built;
}
