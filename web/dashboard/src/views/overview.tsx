// Fleet overview: each cluster's host and GPU counts (active / stale) and the distributions of
// utilization, temperature, power and memory over the live GPUs.
import { listClusters, type Cluster } from '../api';
import { useLoad, useFleetTick } from '../hooks';
import { formatValue, metricInfo, OVERVIEW_METRICS } from '../metrics';
import { href } from '../router';
import { fleet } from '../store';

const BINS = 10;

function Histogram({ field }: { field: string }) {
  const info = metricInfo(field);
  const values: number[] = [];
  for (const gpu of fleet.gpus.values()) {
    const v = gpu.values[field];
    if (v !== undefined) values.push(v);
  }
  if (values.length === 0)
    return (
      <figure class="hist">
        <figcaption>{info.label}</figcaption>
        <p class="muted">no values yet</p>
      </figure>
    );
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const width = (max - min) / BINS || 1;
  const counts = new Array<number>(BINS).fill(0);
  for (const v of values) counts[Math.min(BINS - 1, Math.floor((v - min) / width))]! += 1;
  const top = Math.max(...counts);
  return (
    <figure class="hist" data-metric={field}>
      <figcaption>
        {info.label}{' '}
        <span class="muted">
          ({info.unit}, {values.length} GPUs)
        </span>
      </figcaption>
      <div
        class="bars"
        role="img"
        aria-label={`${info.label} distribution from ${formatValue(min)} to ${formatValue(max)}`}
      >
        {counts.map((n, i) => (
          <div
            key={i}
            class="bar"
            style={{ height: `${(n / top) * 100}%` }}
            title={`${formatValue(min + i * width)}–${formatValue(min + (i + 1) * width)} ${info.unit}: ${n} GPUs`}
          />
        ))}
      </div>
      <div class="axis">
        <span>{formatValue(min, info.unit)}</span>
        <span>{formatValue(max, info.unit)}</span>
      </div>
    </figure>
  );
}

function ClusterCard({ cluster }: { cluster: Cluster }) {
  const m = cluster.metadata;
  return (
    <article class="card cluster" data-cluster={cluster.cluster_id}>
      <h2>
        <a href={href('clusters', cluster.cluster_id)}>{cluster.cluster_name}</a>
      </h2>
      <p class="muted">
        {cluster.cluster_id} · {cluster.region}
      </p>
      <dl class="counts">
        <div>
          <dt>Hosts</dt>
          <dd data-count="hosts">{m.total_hosts}</dd>
          <dd class="sub">
            <span data-count="active-hosts">{m.active_hosts}</span> active ·{' '}
            <span data-count="stale-hosts">{m.total_hosts - m.active_hosts}</span> stale
          </dd>
        </div>
        <div>
          <dt>GPUs</dt>
          <dd data-count="gpus">{m.total_gpus}</dd>
          <dd class="sub">
            <span data-count="active-gpus">{m.active_gpus}</span> active ·{' '}
            <span data-count="stale-gpus">{m.total_gpus - m.active_gpus}</span> stale
          </dd>
        </div>
      </dl>
    </article>
  );
}

/** The fleet overview at `#/`. */
export function OverviewView() {
  const structure = useFleetTick(1000, true);
  const [clusters] = useLoad((signal) => listClusters(signal), [structure]);
  useFleetTick(1000);
  return (
    <section>
      <h1>Fleet</h1>
      {clusters.status === 'error' ? <p class="error">Could not load clusters: {clusters.message}</p> : null}
      {clusters.status === 'loading' ? <p class="muted">Loading…</p> : null}
      {clusters.status === 'ok' ? (
        <div class="cards">
          {clusters.value.length === 0 ? <p class="muted">No cluster yet: nothing ingested.</p> : null}
          {clusters.value.map((c) => (
            <ClusterCard key={c.cluster_id} cluster={c} />
          ))}
        </div>
      ) : null}
      <h2>Distributions</h2>
      <div class="hists">
        {OVERVIEW_METRICS.map((f) => (
          <Histogram key={f} field={f} />
        ))}
      </div>
    </section>
  );
}
