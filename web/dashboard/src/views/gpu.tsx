// GPU page: one chart per metric over a chosen range. Ranges end at the GPU's newest sample by
// default (so old data, e.g. the 2025 sample, shows), or at now; long ranges read rollups
// (resolution=auto). New samples from the stream are appended to the charts live.
import { useEffect, useState } from 'preact/hooks';
import { getGpu, getTelemetry, type CompactSeries } from '../api';
import { Chart } from '../chart';
import { useLoad } from '../hooks';
import { formatValue, metricInfo } from '../metrics';
import { href, setQuery } from '../router';
import { fleet, gpuKey } from '../store';
import { Reasons } from './health';
import { RangeButtons } from './range-buttons';

const RANGES: [string, number][] = [
  ['15m', 15 * 60_000],
  ['1h', 3_600_000],
  ['6h', 6 * 3_600_000],
  ['24h', 24 * 3_600_000],
  ['7d', 7 * 86_400_000],
  ['30d', 30 * 86_400_000],
];
/** Ranges longer than this read rollups (resolution=auto). */
const RAW_UP_TO_MS = 6 * 3_600_000;
const LIMIT = 10_000;

/** The GPU page at `#/clusters/{c}/hosts/{h}/gpus/{g}?range=1h&end=data|now`. */
export function GpuView({
  clusterId,
  hostId,
  gpuId,
  query,
}: {
  clusterId: string;
  hostId: string;
  gpuId: string;
  query: URLSearchParams;
}) {
  const rangeName = RANGES.some(([n]) => n === query.get('range')) ? query.get('range')! : '1h';
  const span = RANGES.find(([n]) => n === rangeName)![1];
  const anchor = query.get('end') === 'now' ? 'now' : 'data';
  const [gpu] = useLoad((signal) => getGpu(clusterId, hostId, gpuId, signal), [clusterId, hostId, gpuId]);
  const [data] = useLoad(
    async (signal) => {
      if (gpu.status !== 'ok') return undefined;
      const last = Date.parse(gpu.value.last_sample ?? gpu.value.last_seen ?? '') || Date.now();
      const end = anchor === 'now' ? Date.now() : last;
      const answer = await getTelemetry(
        clusterId,
        hostId,
        gpu.value.gpu_id,
        {
          start: new Date(end - span),
          end: new Date(end),
          resolution: span > RAW_UP_TO_MS ? 'auto' : 'raw',
          limit: LIMIT,
        },
        signal,
      );
      return { ...answer, start: end - span, end };
    },
    [gpu.status, rangeName, anchor],
  );
  const [version, setVersion] = useState(0);

  // Live: append the stream's newest values to the charts when they are newer than the last point.
  useEffect(() => {
    if (gpu.status !== 'ok' || data.status !== 'ok' || !data.value) return;
    const key = gpuKey(clusterId, hostId, gpu.value.gpu_id);
    const series = data.value.series;
    return fleet.onGpu(key, () => {
      const state = fleet.gpus.get(key);
      if (!state) return;
      let appended = false;
      for (const s of series) {
        const value = state.values[s.metric];
        const at = state.times[s.metric];
        const lastT = s.t[s.t.length - 1] ?? 0;
        if (value !== undefined && at !== undefined && at > lastT) {
          s.t.push(at);
          s.v.push(value);
          appended = true;
        }
      }
      if (appended) setVersion((n) => n + 1);
    });
  }, [gpu.status, data]);

  const title = gpu.status === 'ok' ? `GPU ${gpu.value.gpu_id} · ${gpu.value.model_name}` : `GPU ${gpuId}`;
  const loaded = data.status === 'ok' ? data.value : undefined;
  const series: CompactSeries[] = loaded
    ? [...loaded.series].sort((a, b) => a.metric.localeCompare(b.metric))
    : [];
  return (
    <section>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={href()}>Fleet</a> / <a href={href('clusters', clusterId)}>{clusterId}</a> /{' '}
        <a href={href('clusters', clusterId, 'hosts', hostId)}>{hostId}</a> / GPU {gpuId}
      </nav>
      <h1>{title}</h1>
      {gpu.status === 'ok' ? (
        <p class="muted">
          {gpu.value.uuid} · {gpu.value.device} · {gpu.value.active ? 'active' : 'stale or gone'} · newest
          sample {gpu.value.last_sample ?? 'none'}
        </p>
      ) : null}
      {gpu.status === 'ok' && gpu.value.health ? (
        <div class={`health-panel state-${gpu.value.health.state}`} id="gpu-health">
          <strong>Health: {gpu.value.health.state}</strong>{' '}
          <span class="muted">since {gpu.value.health.since}</span>
          <Reasons health={gpu.value.health} />
        </div>
      ) : null}
      <div class="toolbar" role="group" aria-label="Time range">
        <RangeButtons ranges={RANGES} current={rangeName} />
        <label>
          ending at{' '}
          <select id="range-end" value={anchor} onChange={(e) => setQuery({ end: e.currentTarget.value })}>
            <option value="data">the newest sample</option>
            <option value="now">now</option>
          </select>
        </label>
        {data.status === 'ok' && data.value ? (
          <span class="muted" id="resolution">
            resolution {data.value.resolution}
            {data.value.hasMore ? `, first ${LIMIT} samples` : ''}
          </span>
        ) : null}
      </div>
      {gpu.status === 'error' ? <p class="error">{gpu.message}</p> : null}
      {data.status === 'error' ? <p class="error">{data.message}</p> : null}
      {data.status === 'loading' || gpu.status === 'loading' ? <p class="muted">Loading…</p> : null}
      {data.status === 'ok' && data.value && series.length === 0 ? (
        <p class="muted">No samples in this range. Try a longer range, or one ending at the newest sample.</p>
      ) : null}
      <div class="charts">
        {series.map((s, i) => (
          <Chart
            key={`${i} ${s.metric} ${rangeName} ${anchor}`}
            info={metricInfo(s.metric)}
            t={s.t}
            v={s.v}
            version={version}
            from={loaded!.start}
            to={loaded!.end}
          />
        ))}
      </div>
      {gpu.status === 'ok' && gpu.value.mig_instances?.length ? (
        <>
          <h2>MIG instances</h2>
          <ul>
            {gpu.value.mig_instances.map((m) => (
              <li key={m.instance_id}>
                {m.instance_id} {m.profile ?? ''} {m.active ? '' : '(gone)'}{' '}
                {formatValue(m.metrics?.DCGM_FI_DEV_GPU_UTIL?.value, '%')}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}
