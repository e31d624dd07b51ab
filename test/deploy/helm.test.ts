/**
 * The Helm chart (deployments/helm/nexus-telemetry). Without the helm binary (not installed here)
 * the templates cannot be rendered, so this checks what can be checked statically: Chart.yaml and
 * values.yaml parse, every `.Values.x` a template uses is defined, every `include` names a defined
 * template, template actions are balanced, the application containers set only variables the code
 * reads, probes and ports are the code's, and the chart agrees with the plain manifests in
 * deployments/k8s (etcd flags, roles, defaults, env var names), and the optional NATS JetStream queue
 * and remote-write sample store values reach the configmap, the secrets and `--queue nats`. Rendering with `helm lint` /
 * `helm template` is left to machines that have helm (docs/operations.md); it is not packaged here.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { resolveTopology } from '../../src/runtime/topology.js';
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

function valueAt(path: string, root: unknown = values): unknown {
  let node: unknown = root;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * Replace simple value references ({{ .Values.a.b }}, with int64 or | quote) by their defaults, or
 * by `overrides` (dotted path -> value) where given.
 */
function withDefaults(text: string, overrides: Record<string, unknown> = {}): string {
  return text.replace(
    /\{\{-?\s*(?:int64\s+)?\.Values\.([\w.]+)\s*(\|\s*quote\s*)?-?\}\}/g,
    (_m, path: string, quote?: string) => {
      const value = path in overrides ? overrides[path] : valueAt(path);
      return quote ? JSON.stringify(String(value)) : String(value);
    },
  );
}

/**
 * Lines of a template between `{{- if <condition> }}` and its `{{- else }}` / `{{- end }}`, i.e. what
 * the branch renders when the condition holds (nested blocks included as text).
 */
