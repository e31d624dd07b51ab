/**
 * Key layout of the live hierarchy in the coordination store (the guide's /telemetry/ tree):
 *   /telemetry/clusters/{c}                       cluster record
 *   /telemetry/clusters/{c}/hosts/{h}             host record
 *   /telemetry/clusters/{c}/hosts/{h}/gpus/{g}    GPU record (g = index within the host)
 *   /telemetry/clusters/{c}/hosts/{h}/gpus/{g}/mig/{i}
 *                                                 MIG instance record (i = dcgm-exporter's GPU_I_ID)
 * Path segments are URI-encoded so a name containing '/' cannot break the tree.
 */

export const TELEMETRY_ROOT = '/telemetry/';
export const CLUSTERS_PREFIX = '/telemetry/clusters/';

const seg = (s: string): string => encodeURIComponent(s);

export const clusterKey = (clusterId: string): string => `${CLUSTERS_PREFIX}${seg(clusterId)}`;
export const hostsPrefix = (clusterId: string): string => `${clusterKey(clusterId)}/hosts/`;
export const hostKey = (clusterId: string, hostname: string): string =>
  `${hostsPrefix(clusterId)}${seg(hostname)}`;
export const gpusPrefix = (clusterId: string, hostname: string): string =>
  `${hostKey(clusterId, hostname)}/gpus/`;
export const gpuKey = (clusterId: string, hostname: string, gpuId: string): string =>
  `${gpusPrefix(clusterId, hostname)}${seg(gpuId)}`;

/** Where the outlier watch marks a GPU that departs from its siblings (src/health/outlier-mark.ts). */
export const outlierKey = (clusterId: string, hostname: string, gpuId: string): string =>
  `${gpuKey(clusterId, hostname, gpuId)}/outlier`;
export const migKey = (clusterId: string, hostname: string, gpuId: string, instance: string): string =>
  `${gpuKey(clusterId, hostname, gpuId)}/mig/${seg(instance)}`;

/** What a key under /telemetry/clusters/ denotes. */
export type ParsedKey =
  | { kind: 'cluster'; clusterId: string }
  | { kind: 'host'; clusterId: string; hostname: string }
  | { kind: 'gpu'; clusterId: string; hostname: string; gpuId: string };

/** What a MIG instance key denotes. */
export interface ParsedMigKey {
  kind: 'mig';
  clusterId: string;
  hostname: string;
  gpuId: string;
  instance: string;
}

/**
 * Parse a cluster, host or GPU key; undefined for other keys, MIG instance keys included (callers
 * that know instances use {@link parseRecordKey}).
 */
export function parseKey(key: string): ParsedKey | undefined {
  const parsed = parseRecordKey(key);
  return parsed?.kind === 'mig' ? undefined : parsed;
}

/** Parse a hierarchy key of any record, MIG instances included; undefined for other keys. */
export function parseRecordKey(key: string): ParsedKey | ParsedMigKey | undefined {
  if (!key.startsWith(CLUSTERS_PREFIX)) return undefined;
  const parts = key.slice(CLUSTERS_PREFIX.length).split('/').map(decodeURIComponent);
  if (parts.length === 1 && parts[0]) return { kind: 'cluster', clusterId: parts[0] };
  if (parts.length === 3 && parts[1] === 'hosts')
    return { kind: 'host', clusterId: parts[0]!, hostname: parts[2]! };
  if (parts.length === 5 && parts[1] === 'hosts' && parts[3] === 'gpus')
    return { kind: 'gpu', clusterId: parts[0]!, hostname: parts[2]!, gpuId: parts[4]! };
  if (parts.length === 7 && parts[1] === 'hosts' && parts[3] === 'gpus' && parts[5] === 'mig' && parts[6])
    return { kind: 'mig', clusterId: parts[0]!, hostname: parts[2]!, gpuId: parts[4]!, instance: parts[6] };
  return undefined;
}

/** A GPU's outlier-mark key, parsed; undefined for every other key (parseRecordKey ignores these). */
export function parseOutlierKey(
  key: string,
): { clusterId: string; hostname: string; gpuId: string } | undefined {
  if (!key.startsWith(CLUSTERS_PREFIX) || !key.endsWith('/outlier')) return undefined;
  const parts = key.slice(CLUSTERS_PREFIX.length).split('/').map(decodeURIComponent);
  if (parts.length === 6 && parts[1] === 'hosts' && parts[3] === 'gpus' && parts[5] === 'outlier' && parts[0])
    return { clusterId: parts[0], hostname: parts[2]!, gpuId: parts[4]! };
  return undefined;
}
