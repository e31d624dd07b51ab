/**
 * Authentication as an operator meets it on the command line: `token create|list|revoke` on the
 * embedded store, `start` on 127.0.0.1 by default serving only token holders, the data-directory
 * lock pointing at the admin endpoints, and the refusal of a non-loopback bind without auth unless
 * `--insecure-no-auth` (which then warns). The server's output is scanned for the token.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, spawnCli } from '../support/cli-process.js';
import { freePort } from '../harness/free-port.js';

const work = mkdtempSync(join(tmpdir(), 'nexus-auth-cli-'));
const dataDir = join(work, 'data');
// HOST empty: as if unset, whatever the test runner's environment holds.
const env = { LOG_LEVEL: 'debug', HOST: '', AUTH: 'none', INSECURE_NO_AUTH: '' };

afterAll(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

async function run(args: string[], extra: Record<string, string> = {}) {
  const cli = spawnCli(args, { ...env, ...extra });
  const code = await cli.exited;
  return { code, output: cli.output() };
}

describe('token commands and a token-protected start', () => {
  it('creates a token once, serves it on 127.0.0.1, refuses the CLI while start runs', async () => {
    const created = await run([
      'token',
      'create',
      '--data-dir',
      dataDir,
      '--name',
      'grafana',
      '--scope',
      'read',
    ]);
    expect(created.code, created.output).toBe(0);
    const token = /nxt_[A-Za-z0-9_-]{43}/.exec(created.output)?.[0];
    expect(token).toBeDefined();
    expect(created.output).toContain('"grafana" (read)');

    const listed = await run(['token', 'list', '--data-dir', dataDir]);
    expect(listed.code, listed.output).toBe(0);
    expect(listed.output).toMatch(/\tgrafana\tread\t.*\tvalid/);
    expect(listed.output).not.toContain(token!);

    const port = await freePort();
    const server = spawnCli(['start', '--no-ingest', '--data-dir', dataDir, '--port', String(port)], {
      ...env,
      AUTH: 'token',
    });
    await server.waitFor(/API listening on/, 90_000);
    expect(server.output()).toContain(`API listening on http://127.0.0.1:${port}`);
    // The default embedded store on a new directory is SQLite, and the first line says so.
    expect(server.output()).toContain(`samples in SQLite under ${dataDir}`);
    expect(existsSync(join(dataDir, 'sqlite', 'samples.db'))).toBe(true);
    const url = `http://127.0.0.1:${port}/api/v1/clusters`;
    expect((await fetch(url)).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);

    const locked = await run(['token', 'create', '--data-dir', dataDir, '--name', 'other']);
    expect(locked.code).toBe(1);
    expect(locked.output).toContain('DATA_DIR_LOCKED');
    expect(locked.output).toContain('/api/v1/tokens');

    server.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output()).not.toContain(token!);

    const revoked = await run(['token', 'revoke', '--data-dir', dataDir, 'grafana']);
    expect(revoked.code, revoked.output).toBe(0);
    expect(revoked.output).toMatch(/revoked \d+\tgrafana\tread/);
    const all = await run(['token', 'list', '--all', '--data-dir', dataDir]);
    expect(all.output).toMatch(/\tgrafana\tread\t.*\trevoked /);
    const again = await run(['token', 'revoke', '--data-dir', dataDir, 'grafana']);
    expect(again.code).toBe(1);
    expect(again.output).toContain('NOT_FOUND');
  }, 240_000);
});

describe('bind safety', () => {
  // Tests bind 127.0.0.1 only: the refusal binds nothing, and the warning that --insecure-no-auth
  // gives a non-loopback bind is checked without opening a port (test/auth/rules.test.ts).
  it('refuses a non-loopback bind without auth, before opening anything', async () => {
    const port = await freePort();
    const args = ['start', '--no-ingest', '--memory', '--host', '0.0.0.0', '--port', String(port)];
    const refused = await run(args);
    expect(refused.code).toBe(2);
    expect(refused.output).toContain('CONFIG_INVALID');
    expect(refused.output).toContain('--insecure-no-auth');
    expect(refused.output).not.toMatch(/API listening on/);
  }, 180_000);

  it('refuses AUTH=token with --memory, where no first admin token could ever be created', async () => {
    const port = await freePort();
    const refused = await run(['start', '--no-ingest', '--memory', '--port', String(port)], {
      AUTH: 'token',
    });
    expect(refused.code).toBe(2);
    expect(refused.output).toContain('CONFIG_INVALID');
    expect(refused.output).toContain('token create --name <name> --scope admin');
    expect(refused.output).not.toMatch(/API listening on/);
    // With JWTs as well, a token-less start is usable: it starts.
    const both = spawnCli(['start', '--no-ingest', '--memory', '--port', String(port)], {
      ...env,
      AUTH: 'token,jwt',
      JWT_JWKS_URL: 'http://127.0.0.1:9/jwks.json', // fetched only when a JWT arrives
    });
    await both.waitFor(/API listening on/, 90_000);
    both.kill('SIGTERM');
    expect(await both.exited).toBe(0);
  }, 180_000);

  it('with EMBEDDED_STORE=pglite: tokens are created, listed, served and revoked in the PGlite database', async () => {
    const pgliteDir = join(work, 'pglite-data');
    const extra = { EMBEDDED_STORE: 'pglite' };
    const created = await run(
      ['token', 'create', '--data-dir', pgliteDir, '--name', 'ci', '--scope', 'read'],
      extra,
    );
    expect(created.code, created.output).toBe(0);
    const token = /nxt_[A-Za-z0-9_-]{43}/.exec(created.output)?.[0];
    expect(token).toBeDefined();
    const listed = await run(['token', 'list', '--data-dir', pgliteDir], extra);
    expect(listed.output).toMatch(/\tci\tread\t.*\tvalid/);

    const port = await freePort();
    const server = spawnCli(['start', '--no-ingest', '--data-dir', pgliteDir, '--port', String(port)], {
      ...env,
      ...extra,
      AUTH: 'token',
    });
    await server.waitFor(/API listening on/, 90_000);
    const url = `http://127.0.0.1:${port}/api/v1/clusters`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    server.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const revoked = await run(['token', 'revoke', '--data-dir', pgliteDir, 'ci'], extra);
    expect(revoked.code, revoked.output).toBe(0);
    expect((await run(['token', 'list', '--data-dir', pgliteDir], extra)).output).not.toMatch(/\tci\t/);
    // The tokens went to PGlite's directory; no SQLite file was made beside it.
    expect(existsSync(join(pgliteDir, 'pglite'))).toBe(true);
    expect(existsSync(join(pgliteDir, 'sqlite'))).toBe(false);
  }, 180_000);

  it('accepts --insecure-no-auth on a loopback bind, where it changes nothing', async () => {
    const port = await freePort();
    const insecure = spawnCli(
      [
        'start',
        '--no-ingest',
        '--memory',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--insecure-no-auth',
      ],
      env,
    );
    await insecure.waitFor(/API listening on/, 90_000);
    expect(insecure.output()).not.toContain('WITHOUT authentication');
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/clusters`)).status).toBe(200);
    insecure.kill('SIGTERM');
    expect(await insecure.exited).toBe(0);
  }, 180_000);
});
