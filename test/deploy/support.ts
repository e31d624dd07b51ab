/**
 * Shared helpers of the deployment tests: file loading, the variables the code reads, Kubernetes
 * schema validation (kubernetes-models), and the env var names a container gets.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as coreV1 from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config/config.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every environment variable the code reads (imported, so variables added later count too). */
export const READ_VARIABLES: ReadonlySet<string> = new Set<string>(CONFIG_VARIABLES);

export const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Files under `dir` (relative to the repository root), recursively, as repository-relative paths. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const name of readdirSync(abs)) {
      const path = join(abs, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(ROOT, path));
    }
  };
  walk(join(ROOT, dir));
  return out.sort();
}

/** Parse every document of a YAML file; throws naming the file on any YAML error. */
export function parseYamlDocs(path: string): unknown[] {
  const docs = parseAllDocuments(read(path), { merge: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const values: unknown[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value !== null && value !== undefined) values.push(value);
  }
  return values;
}

/** A Kubernetes object as far as these tests look at it. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const MODELS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'autoscaling/v2': autoscalingV2,
  'batch/v1': batchV1,
  'networking.k8s.io/v1': networkingV1,
  'policy/v1': policyV1,
};

/**
 * Validate an object against the Kubernetes OpenAPI schema of its apiVersion/kind by constructing
 * the kubernetes-models class and calling validate(). Throws with the schema errors.
 */
export function validateK8s(object: K8sObject): void {
  const Model = MODELS[object.apiVersion]?.[object.kind] as
    (new (data: unknown) => { validate(): void }) | undefined;
  if (Model === undefined) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
}

/** The pod template's containers of a workload (Deployment, StatefulSet, Job). */
export function containersOf(object: K8sObject): Container[] {
  const spec = object.spec as { template?: { spec?: { containers?: Container[] } } } | undefined;
  return spec?.template?.spec?.containers ?? [];
}

/** Names of the env vars a container gets: env entries plus the keys of ConfigMaps/Secrets it loads. */
export function envNames(container: Container, objects: K8sObject[]): string[] {
  const names = (container.env ?? []).map((e) => e.name);
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const target = objects.find((o) => o.kind === kind && o.metadata.name === ref?.name);
    if (!target) throw new Error(`${container.name}: envFrom ${kind} ${ref?.name} is not defined`);
    names.push(...Object.keys({ ...target.data, ...target.stringData }));
  }
  return names;
}

/** Whether a container runs this project's image. */
export const isNexusImage = (image: string): boolean => /(^|\/)nexus-telemetry(:|@|$)/.test(image);
