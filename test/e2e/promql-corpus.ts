/**
 * The PromQL corpus of the differential test (test/e2e/promql-differential.test.ts): expressions over
 * the dataset of test/support/promql-data.ts covering selectors, range functions, math, label
 * functions, aggregations, binary operators with matching, subqueries, every expression of NVIDIA's
 * dcgm-exporter Grafana dashboard (grafana/dcgm-exporter-dashboard.json, template variables
 * substituted as Grafana does), and malformed queries both sides must refuse (`bad_data`, `execution`).
 * Every expression must succeed in Prometheus 2.42 and return data at one of the test's times at
 * least (checked by the test); none is marked unsupported: the corpus is the engine's target.
 */
import type { PromqlDataset } from '../support/promql-data.js';

/** One corpus expression. */
export interface CorpusEntry {
  expr: string;
  /** Where it comes from: `dashboard` for the dcgm-exporter dashboard's own expressions. */
  group: string;
}

/**
 * The dcgm-exporter dashboard's panel expressions, verbatim, with `$Hostname` and `$gpu` still in
 * them (NVIDIA/dcgm-exporter grafana/dcgm-exporter-dashboard.json, panels in file order).
 */
export const DASHBOARD_EXPRESSIONS: readonly string[] = [
  'max(DCGM_FI_DEV_GPU_TEMP{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, uuid)',
  'avg(DCGM_FI_DEV_GPU_TEMP{Hostname=~"$Hostname", gpu=~"$gpu"})',
  'max(DCGM_FI_DEV_POWER_USAGE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, uuid)',
  'sum(max(DCGM_FI_DEV_POWER_USAGE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (gpu))',
  'max(DCGM_FI_DEV_SM_CLOCK{Hostname=~"$Hostname", gpu=~"$gpu"} * 1000000) by (Hostname, UUID, gpu)',
  'max(DCGM_FI_PROF_GR_ENGINE_ACTIVE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, GPU_I_ID, GPU_I_PROFILE)',
  'max(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, GPU_I_ID, GPU_I_PROFILE)',
  'max(DCGM_FI_DEV_FB_USED{Hostname=~"$Hostname", gpu=~"$gpu"}) by (Hostname, gpu, GPU_I_ID, GPU_I_PROFILE)',
];

