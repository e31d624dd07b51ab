/**
 * The Makefile's Docker targets on a machine without a Docker engine: `make run-nexus-docker` (and the
 * other Docker-only targets) stop with one clear line naming the local alternative and a non-zero
 * exit, and never reach the compose client (whose Python traceback is what users saw before). A
 * `docker` that fails `docker info` and a `docker-compose` that would leave a marker stand in first
 * on PATH.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './support.js';

let bin: string;
let marker: string;

beforeAll(() => {
  bin = mkdtempSync(join(tmpdir(), 'nexus-nodocker-'));
  marker = join(bin, 'compose-was-run');
  const script = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script(
    'docker',
    `if [ "$1" = info ]; then echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1; fi\n` +
      `touch '${marker}'; echo "Traceback (most recent call last):" >&2; exit 1`,
  );
  script('docker-compose', `touch '${marker}'; echo "Traceback (most recent call last):" >&2; exit 1`);
});

afterAll(() => rmSync(bin, { recursive: true, force: true }));

function make(target: string): { status: number | null; lines: string[] } {
  // The Makefile's own MODE and COMPOSE, whatever the caller's environment says.
  const { MODE: _mode, COMPOSE: _compose, ...inherited } = process.env;
  const result = spawnSync('make', ['--no-print-directory', target], {
    cwd: ROOT,
    env: { ...inherited, PATH: `${bin}:${process.env.PATH ?? ''}` },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const lines = `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return { status: result.status, lines };
}

describe('Docker targets without a Docker engine', () => {
  it.each(['run-nexus-docker', 'logs-nexus-docker', 'stop-nexus-docker', 'build-nexus-image'])(
    'make %s prints one clear line with the local alternative and fails',
    (target) => {
      const { status, lines } = make(target);
      expect(status).not.toBe(0);
      expect(lines, lines.join('\n')).toHaveLength(1);
      const [line] = lines;
      expect(line).toContain(`${target} needs a Docker engine`);
      expect(line).toContain('docker info');
      expect(line).toContain('make quick-start-nexus MODE=local');
      expect(line).not.toMatch(/Traceback/);
      expect(existsSync(marker), 'the compose client or docker was run').toBe(false);
    },
  );
});
