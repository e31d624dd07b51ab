/** DCGM CSV rows for the dashboard's browser tests: the bundled sample's header, any GPU and value. */
import { writeFileSync } from 'node:fs';

const HEADER =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw';

/** One sample to write. */
export interface CsvSample {
  timestamp: string;
  metric: string;
  gpuId: string;
  uuid: string;
  hostname: string;
  value: number;
  model?: string;
  /** More labels_raw labels, e.g. a MIG instance's GPU_I_ID and GPU_I_PROFILE. */
  labels?: Record<string, string>;
}

function line(s: CsvSample): string {
  const model = s.model ?? 'NVIDIA H100 80GB HBM3';
  const labels =
    `Hostname=""${s.hostname}"",UUID=""${s.uuid}"",__name__=""${s.metric}"",device=""nvidia${s.gpuId}"",` +
    `gpu=""${s.gpuId}"",modelName=""${model}""` +
    Object.entries(s.labels ?? {})
      .map(([k, v]) => `,${k}=""${v}""`)
      .join('');
  const fields = [
    s.timestamp,
    s.metric,
    s.gpuId,
    `nvidia${s.gpuId}`,
    s.uuid,
    model,
    s.hostname,
    '',
    '',
    '',
    String(s.value),
  ];
  return `${fields.map((f) => `"${f}"`).join(',')},"${labels}"`;
}

/** Write `samples` as a DCGM CSV file at `path`. */
export function writeCsv(path: string, samples: CsvSample[]): string {
  writeFileSync(path, `${HEADER}\n${samples.map(line).join('\n')}\n`);
  return path;
}

/** A stable made-up UUID for generated GPU `i` of host `h`. */
export function fakeUuid(h: number, i: number): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `GPU-${hex(h, 8)}-${hex(i, 4)}-4000-8000-${hex(h * 8 + i, 12)}`;
}
