/**
 * Test harness: a throw-away certificate authority and a server certificate for 127.0.0.1 and
 * localhost (subjectAltName, as host name checks need), made with the `openssl` command in a temp
 * directory, plus one for another name and an unrelated CA, for "wrong name" and "wrong CA" tests.
 */
import { execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** PEM files of {@link makeTestCerts}. */
export interface TestCerts {
  readonly dir: string;
  /** CA certificate that signed the server certificate. */
  readonly caFile: string;
  /** Server certificate (SAN: IP 127.0.0.1, DNS localhost) and its key. */
  readonly certFile: string;
  readonly keyFile: string;
  /** A self-signed CA that signed nothing here. */
  readonly otherCaFile: string;
  /** Signed by the CA, but for another name only (SAN: DNS elsewhere.invalid), and its key. */
  readonly wrongNameCertFile: string;
  readonly wrongNameKeyFile: string;
  /** Remove the directory. */
  remove(): Promise<void>;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { timeout: 60_000 });
  } catch (error) {
    const e = error as { stderr?: string; message: string; code?: string };
    if (e.code === 'ENOENT')
      throw new Error('openssl not found: install the Debian package openssl', { cause: error });
    throw new Error(`openssl ${args[0]} failed: ${e.message}\n${e.stderr ?? ''}`, { cause: error });
  }
}

async function selfSignedCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', key, '-out', cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  return { cert, key };
}

/** A key and a certificate for `altNames` (openssl subjectAltName syntax) signed by `ca`. */
async function serverCert(
  dir: string,
  name: string,
  altNames: string,
  ca: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(
    ext,
    `subjectAltName=${altNames}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  await openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', csr]); // prettier-ignore
  await openssl([
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', ext, '-out', cert,
  ]); // prettier-ignore
  // Readable by a server running as another user (redis, postgres) after the harness copies it.
  chmodSync(key, 0o644);
  return { cert, key };
}

/** Make a CA, server certificates it signs (right and wrong names), and another CA. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-certs-'));
  const ca = await selfSignedCa(dir, 'test-ca');
  const other = await selfSignedCa(dir, 'other-ca');
  const server = await serverCert(dir, 'server', 'IP:127.0.0.1,DNS:localhost', ca);
  const wrongName = await serverCert(dir, 'wrong-name', 'DNS:elsewhere.invalid', ca);
  return {
    dir,
    caFile: ca.cert,
    certFile: server.cert,
    keyFile: server.key,
    otherCaFile: other.cert,
    wrongNameCertFile: wrongName.cert,
    wrongNameKeyFile: wrongName.key,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
