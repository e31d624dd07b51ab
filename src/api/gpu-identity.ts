/**
 * One GPU UUID should name one GPU, but a misconfigured exporter (or a GPU moved between hosts) can
 * report the same UUID on several hosts. Lookups by UUID alone must then not mix those hosts'
 * telemetry: {@link uuidPlaces} finds every host a UUID is reported on (live hierarchy and stored
 * series together) and {@link ambiguousUuid} is the 409 AMBIGUOUS_UUID that lists them and points
 * to the per-host route.
 */
import { NexusError } from '../errors.js';

/** Where a GPU is: cluster, host and index within the host. */
export interface GpuPlace {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
}

/** Most places a message lists. */
const SHOWN = 10;

/**
 * The distinct hosts `uuid` (case-insensitive) is reported on, across every list given (first
 * occurrence of each cluster + host kept, in the order given).
 */
export function uuidPlaces(uuid: string, ...lists: readonly (readonly GpuPlace[])[]): GpuPlace[] {
  const wanted = uuid.toLowerCase();
  const byHost = new Map<string, GpuPlace>();
  for (const list of lists) {
    for (const g of list) {
      if (g.uuid.toLowerCase() !== wanted) continue;
      const key = `${g.clusterId}\u0000${g.hostname}`;
      if (!byHost.has(key)) byHost.set(key, g);
    }
  }
  return [...byHost.values()];
}

/**
 * AMBIGUOUS_UUID (409) for a UUID reported on several hosts. `how` tells the client how to name one
 * (the REST route, or GraphQL's clusterId and hostId arguments).
 */
export function ambiguousUuid(
  uuid: string,
  places: readonly GpuPlace[],
  parameter: string,
  how: 'rest' | 'graphql',
): NexusError {
  const shown = places
    .slice(0, SHOWN)
    .map((p) =>
      how === 'rest'
        ? `/api/v1/clusters/${encodeURIComponent(p.clusterId)}/hosts/${encodeURIComponent(p.hostname)}/gpus/${encodeURIComponent(p.uuid)}/telemetry`
        : `clusterId "${p.clusterId}", hostId "${p.hostname}"`,
    );
  const more = places.length > SHOWN ? ` and ${places.length - SHOWN} more` : '';
  const advice =
    how === 'rest'
      ? 'Their telemetry is not mixed: ask for one GPU at one of'
      : 'Their telemetry is not mixed: give clusterId and hostId, one of';
  return new NexusError(
    'AMBIGUOUS_UUID',
    `GPU UUID '${uuid}' is reported on ${places.length} hosts. ${advice}: ${shown.join('; ')}${more}.`,
    { details: { parameter, hosts: places.map((p) => ({ clusterId: p.clusterId, hostname: p.hostname })) } },
  );
}
