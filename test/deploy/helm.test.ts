/**
 * The Helm chart (deployments/helm/nexus-telemetry). Without the helm binary (not installed here)
 * the templates cannot be rendered, so this checks what can be checked statically: Chart.yaml and
 * values.yaml parse, every `.Values.x` a template uses is defined, every `include` names a defined
 * template, template actions are balanced, the application containers set only variables the code
 * reads, probes and ports are the code's, and the chart agrees with the plain manifests in
 * deployments/k8s (etcd flags, roles, defaults, env var names). Rendering with `helm lint` /
 * `helm template` is left to machines that have helm (docs/operations.md); it is not packaged here.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import {
  READ_VARIABLES,
  containersOf,
  envNames,
  filesUnder,
  isNexusImage,
  parseYamlDocs,
  read,
  type K8sObject,
} from './support.js';

const CHART = 'deployments/helm/nexus-telemetry';
const chart = parse(read(`${CHART}/Chart.yaml`)) as {
  apiVersion: string;
  name: string;
  version: string;
  appVersion: string;
};
const values = parse(read(`${CHART}/values.yaml`)) as Record<string, unknown>;
const templateFiles = filesUnder(`${CHART}/templates`);
const templates = Object.fromEntries(
  templateFiles.map((f) => [f.slice(`${CHART}/templates/`.length), read(f)]),
);
/** Templates of the application containers (etcd.yaml runs etcd, not this project's image). */
const APP_TEMPLATES = ['configmap.yaml', 'secret.yaml', 'collector.yaml', 'api.yaml', 'streamer.yaml'];

function valueAt(path: string): unknown {
  let node: unknown = values;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Replace simple value references ({{ .Values.a.b }}, with int64 or | quote) by their defaults. */
function withDefaults(text: string): string {
  return text.replace(
    /\{\{-?\s*(?:int64\s+)?\.Values\.([\w.]+)\s*(\|\s*quote\s*)?-?\}\}/g,
    (_m, path: string) => String(valueAt(path)),
  );
}

/** `- --flag=value` lines of a container's args in a template or manifest text. */
function flags(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const match of text.matchAll(/^\s*- (--[\w-]+)=(.*)$/gm)) out.set(match[1]!, match[2]!.trim());
  return out;
}

const manifests = [
  'deployments/k8s/etcd-cluster.yaml',
  'deployments/k8s/nexus-collector.yaml',
  'deployments/k8s/nexus-api.yaml',
].flatMap((f) => parseYamlDocs(f) as K8sObject[]);
const manifest = (kind: string, name: string): K8sObject =>
  manifests.find((o) => o.kind === kind && o.metadata.name === name)!;

/** Env var names a chart template sets: `- name: VAR` entries and the ConfigMap/Secret data keys. */
function templateEnvNames(file: string): string[] {
  const text = templates[file]!;
  const names = [...text.matchAll(/^\s*- name: ([A-Z][A-Z0-9_]*)\s*$/gm)].map((m) => m[1]!);
  if (file === 'configmap.yaml' || file === 'secret.yaml') {
    names.push(...[...text.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!));
  }
  return names;
}

