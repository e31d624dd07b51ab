/**
 * Every deployment file parses: YAML (all documents) and JSON under deployments/ (Helm templates
 * are Go templates, checked in helm.test.ts), the compose file, and the Dockerfile's shape:
 * multi-stage, production dependencies only, non-root, one image for every role, a HEALTHCHECK, and
 * only environment variables the code reads. The container health check script works.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { makeTestCerts } from '../harness/tls-certs.js';
import { READ_VARIABLES, ROOT, filesUnder, parseYamlDocs, read } from './support.js';

const yamlFiles = [
  'docker-compose.nexus.yml',
  ...filesUnder('deployments').filter((f) => /\.ya?ml$/.test(f) && !f.includes('/templates/')),
];
const jsonFiles = filesUnder('deployments').filter((f) => f.endsWith('.json'));

describe('deployment files parse', () => {
  it('finds the files the guide names', () => {
    expect(yamlFiles).toEqual(
      expect.arrayContaining([
        'docker-compose.nexus.yml',
        'deployments/k8s/etcd-cluster.yaml',
        'deployments/k8s/nexus-collector.yaml',
        'deployments/k8s/nexus-api.yaml',
        'deployments/helm/nexus-telemetry/Chart.yaml',
        'deployments/helm/nexus-telemetry/values.yaml',
        'deployments/grafana/provisioning/datasources/postgres.yaml',
        'deployments/grafana/provisioning/dashboards/nexus.yaml',
      ]),
    );
    expect(jsonFiles).toContain('deployments/grafana/dashboards/gpu-telemetry.json');
  });

  it.each(yamlFiles)('%s is valid YAML', (file) => {
    expect(parseYamlDocs(file).length).toBeGreaterThan(0);
  });

  it.each(jsonFiles)('%s is valid JSON', (file) => {
    expect(() => JSON.parse(read(file)) as unknown).not.toThrow();
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const lines = dockerfile.split('\n').map((l) => l.trim());
  const stages = lines.filter((l) => /^FROM\s/i.test(l));

  it('is multi-stage and installs only production dependencies into the runtime image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    // The runtime stage takes node_modules from the production-only stage, and compiles nothing.
    const prodStage = /FROM \S+ AS (\S+)\n(?:(?!FROM ).*\n)*?RUN npm ci --omit=dev/.exec(dockerfile)?.[1];
    expect(prodStage).toBeDefined();
    expect(runtime).toContain(`COPY --from=${prodStage} /app/node_modules`);
    expect(runtime).not.toMatch(/npm (ci|install)(?! --omit=dev)/);
    expect(runtime).not.toMatch(/COPY (--\S+ )*src /);
  });

  it('runs as a non-root user, one image for every role, with a HEALTHCHECK', () => {
    const user = lines.filter((l) => /^USER\s/.test(l)).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER\s+(root|0)(:|$)/);
    expect(dockerfile).toMatch(
      /ENTRYPOINT \["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "--heap-growing-percent=20", "\/app\/dist\/cli\/main\.js"\]/,
    );
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toContain('scripts/healthcheck.mjs');
  });

  it('sets only variables the code reads, and exposes the default API port', () => {
    const envNames = lines.filter((l) => /^ENV\s/.test(l)).map((l) => l.split(/\s+/)[1]!.split('=')[0]!);
    for (const name of envNames) expect(READ_VARIABLES, `Dockerfile ENV ${name}`).toContain(name);
    expect(lines).toContain(`EXPOSE ${loadConfig({}).PORT}`);
  });

  it('keeps node_modules, dist, data and the run directory out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', 'data', '.run', '.git']) expect(ignored).toContain(entry);
    expect(ignored).toContain('!scripts/healthcheck.mjs');
  });
});

describe('container health check (scripts/healthcheck.mjs)', () => {
  async function server(status: number): Promise<{ port: number; server: Server }> {
    const srv = createServer((req, res) => {
      res.statusCode = req.url === '/health' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    return { port: (srv.address() as { port: number }).port, server: srv };
  }

  function healthcheck(port: number, env: Record<string, string> = {}): Promise<number | null> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [`${ROOT}scripts/healthcheck.mjs`], {
        env: { ...process.env, TLS_CERT_FILE: '', PORT: String(port), ...env },
        stdio: 'ignore',
      });
      child.on('exit', (code) => resolve(code));
    });
  }

  it('passes when GET /health answers 200 and fails otherwise', async () => {
    const ok = await server(200);
    const failing = await server(503);
    try {
      expect(await healthcheck(ok.port)).toBe(0);
      expect(await healthcheck(failing.port)).toBe(1);
      ok.server.close();
      expect(await healthcheck(ok.port)).toBe(1);
    } finally {
      ok.server.close();
      failing.server.close();
    }
  });

  it('asks over HTTPS when the API serves it (TLS_CERT_FILE), and not over plain HTTP then', async () => {
    const certs = await makeTestCerts();
    const srv = createHttpsServer(
      { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
      (req, res) => {
        res.statusCode = req.url === '/health' ? 200 : 404;
        res.end('{}');
      },
    );
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as { port: number }).port;
    const plain = await server(200);
    try {
      expect(await healthcheck(port, { TLS_CERT_FILE: certs.certFile })).toBe(0);
      // Without TLS_CERT_FILE it speaks HTTP, which an HTTPS port does not answer with 200.
      expect(await healthcheck(port)).toBe(1);
      // And with it, a plain HTTP server does not pass.
      expect(await healthcheck(plain.port, { TLS_CERT_FILE: certs.certFile })).toBe(1);
    } finally {
      srv.close();
      plain.server.close();
      await certs.remove();
    }
  });
});
