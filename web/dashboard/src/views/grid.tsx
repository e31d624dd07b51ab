// Host grid: every GPU a tile coloured by the chosen metric (heat map), gone and stale GPUs marked,
// MIG instances inside their GPU. `#/clusters/{c}` shows every host, `#/clusters/{c}/hosts/{h}` one.
// Each tile follows its own GPU in the store: an update re-renders that tile alone, once a frame.
import { useEffect, useReducer, useRef } from 'preact/hooks';
import { listHostGpus, listHosts, type Gpu, type Health } from '../api';
import { useFleetTick, useLoad } from '../hooks';
import { formatValue, heatColor, HEAT_METRICS, metricInfo } from '../metrics';
import { href, setQuery } from '../router';
import { fleet, gpuKey, type GpuState } from '../store';

/** A GPU record older than this is shown stale (the API's default STALE_AFTER). */
const STALE_MS = 300_000;

// A GPU that stops reporting sends no event: re-check the tiles' stale marks every 15 s (a local
// timer; it asks the server nothing). A tile re-renders only when its state changes.
setInterval(() => {
  const now = Date.now();
  for (const gpu of fleet.gpus.values())
    if (gpu.observedAt > 0 && now - gpu.observedAt > STALE_MS) fleet.touchGpu(gpu.key);
}, 15_000);

/**
 * The REST health without STALE, which the reader judges at read time: tiles show staleness on their
 * own, and the stream's events carry the stored health only, so both sources agree.
 */
function storedHealth(h: Health): Health {
  const reasons = h.reasons.filter((r) => r.code !== 'STALE');
  if (reasons.length === h.reasons.length) return h;
  const state = reasons.some((r) => r.severity === 'critical')
    ? 'critical'
    : reasons.length > 0
      ? 'warning'
      : 'ok';
  return { ...h, state, reasons };
}

function fromRest(g: Gpu): GpuState {
  const values: Record<string, number> = {};
  const times: Record<string, number> = {};
  for (const [field, latest] of Object.entries(g.metrics ?? {})) {
    values[field] = latest.value;
    times[field] = Date.parse(latest.timestamp);
  }
  const mig = new Map(
    (g.mig_instances ?? []).map((m) => {
      const v: Record<string, number> = {};
      for (const [field, latest] of Object.entries(m.metrics ?? {})) v[field] = latest.value;
      return [m.instance_id, { active: m.active, values: v }] as const;
    }),
  );
  return {
    key: gpuKey(g.cluster_id, g.hostname, g.gpu_id),
    clusterId: g.cluster_id,
    hostId: g.hostname,
    index: g.gpu_id,
    uuid: g.uuid,
    model: g.model_name,
    active: g.active,
    ...(g.health ? { health: storedHealth(g.health) } : {}),
    sampleTime: g.last_sample ? Date.parse(g.last_sample) : 0,
    observedAt: g.last_seen ? Date.parse(g.last_seen) : 0,
    values,
    times,
    mig,
  };
}

/** What a tile shows; a change of `shape` re-renders it, other changes are written to the DOM. */
function tileLook(gpu: GpuState, metric: (typeof HEAT_METRICS)[number]) {
  const info = metricInfo(metric.field);
  const value = gpu.values[metric.field];
  const stale = gpu.observedAt > 0 && Date.now() - gpu.observedAt > STALE_MS;
  const state = !gpu.active ? 'gone' : stale ? 'stale' : 'active';
  const text = formatValue(value, info.unit);
  const health = gpu.health?.state ?? 'ok';
  return {
    state,
    health,
    text,
    background: gpu.active ? heatColor(value, metric.min, metric.max) : '',
    shape: `${state} ${health} ${[...gpu.mig.keys()].join(',')}`,
  };
}

function Tile({ id, metric }: { id: string; metric: (typeof HEAT_METRICS)[number] }) {
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  const link = useRef<HTMLAnchorElement>(null);
  const value = useRef<HTMLSpanElement>(null);
  const shape = useRef('');
  // Per-frame updates of 1,000 tiles: write the few changed properties straight to the DOM; only a
  // change of shape (state, MIG instances) goes through a render.
  useEffect(
    () =>
      fleet.onGpu(id, () => {
        const gpu = fleet.gpus.get(id);
        if (!gpu) return redraw(0);
        const look = tileLook(gpu, metric);
        if (look.shape !== shape.current || gpu.mig.size > 0 || !link.current || !value.current)
          return redraw(0);
        link.current.style.background = look.background;
        value.current.textContent = look.text;
      }),
    [id, metric],
  );
  const gpu = fleet.gpus.get(id);
  if (!gpu) return null;
  const info = metricInfo(metric.field);
  const look = tileLook(gpu, metric);
  shape.current = look.shape;
  return (
    <a
      ref={link}
      class={`tile tile-${look.state}${gpu.mig.size > 0 ? ' tile-mig' : ''}${look.health !== 'ok' ? ` tile-health-${look.health}` : ''}`}
      href={href('clusters', gpu.clusterId, 'hosts', gpu.hostId, 'gpus', gpu.index)}
      style={{ background: look.background }}
      data-gpu={gpu.index}
      data-uuid={gpu.uuid}
      data-state={look.state}
      data-health={look.health}
      title={`${gpu.model} ${gpu.uuid}: ${info.label}${gpu.health && gpu.health.reasons.length > 0 ? `\n${gpu.health.state}: ${gpu.health.reasons.map((r) => r.code).join(', ')}` : ''}`}
    >
      {look.health !== 'ok' ? (
        <span class="tile-health" aria-label={`health ${look.health}`}>
          {look.health === 'critical' ? '!!' : '!'}
        </span>
      ) : null}
      <span class="tile-index">GPU {gpu.index}</span>
      <span ref={value} class="tile-value" data-field={metric.field}>
        {look.text}
      </span>
      {look.state !== 'active' ? <span class="tile-mark">{look.state}</span> : null}
      {gpu.mig.size > 0 ? (
        <span class="migs">
          {[...gpu.mig.entries()].map(([instance, m]) => (
            <span
              key={instance}
              class={`mig${m.active ? '' : ' mig-gone'}`}
              style={{
                background: m.active ? heatColor(m.values[metric.field], metric.min, metric.max) : undefined,
              }}
              title={`MIG ${instance}: ${formatValue(m.values[metric.field], info.unit)}`}
            >
              MIG {instance}
            </span>
          ))}
        </span>
      ) : null}
    </a>
  );
}

