/**
 * The Prometheus label set of a stored series, as the PromQL API, /federate and the metadata
 * endpoints show it: the labels dcgm-exporter exposes for that series, plus `cluster`.
 *
 * A series stored from dcgm-exporter's exposition (file, scrape) or remote write keeps every label
 * it came with in `labels`; a CSV row keeps its parsed `labels_raw` (a Prometheus-written label set,
 * often empty). Both are normalised to one shape, so the same GPU looks the same whatever its path:
 * - `__name__`, `gpu`, `UUID`, `device`, `modelName`, `Hostname` from the series columns;
 * - `container`, `pod`, `namespace` from the columns when not empty (absent otherwise);
 * - every other stored label (e.g. `DCGM_FI_DRIVER_VERSION`, `pci_bus_id`, `GPU_I_ID`), except the
 *   target labels `instance` and `job` a Prometheus attached upstream (dcgm-exporter never exposes
 *   them; whoever scrapes or federates from us attaches its own) and the lower-case aliases
 *   `uuid` / `hostname` / `container_name` / `pod_name` / `pod_namespace` the columns replace;
 * - `cluster`: the cluster id, unless the series already has a `cluster` label.
 * Empty values are dropped: in Prometheus an empty label is no label.
 */
import type { SeriesKey } from '../domain/types.js';
import type { Labels } from './types.js';

/** Stored labels the view never shows (see the module comment). */
const DROPPED = new Set([
  'instance',
  'job',
  'uuid',
  'hostname',
  'container_name',
  'pod_name',
  'pod_namespace',
]);

/** The Prometheus label set of a stored series (see the module comment). */
export function seriesLabels(series: SeriesKey): Labels {
  const out: Labels = {};
  for (const [name, value] of Object.entries(series.labels)) {
    if (value !== '' && !DROPPED.has(name)) setLabel(out, name, value);
  }
  setLabel(out, '__name__', series.metric);
  setLabel(out, 'gpu', series.gpuId);
  setLabel(out, 'UUID', series.uuid);
  setLabel(out, 'device', series.device);
  setLabel(out, 'modelName', series.modelName);
  setLabel(out, 'Hostname', series.hostname);
  setLabel(out, 'container', series.container);
  setLabel(out, 'pod', series.pod);
  setLabel(out, 'namespace', series.namespace);
  if (out.cluster === undefined) setLabel(out, 'cluster', series.clusterId);
  return out;
}

/** Set (or with an empty value remove) a label, `__proto__` included as an own property. */
function setLabel(labels: Labels, name: string, value: string): void {
  if (value === '') {
    delete labels[name];
  } else if (name === '__proto__') {
    Object.defineProperty(labels, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    labels[name] = value;
  }
}

/** Series columns that hold a view label's value exactly (`''` when the label is absent). */
export const COLUMN_LABELS = {
  __name__: 'metric',
  gpu: 'gpuId',
  UUID: 'uuid',
  device: 'device',
  modelName: 'modelName',
  Hostname: 'hostname',
  container: 'container',
  pod: 'pod',
  namespace: 'namespace',
} as const satisfies Record<string, keyof SeriesKey>;