function branch(text: string, condition: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `{{- if ${condition} }}`);
  if (start < 0) throw new Error(`no {{- if ${condition} }}`);
  const out: string[] = [];
  let depth = 0;
  for (const line of lines.slice(start + 1)) {
    if (/\{\{-?\s*(if|with|range)\b/.test(line)) depth += 1;
    else if (/\{\{-?\s*end\s*-?\}\}/.test(line) || /\{\{-?\s*else\b/.test(line)) {
      if (depth === 0) break;
      if (/\bend\b/.test(line)) depth -= 1;
    }
    out.push(line);
  }
  return out.join('\n');
}

/** Depth of if/with/range blocks open at each line containing `needle`. */
function guardDepths(text: string, needle: RegExp): number[] {
  const depths: number[] = [];
  let depth = 0;
  for (const line of text.split('\n')) {
    if (needle.test(line)) depths.push(depth);
    depth += [...line.matchAll(/\{\{-?\s*(if|with|range)\b/g)].length;
    depth -= [...line.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
  }
  return depths;
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

  describe('NATS JetStream queue and remote-write sample store (issue 21)', () => {
    it('defines nats.*, remoteWrite.* and the queue choices, off by default', () => {
      expect(valueAt('nats')).toEqual({
        url: '',
        streamReplicas: 3,
        user: '',
        existingSecret: '',
        passwordKey: 'nats-password',
        password: '',
      });
      expect(valueAt('remoteWrite')).toEqual({
        url: '',
        readUrl: '',
        existingSecret: '',
        bearerTokenKey: 'remote-write-bearer-token',
        bearerToken: '',
      });
      expect(valueAt('collector.queue')).toBe('');
      expect(valueAt('streamer.queue')).toBe('etcd');
      // One chart Secret may hold all three: their keys must differ.
      const keys = ['postgres.passwordKey', 'nats.passwordKey', 'remoteWrite.bearerTokenKey'].map((k) =>
        valueAt(k),
      );
      expect(new Set(keys).size).toBe(3);
      // NATS_STREAM_REPLICAS accepts the default.
      expect(
        loadConfig({ NATS_STREAM_REPLICAS: String(valueAt('nats.streamReplicas')) }).NATS_STREAM_REPLICAS,
      ).toBe(3);
    });

    it('names the official charts that run NATS and VictoriaMetrics', () => {
      const text = read(`${CHART}/values.yaml`);
      for (const name of ['nats-io/nats', 'victoria-metrics-single', 'victoria-metrics-cluster'])
        expect(text).toContain(name);
    });

    it('puts NATS_URL, NATS_STREAM_REPLICAS, REMOTE_WRITE_URL, REMOTE_READ_URL in the configmap only when set', () => {
      const configmap = templates['configmap.yaml']!;
      for (const name of ['NATS_URL', 'NATS_STREAM_REPLICAS', 'REMOTE_WRITE_URL', 'REMOTE_READ_URL']) {
        expect(READ_VARIABLES).toContain(name);
        const depths = guardDepths(configmap, new RegExp(`^\\s+${name}:`));
        expect(depths, name).toHaveLength(1);
        expect(depths[0], `${name} is inside an if/with`).toBeGreaterThan(0);
      }
      expect(configmap).toContain(
        'NATS_URL: {{ required "nats.url is required when collector.queue or streamer.queue is nats" .Values.nats.url | quote }}',
      );
      expect(configmap).toContain('{{- with .Values.remoteWrite.url }}\n  REMOTE_WRITE_URL: {{ . | quote }}');
      expect(configmap).toContain(
        '{{- with .Values.remoteWrite.readUrl }}\n  REMOTE_READ_URL: {{ . | quote }}',
      );
    });

    it("passes NATS_USER with NATS_PASSWORD, and REMOTE_WRITE_BEARER_TOKEN, from a Secret (the chart's or existingSecret)", () => {
      const helpers = templates['_helpers.tpl']!;
      const helperEnv = [...helpers.matchAll(/^\s*- name: ([A-Z][A-Z0-9_]*)\s*$/gm)].map((m) => m[1]!);
      expect(helperEnv.sort()).toEqual(['NATS_PASSWORD', 'NATS_USER', 'REMOTE_WRITE_BEARER_TOKEN']);
      // NATS_USER only beside NATS_PASSWORD (collector, streamer): the configuration refuses one
      // without the other, so the API must get neither.
      expect(templates['configmap.yaml']).not.toContain('NATS_USER');
      expect(() => loadConfig({ NATS_USER: 'nexus' })).toThrow(/NATS_USER and NATS_PASSWORD/);
      for (const name of helperEnv) expect(READ_VARIABLES).toContain(name);
      expect(helpers).toContain('.Values.nats.existingSecret | default (include "nexus.secretName" .)');
      expect(helpers).toContain(
        '.Values.remoteWrite.existingSecret | default (include "nexus.secretName" .)',
      );
      const natsGuard = '.Values.nats.user';
      const tokenGuard = 'or .Values.remoteWrite.existingSecret .Values.remoteWrite.bearerToken';
      const uses: Record<string, string[]> = {
        'collector.yaml': ['nexus.natsAuthEnv', 'nexus.remoteWriteTokenEnv'],
        'streamer.yaml': ['nexus.natsAuthEnv'],
        'api.yaml': ['nexus.remoteWriteTokenEnv'],
      };
      for (const [file, includes] of Object.entries(uses)) {
        const text = templates[file]!;
        for (const name of ['nexus.natsAuthEnv', 'nexus.remoteWriteTokenEnv']) {
          const guard = name === 'nexus.natsAuthEnv' ? natsGuard : tokenGuard;
          const used = includes.includes(name);
          expect(text.includes(`include "${name}"`), `${file}: ${name}`).toBe(used);
          if (used)
            expect(branch(text, guard), `${file}: ${name} under if ${guard}`).toContain(`include "${name}"`);
        }
      }
      const secret = templates['secret.yaml']!;
      expect(secret).toContain(
        '{{- $natsPassword := and .Values.nats.user (not .Values.nats.existingSecret) }}',
      );
      expect(branch(secret, '$natsPassword')).toContain(
        '{{ .Values.nats.passwordKey }}: {{ required "nats.password (or nats.existingSecret) is required when nats.user is set" .Values.nats.password | quote }}',
      );
      expect(branch(secret, '$bearerToken')).toContain(
        '{{ .Values.remoteWrite.bearerTokenKey }}: {{ .Values.remoteWrite.bearerToken | quote }}',
      );
    });

    it('runs collectors and the streamer with --queue nats when chosen', () => {
      const argsOf = (text: string): string[] => {
        const line = text.split('\n').find((l) => /^\s*args: \[/.test(l))!;
        return (parse(line) as { args: string[] }).args;
      };
      const collector = templates['collector.yaml']!;
      expect(
        argsOf(withDefaults(branch(collector, '.Values.collector.queue'), { 'collector.queue': 'nats' })),
      ).toEqual(['collector', '--queue', 'nats']);
      // The default (collector.queue empty) stays the plain manifests' `args: ['collector']`.
      expect(collector).toMatch(/\{\{- else \}\}\n\s+args: \['collector'\]\n\s+\{\{- end \}\}/);

      const streamer = templates['streamer.yaml']!;
      const streamerArgs = (queue: string): string[] => {
        const block = withDefaults(streamer, { 'streamer.queue': queue }).match(
          /^(\s+)args:\n((?:\1 {2}- .*\n)+)/m,
        )!;
        return [...block[2]!.matchAll(/- (.*)$/gm)].map((m) => parse(m[1]!) as string);
      };
      expect(streamerArgs('nats')).toEqual(['streamer', '--queue', 'nats']);
      expect(streamerArgs(String(valueAt('streamer.queue')))).toEqual(['streamer', '--queue', 'etcd']);

      // What the chart's pods then resolve: the collector consumes the NATS stream only, the
      // streamer publishes there, and remoteWrite.url selects the victoria sample store.
      const env = {
        CLUSTER_ID: String(valueAt('cluster.id')),
        ETCD_ENDPOINTS: 'etcd-0:2379',
        DB_HOST: 'postgres',
        DB_PASSWORD: 'x',
        NATS_URL: 'nats://nats:4222',
        NATS_STREAM_REPLICAS: String(valueAt('nats.streamReplicas')),
        REMOTE_WRITE_URL: 'http://vm-victoria-metrics-single-server:8428/api/v1/write',
      };
      const config = loadConfig(env);
      expect(resolveTopology(config, 'collector', { queue: 'nats' })).toMatchObject({
        consume: ['nats'],
        samples: 'victoria',
      });
      expect(resolveTopology(config, 'streamer', { queue: 'nats' }).produce).toBe('nats');
      expect(resolveTopology(config, 'api').samples).toBe('victoria');
    });
  });
});