function HostTiles({
  clusterId,
  hostId,
  keys,
  metric,
}: {
  clusterId: string;
  hostId: string;
  keys: string[];
  metric: (typeof HEAT_METRICS)[number];
}) {
  return (
    <section class="host" data-host={hostId}>
      <h2>
        <a href={href('clusters', clusterId, 'hosts', hostId)}>{hostId}</a>{' '}
        <span class="muted">{keys.length} GPUs</span>
      </h2>
      <div class="tiles">
        {keys.map((k) => (
          <Tile key={k} id={k} metric={metric} />
        ))}
      </div>
    </section>
  );
}

/** The heat-map grid of a cluster, or of one host when `hostId` is given. */
export function GridView({
  clusterId,
  hostId,
  query,
}: {
  clusterId: string;
  hostId?: string;
  query: URLSearchParams;
}) {
  const metric = HEAT_METRICS.find((m) => m.field === query.get('metric')) ?? HEAT_METRICS[0]!;
  useFleetTick(0, true);
  // Hosts from REST (includes hosts with no GPU record yet); the one-host view seeds its GPUs
  // (with MIG instances and the API's active state) from REST too, then follows the stream.
  const [hosts] = useLoad(
    (signal) => (hostId ? Promise.resolve([]) : listHosts(clusterId, signal)),
    [clusterId, hostId],
  );
  const [seed] = useLoad(
    async (signal) => {
      if (!hostId) return 0;
      const gpus = await listHostGpus(clusterId, hostId, signal);
      for (const g of gpus) fleet.put(fromRest(g));
      return gpus.length;
    },
    [clusterId, hostId],
  );
  const byHost = new Map<string, string[]>();
  if (hostId) byHost.set(hostId, []);
  if (hosts.status === 'ok') for (const h of hosts.value) byHost.set(h.hostname, []);
  for (const gpu of fleet.gpus.values()) {
    if (gpu.clusterId !== clusterId || (hostId && gpu.hostId !== hostId)) continue;
    let list = byHost.get(gpu.hostId);
    if (!list) byHost.set(gpu.hostId, (list = []));
    list.push(gpu.key);
  }
  const order = (k: string) => fleet.gpus.get(k)?.index ?? '';
  const sorted = [...byHost.entries()].sort(([a], [b]) => a.localeCompare(b));
  let total = 0;
  for (const [, keys] of sorted) {
    keys.sort((a, b) => Number(order(a)) - Number(order(b)));
    total += keys.length;
  }
  const error = hosts.status === 'error' ? hosts.message : seed.status === 'error' ? seed.message : undefined;
  return (
    <section>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={href()}>Fleet</a> / <a href={href('clusters', clusterId)}>{clusterId}</a>
        {hostId ? <> / {hostId}</> : null}
      </nav>
      <h1>{hostId ?? `Cluster ${clusterId}`}</h1>
      <div class="toolbar">
        <label>
          Colour by{' '}
          <select
            id="heat-metric"
            value={metric.field}
            onChange={(e) => setQuery({ metric: e.currentTarget.value })}
          >
            {HEAT_METRICS.map((m) => (
              <option key={m.field} value={m.field}>
                {metricInfo(m.field).label}
              </option>
            ))}
          </select>
        </label>
        <span class="legend" aria-hidden="true">
          <span>{formatValue(metric.min)}</span>
          <span class="scale" />
          <span>
            {formatValue(metric.max)} {metricInfo(metric.field).unit}
          </span>
        </span>
        <span class="muted" id="tile-count">
          {total} GPUs
        </span>
      </div>
      {error ? <p class="error">{error}</p> : null}
      <div class={hostId ? 'hosts one' : 'hosts'}>
        {sorted.map(([h, keys]) => (
          <HostTiles key={h} clusterId={clusterId} hostId={h} keys={keys} metric={metric} />
        ))}
      </div>
    </section>
  );
}
