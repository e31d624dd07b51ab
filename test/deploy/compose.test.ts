/**
 * docker-compose.nexus.yml: `docker-compose config` (Debian package docker-compose, offline) accepts
 * it; it has the guide's services on the guide's ports, health checks behind every service_healthy
 * condition, Redis with the durability the queue needs, and the application services set only
 * variables the code reads. The optional NATS JetStream and VictoriaMetrics services sit behind the
 * `nats` and `victoria` profiles, so the default `up` starts the same services as before.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { resolveTopology } from '../../src/runtime/topology.js';
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
  profiles?: string[];
  restart?: string;
  volumes?: (string | { source?: string; target: string })[];
}

let parsed: { services: Record<string, Service> };
let services: Record<string, Service>;

/**
 * Run `docker-compose config`: validates the file offline and resolves anchors, merges and `${VAR}`
 * interpolation (with `env` added to this process's environment).
 */
function composeConfig(env: Record<string, string> = {}): string {
  const which = spawnSync('sh', ['-c', 'command -v docker-compose'], { encoding: 'utf8' });
  if (which.status !== 0) {
    throw new Error(
      'docker-compose is not installed: apt-get install docker-compose (the Debian package docker-compose validates the file offline)',
    );
  }
  return execFileSync('docker-compose', ['-f', 'docker-compose.nexus.yml', 'config'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
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
  parsed = parse(composeConfig()) as { services: Record<string, Service> };
  services = parsed.services;
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
      'nats-collector': 'collector',
      'nats-streamer': 'streamer',
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
      expect(() => loadConfig(envOf(service)), name).not.toThrow();
    }
  });

  describe('optional NATS JetStream and VictoriaMetrics (profiles nats, victoria)', () => {
    const PROFILED: Record<string, string> = {
      nats: 'nats',
      'nats-collector': 'nats',
      'nats-streamer': 'nats',
      victoria: 'victoria',
    };

    it('puts them behind their profiles and leaves the default services unchanged', () => {
      const byProfile = Object.fromEntries(
        Object.entries(services)
          .filter(([, s]) => s.profiles !== undefined)
          .map(([name, s]) => [name, s.profiles!.join(',')]),
      );
      expect(byProfile).toEqual(PROFILED);
      const defaults = Object.keys(services).filter((name) => services[name]!.profiles === undefined);
      expect(defaults.sort()).toEqual(
        [
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
          'grafana',
        ].sort(),
      );
      // No default service depends on a profiled one (that would start it, or fail, without the profile).
      for (const name of defaults) {
        const deps = services[name]!.depends_on ?? {};
        const targets = Array.isArray(deps) ? deps : Object.keys(deps);
        for (const target of targets) expect(PROFILED[target], `${name} -> ${target}`).toBeUndefined();
      }
      // Without REMOTE_WRITE_URL in the shell the application services keep samples in PostgreSQL.
      for (const [name, service] of Object.entries(services).filter(([, s]) => isApp(s))) {
        const env = envOf(service);
        expect(env.REMOTE_WRITE_URL ?? '', name).toBe('');
        if (commandOf(service)[0] !== 'streamer') {
          expect(resolveTopology(loadConfig(env), commandOf(service)[0] as 'api').samples, name).toBe(
            'postgres',
          );
        }
      }
    });

    it('pins the image tags of the new services', () => {
      expect(services.nats!.image).toMatch(/^nats:2\.10\.\d+-alpine$/);
      expect(services.victoria!.image).toMatch(/^victoriametrics\/victoria-metrics:v1\.\d+\.\d+$/);
    });

    it('runs one JetStream server on a volume, healthy only with JetStream up', () => {
      const nats = services.nats!;
      const flags = commandOf(nats);
      expect(flags).toContain('--jetstream');
      expect(flags).toContain('--store_dir=/data');
      expect(flags).toContain('--http_port=8222');
      expect(targets(nats)).toContain('/data');
      expect(portMap(nats).get(4222)).toBe(4222);
      expect(String(nats.healthcheck?.test)).toContain('http://127.0.0.1:8222/healthz?js-enabled-only=true');
    });

    it('runs VictoriaMetrics single node with a retention, the recommended flags and a data volume', () => {
      const victoria = services.victoria!;
      const flags = commandOf(victoria);
      // Long enough for the bundled sample (July 2025): older samples would be dead letters.
      expect(flags).toContain('-retentionPeriod=5y');
      expect(flags).toContain('-storageDataPath=/victoria-metrics-data');
      expect(flags).toContain('-httpListenAddr=:8428');
      // The flags docs/storage-victoria.md recommends and test/harness/victoria-metrics.ts runs.
      expect(flags).toContain('-dedup.minScrapeInterval=1ms');
      expect(flags).toContain('-search.latencyOffset=0s');
      expect(targets(victoria)).toContain('/victoria-metrics-data');
      expect(portMap(victoria).get(8428)).toBe(8428);
      expect(String(victoria.healthcheck?.test)).toContain('http://127.0.0.1:8428/health');
    });

    it('switches the nats collectors and streamer to --queue nats on the nats service', () => {
      const collector = services['nats-collector']!;
      const streamer = services['nats-streamer']!;
      expect(commandOf(collector)).toEqual(['collector', '--queue', 'nats']);
      expect(commandOf(streamer)).toEqual(['streamer', '--queue', 'nats']);
      expect(collector.deploy?.replicas).toBe(2);
      for (const [role, service] of [
        ['collector', collector],
        ['streamer', streamer],
      ] as const) {
        const env = envOf(service);
        expect(env.NATS_URL).toBe('nats://nats:4222');
        expect(env.NATS_STREAM_REPLICAS).toBe('1');
        const deps = service.depends_on as Record<string, { condition: string }>;
        expect(deps.nats?.condition).toBe('service_healthy');
        const topology = resolveTopology(loadConfig(env), role, { queue: 'nats' });
        if (role === 'collector') expect(topology.consume).toEqual(['nats']);
        else expect(topology.produce).toBe('nats');
        expect(topology.mode).toBe('nexus');
      }
      expect(services['nats-streamer']!.restart).toBe('no');
    });

    it('gives REMOTE_WRITE_URL from the shell to every collector and API (sample store victoria)', () => {
      const url = 'http://victoria:8428/api/v1/write';
      const withVictoria = (parse(composeConfig({ REMOTE_WRITE_URL: url })) as typeof parsed).services;
      const roles = Object.entries(withVictoria).filter(
        ([, s]) => isApp(s) && commandOf(s)[0] !== 'streamer',
      );
      expect(roles.map(([name]) => name).sort()).toEqual(
        ['nats-collector', 'nexus-api', 'nexus-collector', 'traditional-api'].sort(),
      );
      for (const [name, service] of roles) {
        const env = envOf(service);
        expect(env.REMOTE_WRITE_URL, name).toBe(url);
        const role = commandOf(service)[0] as 'collector' | 'api';
        const flags = name === 'nats-collector' ? { queue: 'nats' } : {};
        expect(resolveTopology(loadConfig(env), role, flags).samples, name).toBe('victoria');
      }
    });
  });
});

/** A service's environment as loadConfig takes it. */
function envOf(service: Service): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, v ?? undefined]));
}

/** Container paths of a service's volumes. */
function targets(service: Service): string[] {
  return (service.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1]! : v.target));
}
