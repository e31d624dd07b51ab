/**
 * Plain Kubernetes manifests (deployments/k8s): every object validates against the Kubernetes
 * schemas (kubernetes-models, offline), lives in namespace telemetry-system, selects its own pods;
 * the application containers set only variables the code reads, with values the configuration
 * accepts; ports and probe paths are the code's (8080, /health, /ready), and the probe paths answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import {
  READ_VARIABLES,
  containersOf,
  envNames,
  isNexusImage,
  parseYamlDocs,
  validateK8s,
  type K8sObject,
} from './support.js';

const FILES = [
  'deployments/k8s/etcd-cluster.yaml',
  'deployments/k8s/nexus-collector.yaml',
  'deployments/k8s/nexus-api.yaml',
];
const objects = FILES.flatMap((file) => parseYamlDocs(file).map((o) => ({ file, object: o as K8sObject })));
const all = objects.map((o) => o.object);
const find = (kind: string, name: string): K8sObject => {
  const found = all.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

describe('Kubernetes manifests (deployments/k8s)', () => {
  it.each(objects.map((o) => [`${o.file}: ${o.object.kind} ${o.object.metadata.name}`, o.object]))(
    '%s validates against the Kubernetes schema',
    (_name, object) => {
      expect(() => validateK8s(object as K8sObject)).not.toThrow();
    },
  );

  it('puts everything in namespace telemetry-system', () => {
    for (const o of all) {
      if (o.kind === 'Namespace') expect(o.metadata.name).toBe('telemetry-system');
      else expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('telemetry-system');
    }
  });

  it('selects each workload’s own pods (Deployments, StatefulSet, Services, PDBs, HPA)', () => {
    const workloads = all.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind));
    for (const w of workloads) {
      const spec = w.spec as {
        selector: { matchLabels: Record<string, string> };
        template: { metadata: { labels: Record<string, string> } };
      };
      expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
    }
    const podLabels = workloads.map(
      (w) =>
        (w.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels,
    );
    for (const o of all.filter((x) => ['Service', 'PodDisruptionBudget'].includes(x.kind))) {
      const spec = o.spec as { selector: Record<string, string> | { matchLabels: Record<string, string> } };
      const selector = 'matchLabels' in spec.selector ? spec.selector.matchLabels : spec.selector;
      expect(
        podLabels.some((labels) => Object.entries(selector).every(([k, v]) => labels[k] === v)),
        `${o.kind} ${o.metadata.name}`,
      ).toBe(true);
    }
    const hpa = find('HorizontalPodAutoscaler', 'nexus-api');
    const target = (hpa.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
    expect(find(target.kind, target.name)).toBeDefined();
  });

  it('sets only variables the code reads in the application containers, with accepted values', () => {
    let checked = 0;
    for (const w of all) {
      for (const c of containersOf(w).filter((x) => isNexusImage(x.image))) {
        for (const name of envNames(c, all))
          expect(READ_VARIABLES, `${w.metadata.name}: ${name}`).toContain(name);
        const config = (c.envFrom ?? []).flatMap((s) =>
          s.configMapRef ? Object.entries(find('ConfigMap', s.configMapRef.name).data ?? {}) : [],
        );
        expect(() => loadConfig(Object.fromEntries(config))).not.toThrow();
        checked += 1;
      }
    }
    expect(checked).toBe(2);
  });

  it('runs the collector and the API roles of the one image', () => {
    const collector = containersOf(find('Deployment', 'nexus-collector'))[0]!;
    const api = containersOf(find('Deployment', 'nexus-api'))[0]!;
    expect(collector.args).toEqual(['collector']);
    expect(api.args).toEqual(['api']);
    expect(collector.image).toBe(api.image);
    expect((find('Deployment', 'nexus-collector').spec as { replicas: number }).replicas).toBe(2);
    expect((find('StatefulSet', 'etcd').spec as { replicas: number }).replicas).toBe(3);
  });

  it('uses the port and probe paths of the code (8080, /health, /ready)', () => {
    const config = loadConfig({});
    const api = containersOf(find('Deployment', 'nexus-api'))[0]!;
    const http = api.ports!.find((p) => p.name === 'http')!;
    expect(http.containerPort).toBe(config.PORT);
    expect(http.containerPort).toBe(Number(find('ConfigMap', 'nexus-api-config').data!.PORT));
    expect(api.livenessProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(api.startupProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(api.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 'http' });
    const service = find('Service', 'nexus-api').spec as { ports: { port: number; targetPort: string }[] };
    expect(service.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
  });

  it('keeps etcd quorum through disruptions and bounds its database', () => {
    expect((find('PodDisruptionBudget', 'etcd').spec as { minAvailable: number }).minAvailable).toBe(2);
    const args = containersOf(find('StatefulSet', 'etcd'))[0]!.args!;
    expect(args).toEqual(
      expect.arrayContaining([
        '--auto-compaction-mode=revision',
        '--auto-compaction-retention=10000',
        '--quota-backend-bytes=4294967296',
      ]),
    );
    const collectorEtcd = find('ConfigMap', 'nexus-collector-config').data!.ETCD_ENDPOINTS!;
    expect(collectorEtcd.split(',')).toEqual(['etcd-0.etcd:2379', 'etcd-1.etcd:2379', 'etcd-2.etcd:2379']);
  });
});

describe('the probe paths answer', () => {
  let runtime: EmbeddedRuntime;
  beforeAll(async () => {
    runtime = await startEmbedded({
      config: loadConfig({}, { MEMORY: true, LOG_LEVEL: 'silent' }),
      logger: createLogger('silent'),
      listen: false,
    });
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it('GET /health and GET /ready answer 200', async () => {
    const paths = new Set<string>();
    for (const w of all) {
      for (const c of containersOf(w).filter((x) => isNexusImage(x.image))) {
        for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
          if (probe?.httpGet) paths.add(probe.httpGet.path);
        }
      }
    }
    expect([...paths].sort()).toEqual(['/health', '/ready']);
    for (const path of paths) expect((await runtime.app.inject(path)).statusCode, path).toBe(200);
  });
});