describe('Helm chart deployments/helm/nexus-telemetry', () => {
  it('has a v2 Chart.yaml whose appVersion is the package version', () => {
    const pkg = JSON.parse(read('package.json')) as { version: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'nexus-telemetry', appVersion: pkg.version });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(Object.keys(templates)).toEqual(
      expect.arrayContaining(['NOTES.txt', '_helpers.tpl', ...APP_TEMPLATES, 'etcd.yaml']),
    );
  });

  it('uses only values that values.yaml defines', () => {
    const missing: string[] = [];
    for (const [file, text] of Object.entries(templates)) {
      for (const match of text.matchAll(/\$?\.Values\.([\w.]+)/g)) {
        if (valueAt(match[1]!) === undefined) missing.push(`${file}: .Values.${match[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('includes only defined templates and balances its actions', () => {
    const defined = new Set(
      Object.values(templates).flatMap((t) =>
        [...t.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]!),
      ),
    );
    for (const [file, text] of Object.entries(templates)) {
      for (const m of text.matchAll(/include\s+"([^"]+)"/g))
        expect(defined, `${file}: include ${m[1]}`).toContain(m[1]);
      expect(text.split('{{').length, `${file}: {{ vs }}`).toBe(text.split('}}').length);
      const opens = [...text.matchAll(/\{\{-?\s*(if|with|range|define)\b/g)].length;
      const ends = [...text.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
      expect(ends, `${file}: if/with/range/define vs end`).toBe(opens);
    }
  });

  it('sets only variables the code reads in the application templates', () => {
    const names = APP_TEMPLATES.flatMap((f) => templateEnvNames(f).map((n) => [f, n] as const));
    expect(names.length).toBeGreaterThan(20);
    for (const [file, name] of names) expect(READ_VARIABLES, `${file}: ${name}`).toContain(name);
  });

  it("probes the API on the code's port and paths (8080, /health, /ready)", () => {
    const api = templates['api.yaml']!;
    expect(valueAt('api.port')).toBe(loadConfig({}).PORT);
    expect(api).toMatch(/livenessProbe:\n\s+httpGet:\n\s+path: \/health\n\s+port: http/);
    expect(api).toMatch(/startupProbe:\n\s+httpGet:\n\s+path: \/health\n\s+port: http/);
    expect(api).toMatch(/readinessProbe:\n\s+httpGet:\n\s+path: \/ready\n\s+port: http/);
    expect(api).toMatch(/- name: PORT\n\s+value: \{\{ \.Values\.api\.port \| quote \}\}/);
    expect(api).toMatch(/containerPort: \{\{ \.Values\.api\.port \}\}/);
  });

  it('has etcd as a StatefulSet of three or external endpoints, PDBs, HPA, optional Ingress, a streamer Job', () => {
    expect(valueAt('etcd.replicas')).toBe(3);
    expect(templates['_helpers.tpl']).toContain(
      'etcd.externalEndpoints is required when etcd.enabled is false',
    );
    expect(templates['etcd.yaml']).toMatch(/kind: StatefulSet/);
    for (const file of ['etcd.yaml', 'collector.yaml', 'api.yaml'])
      expect(templates[file]).toContain('kind: PodDisruptionBudget');
    expect(templates['api.yaml']).toContain('kind: HorizontalPodAutoscaler');
    expect(templates['api.yaml']).toContain('kind: Ingress');
    expect(valueAt('api.ingress.enabled')).toBe(false);
    expect(templates['streamer.yaml']).toContain('kind: Job');
    for (const component of ['etcd', 'collector', 'api', 'streamer']) {
      expect(valueAt(`${component}.resources.requests`), component).toBeDefined();
    }
  });

  describe('agrees with the plain manifests (deployments/k8s)', () => {
    it('runs etcd with the same flags and image', () => {
      const chartFlags = flags(withDefaults(templates['etcd.yaml']!));
      const etcd = containersOf(manifest('StatefulSet', 'etcd'))[0]!;
      const manifestFlags = flags(etcd.args!.map((a) => `  - ${a}`).join('\n'));
      expect([...chartFlags.keys()].sort()).toEqual([...manifestFlags.keys()].sort());
      for (const flag of [
        '--auto-compaction-mode',
        '--auto-compaction-retention',
        '--quota-backend-bytes',
        '--snapshot-count',
        '--listen-client-urls',
        '--listen-peer-urls',
        '--listen-metrics-urls',
        '--initial-cluster-state',
        '--data-dir',
      ]) {
        expect(chartFlags.get(flag), flag).toBe(manifestFlags.get(flag));
      }
      expect(valueAt('etcd.image')).toBe(etcd.image);
      expect((manifest('StatefulSet', 'etcd').spec as { replicas: number }).replicas).toBe(
        valueAt('etcd.replicas'),
      );
    });

    it('has the same defaults: replicas, PDBs, autoscaling, resources, image', () => {
      const collector = manifest('Deployment', 'nexus-collector');
      const api = manifest('Deployment', 'nexus-api');
      expect((collector.spec as { replicas: number }).replicas).toBe(valueAt('collector.replicas'));
      expect((api.spec as { replicas: number }).replicas).toBe(valueAt('api.replicas'));
      const minAvailable = (name: string): number =>
        (manifest('PodDisruptionBudget', name).spec as { minAvailable: number }).minAvailable;
      expect(minAvailable('etcd')).toBe(valueAt('etcd.pdb.minAvailable'));
      expect(minAvailable('nexus-collector')).toBe(valueAt('collector.pdb.minAvailable'));
      expect(minAvailable('nexus-api')).toBe(valueAt('api.pdb.minAvailable'));
      const hpa = manifest('HorizontalPodAutoscaler', 'nexus-api').spec as {
        minReplicas: number;
        maxReplicas: number;
        metrics: { resource: { target: { averageUtilization: number } } }[];
      };
      expect(hpa.minReplicas).toBe(valueAt('api.autoscaling.minReplicas'));
      expect(hpa.maxReplicas).toBe(valueAt('api.autoscaling.maxReplicas'));
      expect(hpa.metrics[0]!.resource.target.averageUtilization).toBe(
        valueAt('api.autoscaling.targetCPUUtilizationPercentage'),
      );
      const resources = (o: K8sObject): unknown =>
        (containersOf(o)[0] as unknown as { resources: unknown }).resources;
      expect(resources(collector)).toEqual(valueAt('collector.resources'));
      expect(resources(api)).toEqual(valueAt('api.resources'));
      expect(resources(manifest('StatefulSet', 'etcd'))).toEqual(valueAt('etcd.resources'));
      const image = containersOf(api)[0]!.image;
      expect(image).toBe(`${String(valueAt('image.repository'))}:${chart.appVersion}`);
      expect(isNexusImage(image)).toBe(true);
    });

    it('runs the same roles with (at least) the same variables', () => {
      const chartEnv = (file: string): string[] => [
        ...templateEnvNames('configmap.yaml'),
        ...templateEnvNames(file),
      ];
      for (const [file, name, role] of [
        ['collector.yaml', 'nexus-collector', 'collector'],
        ['api.yaml', 'nexus-api', 'api'],
      ] as const) {
        const container = containersOf(manifest('Deployment', name))[0]!;
        expect(container.args).toEqual([role]);
        expect(templates[file]).toContain(`args: ['${role}']`);
        const fromManifest = envNames(container, manifests);
        expect(chartEnv(file), name).toEqual(expect.arrayContaining(fromManifest));
      }
    });
  });
});