/** Grafana's value of a multi-value variable in a regex matcher: `(a|b|c)`, regex characters escaped. */
export function grafanaMulti(values: readonly string[]): string {
  const escaped = values.map((v) => v.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&'));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

/** `expr` with `$Hostname` and `$gpu` replaced. */
export function substitute(expr: string, vars: { Hostname: string; gpu: string }): string {
  return expr.replaceAll('$Hostname', vars.Hostname).replaceAll('$gpu', vars.gpu);
}

/**
 * The corpus for `dataset`: its hosts, GPUs and times appear in selectors and `@` modifiers.
 * Dashboard expressions come twice: with "All" selected for both variables, and with one host and
 * one GPU (the GPU with the gap).
 */
export function buildCorpus(dataset: PromqlDataset): CorpusEntry[] {
  const hosts = [...new Set(dataset.gpus.map((g) => g.hostname))];
  const gpuIds = [...new Set(dataset.gpus.map((g) => g.gpu))].sort();
  const [h1, h2, h3] = [hosts[0]!, hosts[1] ?? hosts[0]!, hosts.at(-1)!];
  const oneGpu = dataset.gap ?? { hostname: h3, gpu: '0' };
  const at = (ms: number): string => String(ms / 1000);
  const hourIn = dataset.startMs + 3_600_000;

  const entries: CorpusEntry[] = [];
  const add = (group: string, ...exprs: string[]): void => {
    for (const expr of exprs) entries.push({ group, expr });
  };

  add(
    'selector',
    'DCGM_FI_DEV_GPU_TEMP',
    `DCGM_FI_DEV_GPU_TEMP{Hostname="${h2}"}`,
    `DCGM_FI_DEV_GPU_UTIL{Hostname!="${h1}", gpu!="0"}`,
    'DCGM_FI_DEV_POWER_USAGE{modelName=~"NVIDIA A100.*"}',
    'DCGM_FI_DEV_POWER_USAGE{Hostname!~".*-00[12]"}',
    '{__name__=~"DCGM_FI_DEV_FB_(USED|FREE)", gpu="1"}',
    'DCGM_FI_DEV_GPU_TEMP offset 10m',
    `DCGM_FI_DEV_GPU_TEMP @ ${at(hourIn)}`,
    'DCGM_FI_DEV_POWER_USAGE @ end()',
    `DCGM_FI_DEV_FB_USED{gpu="${oneGpu.gpu}", Hostname="${oneGpu.hostname}"}[5m]`,
    'DCGM_FI_DEV_GPU_TEMP @ start() offset -5m',
    `max_over_time(DCGM_FI_DEV_GPU_TEMP[1m] @ ${at(hourIn + 15_000)})`,
    'sum by (__name__) ({__name__=~"DCGM_FI_DEV_FB_.*"})',
    'DCGM_FI_DEV_GPU_UTIL{Hostname=~"sim-dgx1-hgpu-00[1-2]|.*003", gpu=~"1|3|"}',
    '{__name__=~"DCGM_FI_DEV_GPU_.*", gpu!~"0|1"}',
    `DCGM_FI_DEV_GPU_TEMP{Hostname=~"(?i)${h1.toUpperCase()}"}`,
  );
  add(
    'counter',
    'rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m])',
    'irate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[2m])',
    'increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[10m])',
    'rate(DCGM_FI_DEV_PCIE_REPLAY_COUNTER[1m])',
    'increase(DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL[1h])',
    'resets(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[1h])',
    'rate(DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL[5m] offset 5m)',
    'increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[90s])',
    'rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m] @ end())',
  );
  add(
    'gauge-range',
    'changes(DCGM_FI_DEV_SM_CLOCK[15m])',
    'delta(DCGM_FI_DEV_GPU_TEMP[10m])',
    'idelta(DCGM_FI_DEV_FB_USED[5m])',
    'deriv(DCGM_FI_DEV_POWER_USAGE[10m])',
    'predict_linear(DCGM_FI_DEV_FB_USED[30m], 3600)',
    'holt_winters(DCGM_FI_DEV_GPU_TEMP[10m], 0.5, 0.5)',
    'irate(DCGM_FI_DEV_FB_USED[10m])',
    'deriv(DCGM_FI_DEV_GPU_TEMP[45s])',
  );
  add(
    'over_time',
    'avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m])',
    'min_over_time(DCGM_FI_DEV_GPU_TEMP[30m])',
    'max_over_time(DCGM_FI_DEV_POWER_USAGE[1h])',
    'sum_over_time(DCGM_FI_DEV_POWER_USAGE[5m])',
    'count_over_time(DCGM_FI_DEV_GPU_UTIL[10m])',
    'last_over_time(DCGM_FI_DEV_GPU_TEMP[15m])',
    'stddev_over_time(DCGM_FI_DEV_POWER_USAGE[10m])',
    'stdvar_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE[10m])',
    'quantile_over_time(0.9, DCGM_FI_DEV_GPU_UTIL[30m])',
    'present_over_time(DCGM_FI_DEV_GPU_TEMP[10m])',
  );
  add(
    'math',
    'abs(-DCGM_FI_DEV_GPU_TEMP)',
    'ceil(DCGM_FI_DEV_POWER_USAGE / 7)',
    'floor(DCGM_FI_DEV_POWER_USAGE / 7)',
    'round(DCGM_FI_DEV_POWER_USAGE)',
    'round(DCGM_FI_DEV_POWER_USAGE, 5)',
    'clamp(DCGM_FI_DEV_GPU_UTIL, 20, 80)',
    'clamp_min(DCGM_FI_DEV_GPU_TEMP, 50)',
    'clamp_max(DCGM_FI_DEV_GPU_TEMP, 50)',
    'sqrt(DCGM_FI_DEV_FB_USED)',
    'ln(DCGM_FI_DEV_POWER_USAGE)',
    'exp(DCGM_FI_PROF_GR_ENGINE_ACTIVE)',
    'timestamp(DCGM_FI_DEV_GPU_TEMP)',
    'timestamp(DCGM_FI_DEV_GPU_TEMP offset 1m)',
    'sgn(DCGM_FI_DEV_GPU_UTIL - 50)',
  );
  add(
    'time-scalar',
    'time()',
    'vector(1)',
    'vector(time()) - 60',
    'scalar(sum(DCGM_FI_DEV_GPU_UTIL))',
    'DCGM_FI_DEV_GPU_UTIL / scalar(max(DCGM_FI_DEV_GPU_UTIL))',
    '1 + 2 * 3 ^ 2',
    '"a string"',
    'scalar(DCGM_FI_DEV_GPU_TEMP)',
    'vector(time()) % 3600',
    'minute()',
    'day_of_week(vector(time()))',
  );
  add(
    'labels',
    `label_replace(DCGM_FI_DEV_GPU_TEMP, "host", "$1", "Hostname", "sim-dgx1-(.*)")`,
    'label_replace(DCGM_FI_DEV_GPU_TEMP, "gpu", "", "gpu", ".*")',
    'label_join(DCGM_FI_DEV_GPU_TEMP, "id", "/", "Hostname", "gpu")',
    'absent(DCGM_FI_DEV_NOT_EXPORTED{Hostname="nowhere"})',
    `absent(DCGM_FI_DEV_GPU_TEMP{Hostname="${oneGpu.hostname}", gpu="${oneGpu.gpu}"})`,
    `absent_over_time(DCGM_FI_DEV_GPU_TEMP{Hostname="${oneGpu.hostname}", gpu="${oneGpu.gpu}"}[5m])`,
    'sort_desc(DCGM_FI_DEV_POWER_USAGE)',
    'sort(DCGM_FI_PROF_GR_ENGINE_ACTIVE)',
    'absent(DCGM_FI_NOPE{Hostname="a", gpu=~"1", cluster="x"})',
    'sum by (no_such_label) (DCGM_FI_DEV_GPU_UTIL)',
  );
  add(
    'aggregation',
    'sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)',
    'avg without (gpu, UUID, device) (DCGM_FI_DEV_GPU_TEMP)',
    'min by (modelName) (DCGM_FI_DEV_GPU_TEMP)',
    'max(DCGM_FI_DEV_FB_USED)',
    'count by (Hostname) (DCGM_FI_DEV_GPU_UTIL > 50)',
    'stddev by (Hostname) (DCGM_FI_DEV_GPU_TEMP)',
    'stdvar(DCGM_FI_DEV_POWER_USAGE)',
    'topk(3, DCGM_FI_DEV_POWER_USAGE)',
    'bottomk by (Hostname) (1, DCGM_FI_DEV_POWER_USAGE)',
    'quantile(0.75, DCGM_FI_DEV_GPU_UTIL)',
    'quantile by (Hostname) (0.5, DCGM_FI_DEV_POWER_USAGE)',
    'count_values("temp", DCGM_FI_DEV_GPU_TEMP)',
    'count_values by (Hostname) ("clock", DCGM_FI_DEV_SM_CLOCK)',
    'group by (modelName) (DCGM_FI_DEV_GPU_UTIL)',
    'sum by (Hostname) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]))',
    'count_values("watts", DCGM_FI_DEV_POWER_USAGE)',
    'count_values("huge", DCGM_FI_PROF_PCIE_TX_BYTES * 1e15)',
    'sum without () (DCGM_FI_DEV_GPU_UTIL)',
    'count by () (DCGM_FI_DEV_GPU_UTIL)',
    'quantile(1.5, DCGM_FI_DEV_GPU_UTIL)',
    'topk(2.7, DCGM_FI_DEV_POWER_USAGE)',
    'bottomk without (gpu, UUID, device) (1, DCGM_FI_DEV_POWER_USAGE)',
  );
  add(
    'binary',
    'DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 100',
    'DCGM_FI_DEV_POWER_USAGE * 2 - 10',
    'DCGM_FI_DEV_GPU_UTIL % 7',
    '2 ^ (DCGM_FI_DEV_GPU_TEMP / 20)',
    '1 / DCGM_FI_DEV_XID_ERRORS',
    'DCGM_FI_DEV_XID_ERRORS / DCGM_FI_DEV_XID_ERRORS',
    'DCGM_FI_DEV_GPU_TEMP > 60',
    'DCGM_FI_DEV_GPU_TEMP > bool 60',
    'DCGM_FI_DEV_GPU_UTIL == bool 100',
    'DCGM_FI_DEV_POWER_USAGE <= DCGM_FI_DEV_POWER_USAGE offset 5m',
    '1 < bool 2',
    'DCGM_FI_DEV_GPU_UTIL > 50 and DCGM_FI_DEV_GPU_TEMP > 50',
    'DCGM_FI_DEV_GPU_UTIL or DCGM_FI_DEV_GPU_TEMP',
    'DCGM_FI_DEV_GPU_UTIL unless DCGM_FI_DEV_GPU_TEMP > 60',
    'DCGM_FI_DEV_GPU_UTIL and on (Hostname) (DCGM_FI_DEV_POWER_USAGE > 600)',
    'DCGM_FI_DEV_GPU_UTIL * ignoring (modelName) DCGM_FI_DEV_GPU_TEMP',
    'DCGM_FI_DEV_POWER_USAGE / on (Hostname) group_left sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)',
    'sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE) / on (Hostname) group_right DCGM_FI_DEV_POWER_USAGE',
    'DCGM_FI_DEV_POWER_USAGE * on (Hostname, gpu) group_left (modelName) max by (Hostname, gpu, modelName) (DCGM_FI_DEV_SM_CLOCK)',
    'DCGM_FI_DEV_POWER_USAGE / on () group_left sum(DCGM_FI_DEV_POWER_USAGE)',
    '60 < bool DCGM_FI_DEV_GPU_TEMP',
  );
  add(
    'subquery',
    'max_over_time(rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m])[30m:1m])',
    'avg_over_time(sum by (Hostname) (DCGM_FI_DEV_GPU_UTIL)[15m:])',
    'rate(DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL[2m:30s])',
    'max_over_time(DCGM_FI_DEV_GPU_TEMP[10m:1m] offset 5m)',
  );

  const all = { Hostname: grafanaMulti(hosts), gpu: grafanaMulti(gpuIds) };
  const one = { Hostname: grafanaMulti([oneGpu.hostname]), gpu: grafanaMulti([oneGpu.gpu]) };
  for (const expr of DASHBOARD_EXPRESSIONS) add('dashboard', substitute(expr, all), substitute(expr, one));
  return entries;
}

/** A query both Prometheus and the project must refuse with the same HTTP status and `errorType`. */
export interface MalformedQuery {
  /** Path with its query string, the same for both servers. */
  path: string;
  why: string;
  /** Prometheus' answer: `bad_data` (HTTP 400, the default) or `execution` (HTTP 422). */
  errorType?: 'bad_data' | 'execution';
}

/** Malformed queries for `dataset`'s time range. */
export function malformedQueries(dataset: PromqlDataset): MalformedQuery[] {
  const t = String(dataset.startMs / 1000 + 3600);
  const q = (s: string): string => encodeURIComponent(s);
  const range = `start=${dataset.startMs / 1000}&end=${dataset.endMs / 1000}&step=60`;
  return [
    { path: `/api/v1/query?query=${q('sum(')}&time=${t}`, why: 'unclosed parenthesis' },
    { path: `/api/v1/query?query=${q('1 +')}&time=${t}`, why: 'missing operand' },
    { path: `/api/v1/query?query=${q('DCGM_FI_DEV_GPU_TEMP{Hostname=}')}&time=${t}`, why: 'no label value' },
    { path: `/api/v1/query?query=${q('{}')}&time=${t}`, why: 'selector without a non-empty matcher' },
    {
      path: `/api/v1/query?query=${q('no_such_function(DCGM_FI_DEV_GPU_TEMP)')}&time=${t}`,
      why: 'unknown function',
    },
    {
      path: `/api/v1/query?query=${q('rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION)')}&time=${t}`,
      why: 'instant vector where a range vector is expected',
    },
    { path: `/api/v1/query?query=${q('topk(DCGM_FI_DEV_GPU_TEMP)')}&time=${t}`, why: 'missing parameter' },
    { path: `/api/v1/query?query=${q('DCGM_FI_DEV_GPU_TEMP')}&time=yesterday`, why: 'bad time' },
    { path: `/api/v1/query?time=${t}`, why: 'no query' },
    {
      path: `/api/v1/query_range?query=${q('DCGM_FI_DEV_GPU_TEMP[5m]')}&${range}`,
      why: 'range vector in a range query',
    },
    { path: `/api/v1/query_range?query=${q('sum(')}&${range}`, why: 'parse error in a range query' },
    {
      path: `/api/v1/query_range?query=${q('DCGM_FI_DEV_GPU_TEMP')}&start=${dataset.startMs / 1000}&end=${dataset.endMs / 1000}&step=0`,
      why: 'zero step',
    },
    {
      path: `/api/v1/query_range?query=${q('DCGM_FI_DEV_GPU_TEMP')}&start=${dataset.endMs / 1000}&end=${dataset.startMs / 1000}&step=60`,
      why: 'end before start',
    },
    {
      path: `/api/v1/query_range?query=${q('DCGM_FI_DEV_GPU_TEMP')}&start=${dataset.startMs / 1000}&end=${dataset.endMs / 1000}&step=0.5`,
      why: 'more than 11,000 points per series',
    },
    {
      path: `/api/v1/query?query=${q('DCGM_FI_DEV_GPU_TEMP + ignoring (gpu, UUID, device) DCGM_FI_DEV_GPU_TEMP')}&time=${t}`,
      why: 'many-to-many matching',
      errorType: 'execution',
    },
    {
      path: `/api/v1/query?query=${q('rate({__name__=~"DCGM_FI_DEV_FB_.*"}[5m])')}&time=${t}`,
      why: 'two series with one label set once the name is dropped',
      errorType: 'execution',
    },
    {
      path: `/api/v1/query?query=${q('label_replace(DCGM_FI_DEV_GPU_TEMP, "1bad", "x", "gpu", ".*")')}&time=${t}`,
      why: 'invalid destination label name',
      errorType: 'execution',
    },
  ];
}
