/**
 * docker-compose.nexus.yml: `docker-compose config` (Debian package docker-compose, offline) accepts
 * it; it has the guide's services on the guide's ports, health checks behind every service_healthy
 * condition, Redis with the durability the queue needs, and the application services set only
 * variables the code reads.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { READ_VARIABLES, ROOT } from './support.js';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  container_name?: string;
  environment?: Record<string, string | null>;
  ports?: (string | { published: number | string; target: number | string })[];
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }> | string[];
  deploy?: { replicas?: number };
}

let services: Record<string, Service>;

/** Run `docker-compose config`: validates the file offline and resolves anchors and merges. */
function composeConfig(): string {
  const which = spawnSync('sh', ['-c', 'command -v docker-compose'], { encoding: 'utf8' });
  if (which.status !== 0) {
    throw new Error(
      'docker-compose is not installed: apt-get install docker-compose (the Debian package docker-compose validates the file offline)',
    );
  }
  return execFileSync('docker-compose', ['-f', 'docker-compose.nexus.yml', 'config'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Host port -> container port of a service. */
function portMap(service: Service): Map<number, number> {
  const map = new Map<number, number>();
  for (const p of service.ports ?? []) {
    if (typeof p === 'string') {
      const [host, container] = p.split(':').slice(-2).map(Number);
      map.set(host!, container!);
    } else map.set(Number(p.published), Number(p.target));
  }
  return map;
}

const isApp = (s: Service): boolean =>
  s.build !== undefined || /(^|\/)nexus-telemetry(:|$)/.test(s.image ?? '');
const commandOf = (s: Service): string[] =>
  Array.isArray(s.command) ? s.command : (s.command ?? '').split(' ');

beforeAll(() => {
  services = (parse(composeConfig()) as { services: Record<string, Service> }).services;
});

describe('docker-compose.nexus.yml', () => {
  it('passes `docker-compose config`', () => {
    expect(Object.keys(services).length).toBeGreaterThan(0);
  });

  it("has the guide's services", () => {
    const names = Object.keys(services);
    expect(names).toEqual(
      expect.arrayContaining([
        'etcd-1',
        'etcd-2',
        'etcd-3',
        'redis',
        'postgres',
        'nexus-collector',
        'nexus-api',
        'nexus-streamer',
        'traditional-streamer',
        'traditional-api',
        'adminer',
        'etcd-browser',
      ]),
    );
    // `docker exec telemetry-etcd etcdctl endpoint health` in the guide's troubleshooting.
    expect(services['etcd-1']!.container_name).toBe('telemetry-etcd');
    expect(services.postgres!.image).toMatch(/^timescale\/timescaledb:/);
    expect(services['nexus-collector']!.deploy?.replicas).toBe(2);
  });

  it('forms one three-member etcd cluster', () => {
    for (const name of ['etcd-1', 'etcd-2', 'etcd-3']) {
      const flags = commandOf(services[name]!);
      expect(flags).toContain(`--name=${name}`);
      expect(flags).toContain(
        '--initial-cluster=etcd-1=http://etcd-1:2380,etcd-2=http://etcd-2:2380,etcd-3=http://etcd-3:2380',
      );
      expect(flags.some((f) => f.startsWith('--quota-backend-bytes='))).toBe(true);
      expect(flags).toContain('--auto-compaction-mode=revision');
    }
    for (const name of ['nexus-collector', 'nexus-api', 'nexus-streamer']) {
      expect(services[name]!.environment?.ETCD_ENDPOINTS).toBe('etcd-1:2379,etcd-2:2379,etcd-3:2379');
    }
  });

  it("publishes the guide's ports", () => {
    const defaultPort = loadConfig({}).PORT;
    expect(portMap(services['nexus-api']!).get(8080)).toBe(Number(services['nexus-api']!.environment?.PORT));
    expect(defaultPort).toBe(8080);
    expect(portMap(services.postgres!).get(5433)).toBe(5432);
    expect(portMap(services.redis!).get(6379)).toBe(6379);
    expect(portMap(services['etcd-1']!).get(2379)).toBe(2379);
    expect(portMap(services.adminer!).get(8082)).toBe(8080);
    const traditional = services['traditional-api']!;
    expect(commandOf(traditional)).toEqual(['api', '--traditional']);
    expect([...portMap(traditional).values()]).toEqual([Number(traditional.environment?.PORT)]);
  });

  it('runs Redis with appendonly yes, appendfsync always and no eviction (docs/redis.md)', () => {
    const command = commandOf(services.redis!).join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync always');
    expect(command).toContain('--maxmemory-policy noeviction');
  });

  it('gives every role the one image, picked by the CLI subcommand', () => {
    const roles = Object.entries(services)
      .filter(([, s]) => isApp(s))
      .map(([name, s]) => [name, commandOf(s)[0]]);
    expect(Object.fromEntries(roles)).toEqual({
      'nexus-collector': 'collector',
      'nexus-api': 'api',
      'nexus-streamer': 'streamer',
      'traditional-streamer': 'streamer',
      'traditional-api': 'api',
    });
    const images = new Set(
      Object.values(services)
        .filter(isApp)
        .map((s) => s.image),
    );
    expect(images.size).toBe(1);
  });

  it('backs every service_healthy condition with a health check', () => {
    for (const [name, service] of Object.entries(services)) {
      const deps = service.depends_on;
      if (!deps || Array.isArray(deps)) continue;
      for (const [target, { condition }] of Object.entries(deps)) {
        expect(services[target], `${name} depends on ${target}`).toBeDefined();
        if (condition === 'service_healthy') {
          expect(services[target]!.healthcheck, `${target} (needed healthy by ${name})`).toBeDefined();
        }
      }
    }
    const collectorDeps = services['nexus-collector']!.depends_on as Record<string, { condition: string }>;
    for (const target of ['etcd-1', 'etcd-2', 'etcd-3', 'redis', 'postgres']) {
      expect(collectorDeps[target]?.condition).toBe('service_healthy');
    }
  });

  it('sets only variables the code reads in the application services', () => {
    for (const [name, service] of Object.entries(services).filter(([, s]) => isApp(s))) {
      for (const variable of Object.keys(service.environment ?? {})) {
        expect(READ_VARIABLES, `${name}: ${variable}`).toContain(variable);
      }
      // And every value is one the configuration accepts.
      const env = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [k, v ?? undefined]),
      );
      expect(() => loadConfig(env), name).not.toThrow();
    }
  });
});
