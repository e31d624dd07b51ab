/**
 * The API over HTTPS (TLS_CERT_FILE / TLS_KEY_FILE): served with the given certificate, and a new
 * certificate written over the files is used for new connections without a restart. Certificates
 * are made here with openssl.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

const work = mkdtempSync(join(tmpdir(), 'nexus-tls-'));
let runtime: EmbeddedRuntime;

function makeCert(name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(work, `${name}.crt`);
  const key = join(work, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

function get(port: number, ca?: Buffer): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/health', ca, rejectUnauthorized: ca !== undefined, agent: false },
      (response) => {
        const fingerprint = (response.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!
          .fingerprint256;
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, fingerprint }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const first = makeCert('first');
const second = makeCert('second');
const certFile = join(work, 'tls.crt');
const keyFile = join(work, 'tls.key');

beforeAll(async () => {
  copyFileSync(first.cert, certFile);
  copyFileSync(first.key, keyFile);
  const config = loadConfig(
    {},
    { MEMORY: true, HOST: '127.0.0.1', PORT: 0, TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent') });
}, 60_000);

afterAll(async () => {
  await runtime?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('HTTPS', () => {
  it('serves the configured certificate and reloads it when the files change', async () => {
    expect(runtime.address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(runtime.address!).port);
    const before = await get(port, readFileSync(first.cert));
    expect(before).toEqual({ status: 200, fingerprint: first.fingerprint });

    copyFileSync(second.key, keyFile);
    copyFileSync(second.cert, certFile);
    const deadline = Date.now() + 30_000;
    let seen = before.fingerprint;
    while (seen !== second.fingerprint && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      seen = (await get(port)).fingerprint;
    }
    expect(seen).toBe(second.fingerprint);
    expect(await get(port, readFileSync(second.cert))).toEqual({
      status: 200,
      fingerprint: second.fingerprint,
    });
  }, 60_000);

  it('refuses a certificate without its key at start-up', async () => {
    const config = loadConfig(
      {},
      { MEMORY: true, HOST: '127.0.0.1', PORT: 0, TLS_CERT_FILE: first.cert, TLS_KEY_FILE: second.key },
    );
    await expect(startEmbedded({ config, logger: createLogger('silent') })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    expect(() => loadConfig({}, { TLS_CERT_FILE: first.cert })).toThrow(/set both or neither/);
  });
});
