/**
 * The GraphQL schema in SDL, with a description on every type, field, argument and enum value
 * (docs/graphql.md is generated from the same text). TelemetryData has one field per catalog
 * metric (friendly name), so the guide's `data { gpuUtilization temperature powerDraw }` works
 * and every other DCGM metric is there too.
 */
import { DCGM_FIELDS } from '../../domain/catalog.js';
import { HEALTH_TEMPERATURE_LIMIT_C } from './health.js';

const metricFields = DCGM_FIELDS.map(
  (f) => `  """${f.description} (${f.unit}; DCGM field \`${f.field}\`, ${f.kind}). Null when not reported."""
  ${f.friendlyName}: Float`,
).join('\n');

const telemetryArgs = `
    """Earliest sample time, inclusive."""
    from: DateTime
    """Latest sample time, inclusive."""
    to: DateTime
    """Only these metrics: friendly names (gpuUtilization) or DCGM field names (DCGM_FI_DEV_GPU_UTIL)."""
    metrics: [String!]
    """Most samples to return, 1 to 10000."""
    limit: Int = 100
    """Time order of the samples."""
    order: SortOrder = DESC
    """
    \`raw\` (default) for stored samples, \`1m\` or \`1h\` for rollup buckets (value = average, see
    TelemetrySample.aggregate), \`auto\` to choose from the time range (raw up to 6 h, 1m up to 7 days,
    1h beyond; raw without \`from\`). TelemetryPage.resolution says what was served.
    """
    resolution: String`;

/** The schema definition language text of the API. */
export const SDL = `
"""
An instant as an RFC 3339 string in UTC with millisecond precision, e.g. \`2025-07-18T20:42:34.000Z\`.
Inputs accept any RFC 3339 date-time with an offset.
"""
scalar DateTime

"""Reads of the live hierarchy (Cluster -> Host -> GPU), stored telemetry, dead letters and services."""
type Query {
  """Every cluster in the live hierarchy, ordered by id."""
  clusters: [Cluster!]!
  """
  One cluster. An id no collector has reported is an error with code NOT_FOUND whose message names
  the cluster and lists the known ones (e.g. the guide's \`my-cluster\` on a server started with
  \`--cluster-id local\`).
  """
  cluster(
    """Cluster id (the CLUSTER_ID its collectors run with)."""
    id: ID!
  ): Cluster
  """One host of a cluster, or null when the host is unknown (an unknown cluster is NOT_FOUND)."""
  host(
    """Cluster id."""
    clusterId: ID!
    """Host name."""
    hostId: ID!
  ): Host
  """
  One GPU, or null when unknown: by UUID alone, or by its index within a host (then clusterId and
  hostId are required: an index alone names a different GPU on every host). A clusterId naming no
  known cluster is NOT_FOUND.
  """
  gpu(
    """GPU UUID, or index within the host."""
    id: ID!
    """Cluster id (required with an index)."""
    clusterId: ID
    """Host name (required with an index)."""
    hostId: ID
  ): GPU
  """Stored samples of one GPU, by UUID or by index within a host."""
  telemetry(
    """GPU UUID, or index within the host (then clusterId and hostId are required)."""
    gpuId: ID!
    """Cluster id (required with an index)."""
    clusterId: ID
    """Host name (required with an index)."""
    hostId: ID${telemetryArgs}
  ): TelemetryPage!
  """Input rows the pipeline refused, newest first."""
  deadLetters(
    """Most rows to return, 1 to 10000."""
    limit: Int = 100
    """Only rows from this source (file path, \`stdin\`, ...)."""
    source: String
  ): [DeadLetter!]!
  """Pipeline processes registered in service discovery (each on a lease)."""
  services(
    """Only services of this type."""
    type: ServiceType
  ): [Service!]!
  """Every DCGM metric the API knows by name, with unit and kind."""
  metricCatalog: [MetricInfo!]!
  """
  Workload attribution over a time range (docs/analytics.md): GPU-hours allocated and busy, energy,
  utilization, memory and cost (ANALYTICS_PRICES) per group. Reads count against READ_MAX_ROWS;
  REST (/api/v1/analytics/attribution) answers the same and serves long ranges.
  """
  analyticsAttribution(
    """Range start, inclusive (default: a day before \`to\`)."""
    from: DateTime
    """Range end, exclusive (default: now)."""
    to: DateTime
    """\`raw\` samples, \`rollup\` (1m/1h buckets wherever whole; the same answer), or \`auto\` (raw up to 6 h)."""
    resolution: String = "auto"
    """Scrape interval of every GPU, e.g. \`30s\`; default: estimated per GPU (median sample spacing)."""
    interval: String
    """namespace, pod (keyed namespace/pod), container, label:<name>, host or model."""
    by: String = "namespace"
  ): [AttributionRow!]!
  """GPUs held by a workload with utilization under a threshold for at least a duration (minute grain)."""
  analyticsIdle(
    """Range start, inclusive (default: a day before \`to\`)."""
    from: DateTime
    """Range end, exclusive (default: now)."""
    to: DateTime
    """\`raw\` samples, \`rollup\` (1m/1h buckets wherever whole; the same answer), or \`auto\` (raw up to 6 h)."""
    resolution: String = "auto"
    """Scrape interval of every GPU, e.g. \`30s\`; default: estimated per GPU (median sample spacing)."""
    interval: String
    """Utilization (%) under which a minute is idle."""
    threshold: Float = 5
    """Shortest stretch listed (time held while idle), e.g. \`30m\`."""
    duration: String = "30m"
  ): [IdleStretch!]!
  """GPUs whose temperature, power or SM clock departs from their siblings (same host and model)."""
  analyticsOutliers(
    """Range start, inclusive (default: a day before \`to\`)."""
    from: DateTime
    """Range end, exclusive (default: now)."""
    to: DateTime
    """\`raw\` samples, \`rollup\` (1m/1h buckets wherever whole; the same answer), or \`auto\` (raw up to 6 h)."""
    resolution: String = "auto"
    """Scrape interval of every GPU, e.g. \`30s\`; default: estimated per GPU (median sample spacing)."""
    interval: String
    """Robust deviations (median/MAD) beyond which a minute is out of line."""
    k: Float = 5
    """Shortest stretch listed, e.g. \`10m\`."""
    duration: String = "10m"
  ): [PeerOutlier!]!
  """
  The coordination store's current revision, as a cursor: pass it as telemetryUpdates(after:) to get
  every change after this point (ask for it before the data it should cover).
  """
  cursor: String!
  """
  Alert instances of the alert rules (docs/alerting.md): pending, firing, and resolved ones whose
  notifications are still being sent, oldest first. As GET /api/v1/alerts, with the state's times.
  """
  alerts(
    """Only this cluster."""
    clusterId: ID
    """Only alerts in this state."""
    state: AlertState
  ): [Alert!]!
}

"""Live updates pushed from the collector's writes to the hierarchy."""
type Subscription {
  """
  Changes to the live hierarchy, in order, each with a cursor. Filters narrow what is sent; with
  \`after\` the stream resumes after that cursor (missed events first), or starts with a RESYNC marker
  and a snapshot when that history is gone.
  """
  telemetryUpdates(
    """
    Only this cluster. A cluster not registered in the live hierarchy is an error with code NOT_FOUND
    (listing the known ones), unless waitForCluster is true.
    """
    clusterId: ID
    """Only this host (and its GPUs)."""
    hostId: ID
    """Only this GPU: UUID, or index within hostId."""
    gpuId: ID
    """Only GPU updates carrying one of these metrics (friendly or DCGM names); data is narrowed to them."""
    metrics: [String!]
    """Only these kinds of events (RESYNC markers are always sent)."""
    eventTypes: [TelemetryEventType!]
    """Resume after this cursor (the \`cursor\` of the last event processed)."""
    after: String
    """Start with one SNAPSHOT event per GPU (current values), then live updates."""
    snapshot: Boolean = false
    """
    With clusterId: accept a cluster that is not registered yet and deliver its events once a
    collector reports it (e.g. subscribing before the first ingest in nexus mode), instead of NOT_FOUND.
    """
    waitForCluster: Boolean = false
  ): TelemetryEvent!
  """
  telemetryUpdates framed: each result holds the events that arrived together (one collector write
  of many GPUs, a whole snapshot, or several writes back to back), at most 500, in order; same
  arguments and events. A burst costs a subscriber one message instead of one per GPU.
  """
  telemetryUpdateBatches(
    """
    Only this cluster. A cluster not registered in the live hierarchy is an error with code NOT_FOUND
    (listing the known ones), unless waitForCluster is true.
    """
    clusterId: ID
    """Only this host (and its GPUs)."""
    hostId: ID
    """Only this GPU: UUID, or index within hostId."""
    gpuId: ID
    """Only GPU updates carrying one of these metrics (friendly or DCGM names); data is narrowed to them."""
    metrics: [String!]
    """Only these kinds of events (RESYNC markers are always sent)."""
    eventTypes: [TelemetryEventType!]
    """Resume after this cursor (the \`cursor\` of the last event processed)."""
    after: String
    """Start with one SNAPSHOT event per GPU (current values), then live updates."""
    snapshot: Boolean = false
    """
    With clusterId: accept a cluster that is not registered yet and deliver its events once a
    collector reports it (e.g. subscribing before the first ingest in nexus mode), instead of NOT_FOUND.
    """
    waitForCluster: Boolean = false
  ): TelemetryEventBatch!
  """Alert state changes from now on: PENDING, FIRING, RESOLVED, CANCELLED (docs/alerting.md)."""
  alertUpdates(
    """Only this cluster."""
    clusterId: ID
  ): AlertEvent!
}

"""State of an alert instance."""
enum AlertState {
  """The expression holds, for less than the rule's \`for\` so far."""
  PENDING
  """The alert fired and is not resolved."""
  FIRING
  """Resolved, or cancelled before it fired."""
  INACTIVE
}

"""What happened to an alert."""
enum AlertEventKind {
  """The rule's expression holds; firing once it has held for the rule's \`for\`."""
  PENDING
  """The expression held for the rule's \`for\`: notifications are sent."""
  FIRING
  """The expression stopped holding (after \`keep_firing_for\`); a resolution is sent."""
  RESOLVED
  """The expression stopped holding before \`for\` passed (the alert never fired)."""
  CANCELLED
}

"""One alert instance: a rule and one label set its expression returned."""
type Alert {
  """Cluster id and storage id."""
  id: ID!
  """Cluster whose data the rule was evaluated on."""
  clusterId: ID!
  """Hash of the rule and the labels."""
  fingerprint: String!
  """The rule's alert name."""
  name: String!
  """Current state."""
  state: AlertState!
  """Labels, alertname included, sorted by name."""
  labels: [Label!]!
  """Annotations with templates expanded, sorted by name."""
  annotations: [Label!]!
  """The expression's value at the last state change."""
  value: Float!
  """Since when the expression holds (pending since)."""
  activeAt: DateTime!
  """When it fired (Alertmanager's startsAt)."""
  firedAt: DateTime
  """When it resolved."""
  resolvedAt: DateTime
}

"""One change of an alert's state."""
type AlertEvent {
  """What happened."""
  kind: AlertEventKind!
  """Coordination revision of the write."""
  revision: String!
  """The alert after the change."""
  alert: Alert!
}

"""A cluster of hosts reporting through one collector group."""
type Cluster {
  """Cluster id."""
  id: ID!
  """Display name (CLUSTER_NAME)."""
  name: String!
  """Region (CLUSTER_REGION)."""
  region: String!
  """Hosts known in the cluster."""
  totalHosts: Int!
  """GPUs known in the cluster."""
  totalGPUs: Int!
  """Hosts seen within STALE_AFTER."""
  activeHosts: Int!
  """GPUs seen within STALE_AFTER."""
  activeGPUs: Int!
  """When a collector last wrote the cluster record."""
  lastSeen: DateTime!
  """Hosts ordered by host name (natural order)."""
  hosts: [Host!]!
  """One host by name, or null."""
  host(
    """Host name."""
    id: ID!
  ): Host
}

"""A machine with GPUs."""
type Host {
  """Host name (the DCGM Hostname label)."""
  id: ID!
  """Host name."""
  hostname: String!
  """Cluster the host belongs to."""
  clusterId: ID!
  """The cluster."""
  cluster: Cluster
  """Seen within STALE_AFTER."""
  active: Boolean!
  """When a collector last saw the host."""
  lastSeen: DateTime!
  """GPUs known on the host."""
  gpuCount: Int!
  """GPUs seen within STALE_AFTER."""
  activeGpuCount: Int!
  """GPUs ordered by index."""
  gpus: [GPU!]!
  """One GPU by index within the host or by UUID, or null."""
  gpu(
    """Index within the host, or UUID."""
    id: ID!
  ): GPU
}

"""One GPU with its latest values."""
type GPU {
  """GPU UUID: the global identity of the GPU."""
  id: ID!
  """GPU UUID (same as id)."""
  uuid: String!
  """Index of the GPU within its host (DCGM gpu_id), e.g. "0"."""
  index: String!
  """Product name (DCGM modelName), e.g. NVIDIA H100 80GB HBM3."""
  deviceName: String!
  """Device node (DCGM device), e.g. nvidia0."""
  device: String!
  """Product name (DCGM modelName)."""
  modelName: String!
  """Host name."""
  hostId: ID!
  """The host."""
  host: Host
  """Cluster id."""
  clusterId: ID!
  """
  Seen within STALE_AFTER, and not gone: false at once when the newest complete scrape of the
  target it came from did not expose it (see goneSince).
  """
  active: Boolean!
  """When the newest complete scrape of its target left it out; null while it is exposed."""
  goneSince: DateTime
  """When a collector last wrote the GPU record."""
  lastSeen: DateTime!
  """Time of the newest sample seen (of the GPU or any of its MIG instances), or null before the first."""
  lastSample: DateTime
  """Latest status values and health."""
  status: GPUStatus!
  """Health from the GPU's DCGM fields: state, since when, and why (docs/alerting.md)."""
  health: GPUHealth!
  """Latest value of every metric of the GPU's own series, by DCGM field name (never its MIG instances')."""
  metrics: [MetricValue!]!
  """
  MIG instances of this GPU (dcgm-exporter's GPU_I_ID), ordered by instance id; empty when MIG is
  off. Each has its own values and series.
  """
  migInstances: [MigInstance!]!
  """Stored samples of this GPU's own series (its MIG instances' are under migInstances)."""
  telemetry(${telemetryArgs}
  ): TelemetryPage!
}

"""A MIG GPU instance: a partition of a GPU with its own values and series, never mixed with its GPU's."""
type MigInstance {
  """GPU instance id (dcgm-exporter's GPU_I_ID), unique within its GPU."""
  id: ID!
  """GPU instance profile (GPU_I_PROFILE), e.g. 1g.10gb; empty when not reported."""
  profile: String!
  """UUID of the instance's GPU."""
  gpuId: ID!
  """Index of the instance's GPU within its host."""
  gpuIndex: String!
  """Host name."""
  hostId: ID!
  """Cluster id."""
  clusterId: ID!
  """Seen within STALE_AFTER, and not gone (see goneSince)."""
  active: Boolean!
  """When the newest complete scrape of its target left it out; null while it is exposed."""
  goneSince: DateTime
  """When a collector last wrote the instance record."""
  lastSeen: DateTime!
  """Time of the instance's newest sample, or null before the first."""
  lastSample: DateTime
  """Latest value of every metric of the instance, by DCGM field name."""
  metrics: [MetricValue!]!
  """Stored samples of this instance only."""
  telemetry(${telemetryArgs}
  ): TelemetryPage!
}

"""
Latest values of the main metrics, and health. A GPU is healthy when it is active (seen within
STALE_AFTER) and its health (GPU.health) has no reason other than STALE or GPU_MISSING (which
INACTIVE stands for here): e.g. its temperature is below its model's slowdown limit
(${HEALTH_TEMPERATURE_LIMIT_C} C for a model not in the table), no XID error within the hold window, row
remapping has not failed. healthIssues lists what failed.
"""
type GPUStatus {
  """GPU utilization, % (DCGM_FI_DEV_GPU_UTIL)."""
  utilizationPercent: Float
  """GPU temperature, C (DCGM_FI_DEV_GPU_TEMP)."""
  temperatureCelsius: Float
  """Memory temperature, C (DCGM_FI_DEV_MEMORY_TEMP)."""
  memoryTemperatureCelsius: Float
  """Power draw, W (DCGM_FI_DEV_POWER_USAGE)."""
  powerWatts: Float
  """Framebuffer memory used, MiB (DCGM_FI_DEV_FB_USED)."""
  memoryUsedMiB: Float
  """Framebuffer memory free, MiB (DCGM_FI_DEV_FB_FREE)."""
  memoryFreeMiB: Float
  """Memory copy utilization, % (DCGM_FI_DEV_MEM_COPY_UTIL)."""
  memoryCopyUtilizationPercent: Float
  """SM clock, MHz (DCGM_FI_DEV_SM_CLOCK)."""
  smClockMHz: Float
  """Memory clock, MHz (DCGM_FI_DEV_MEM_CLOCK)."""
  memClockMHz: Float
  """Code of the last XID error (DCGM_FI_DEV_XID_ERRORS); 0 means none."""
  lastXidError: Float
  """Seen within STALE_AFTER."""
  active: Boolean!
  """True when healthIssues is empty (see the type description for the rule)."""
  healthy: Boolean!
  """Every health rule the GPU fails, empty when healthy."""
  healthIssues: [HealthIssue!]!
}

"""
Health of a GPU from its DCGM fields (XID errors, ECC, retired pages and remapped rows, throttle
reasons, temperature against the model's limit, PCIe and NVLink error counters, presence and
staleness by sample time): the worst severity of its reasons.
"""
type GPUHealth {
  """OK, WARNING or CRITICAL."""
  state: HealthState!
  """Sample time the GPU entered this state."""
  since: DateTime!
  """Why it is not OK, most severe first; empty when OK."""
  reasons: [HealthReason!]!
}

"""Overall health of a GPU."""
enum HealthState {
  """No reason."""
  OK
  """At least one reason, none critical."""
  WARNING
  """At least one critical reason."""
  CRITICAL
}

"""Severity of one health reason."""
enum HealthSeverity {
  """Worth a look (throttling, a counter rising, stale data)."""
  WARNING
  """The GPU is failing or unusable (double-bit ECC, fallen off the bus, hardware thermal slowdown)."""
  CRITICAL
}

"""One reason behind a GPU's health state."""
type HealthReason {
  """What it is."""
  code: HealthIssue!
  """How serious."""
  severity: HealthSeverity!
  """One line for people (an XID's meaning, a counter's value, the temperature limit)."""
  message: String!
  """Sample time the reason began."""
  since: DateTime!
  """The DCGM field behind it, when there is one."""
  field: String
  """The field's value that raised it (XID code, counter value, temperature, throttle bit field)."""
  value: Float
}

"""A health issue: a reason code of the health model, or INACTIVE."""
enum HealthIssue {
  """Not seen within STALE_AFTER."""
  INACTIVE
  """GPU temperature at or above its model's slowdown limit (${HEALTH_TEMPERATURE_LIMIT_C} C for an unknown model)."""
  OVERHEATING
  """An XID error was reported within the hold window (5 min of sample time)."""
  XID_ERROR
  """Row remapping failed (DCGM_FI_DEV_ROW_REMAP_FAILURE)."""
  ROW_REMAP_FAILURE
  """Double-bit ECC errors rose within the hold window (DCGM_FI_DEV_ECC_DBE_VOL_TOTAL)."""
  ECC_DBE
  """Pages were retired for double-bit errors within the hold window (DCGM_FI_DEV_RETIRED_DBE)."""
  RETIRED_PAGES
  """Rows were remapped for uncorrectable errors within the hold window."""
  ROWS_REMAPPED
  """Clocks lowered to stay under the power cap (throttle reasons bit 0x4)."""
  THROTTLE_SW_POWER_CAP
  """Hardware slowdown (bit 0x8)."""
  THROTTLE_HW_SLOWDOWN
  """Software thermal slowdown (bit 0x20)."""
  THROTTLE_SW_THERMAL
  """Hardware thermal slowdown (bit 0x40)."""
  THROTTLE_HW_THERMAL
  """Hardware power brake (bit 0x80)."""
  THROTTLE_HW_POWER_BRAKE
  """PCIe replays rose within the hold window."""
  PCIE_REPLAYS
  """NVLink error counters rose within the hold window."""
  NVLINK_ERRORS
  """Gone from its scrape target (health reasons only; healthIssues says INACTIVE)."""
  GPU_MISSING
  """No sample within STALE_AFTER of now, by sample time (health reasons only)."""
  STALE
  """Temperature, power or SM clock departs from its siblings (same host and model) by more than k robust deviations for a while (the outlier watch, docs/analytics.md)."""
  PEER_OUTLIER
}

"""Latest value of one metric."""
type MetricValue {
  """DCGM field name, e.g. DCGM_FI_DEV_GPU_UTIL."""
  field: String!
  """Friendly name, e.g. gpuUtilization; null for fields the catalog does not know."""
  name: String
  """Unit, e.g. %, C, W, MiB; null for unknown fields."""
  unit: String
  """Gauge or counter; null for unknown fields."""
  kind: MetricKind
  """The value (never NaN or infinite: such values are null)."""
  value: Float
  """Sample time."""
  timestamp: DateTime!
}

"""How a metric behaves."""
enum MetricKind {
  """A value that goes up and down."""
  GAUGE
  """A running total."""
  COUNTER
}

"""A metric the catalog knows."""
type MetricInfo {
  """DCGM field name."""
  field: String!
  """Friendly name used in TelemetryData and filters."""
  name: String!
  """Unit."""
  unit: String!
  """Gauge or counter."""
  kind: MetricKind!
  """What the metric measures."""
  description: String!
}

"""One page of stored samples."""
type TelemetryPage {
  """Samples in the requested order."""
  samples: [TelemetrySample!]!
  """True when more samples matched than limit returned."""
  hasMore: Boolean!
  """Resolution served: \`raw\` (one row per stored sample), \`1m\` or \`1h\` (one row per bucket)."""
  resolution: String!
}

"""One stored sample of one metric of one GPU."""
type TelemetrySample {
  """Sample time."""
  timestamp: DateTime!
  """DCGM field name."""
  metric: String!
  """Friendly name, or null for fields the catalog does not know."""
  name: String
  """Unit, or null."""
  unit: String
  """The value (never NaN or infinite)."""
  value: Float
  """GPU UUID."""
  gpuId: ID!
  """Index of the GPU within its host."""
  gpuIndex: String!
  """Host name."""
  hostId: ID!
  """Cluster id."""
  clusterId: ID!
  """Workload attribution: container, empty when none."""
  container: String!
  """Workload attribution: pod, empty when none."""
  pod: String!
  """Workload attribution: namespace, empty when none."""
  namespace: String!
  """Every label of the series, as exported."""
  labels: [Label!]!
  """At resolution 1m or 1h: the samples of the bucket starting at timestamp (value is their average); null for raw samples."""
  aggregate: SampleAggregate
}

"""Summary of the samples of one rollup bucket."""
type SampleAggregate {
  """Smallest value."""
  min: Float
  """Largest value."""
  max: Float
  """Average."""
  avg: Float
  """Number of samples."""
  count: Int!
  """Value of the newest sample in the bucket."""
  last: Float
}

"""A label of a series."""
type Label {
  """Label name."""
  name: String!
  """Label value."""
  value: String!
}

"""Time order."""
enum SortOrder {
  """Oldest first."""
  ASC
  """Newest first."""
  DESC
}

"""An input row the pipeline refused."""
type DeadLetter {
  """Storage id."""
  id: ID!
  """Source name (file path, stdin, ...)."""
  source: String!
  """1-based line in the source where the row starts."""
  line: Int!
  """The raw row, truncated."""
  raw: String!
  """Machine-readable reason, e.g. non_finite_value."""
  reason: String!
  """Human detail of the reason."""
  detail: String!
  """When the row was stored."""
  receivedAt: DateTime!
}

"""Kind of pipeline process."""
enum ServiceType {
  """Reads sources and publishes batches."""
  STREAMER
  """Consumes batches into storage and the hierarchy."""
  COLLECTOR
  """Serves the API."""
  API
}

"""Health a process reports about itself."""
enum ServiceHealth {
  """Working."""
  OK
  """Working with problems."""
  DEGRADED
}

"""A registered pipeline process."""
type Service {
  """Kind of process."""
  type: ServiceType!
  """Its id (COLLECTOR_ID, SERVICE_ID)."""
  id: ID!
  """Where to reach it, empty for processes without a listener."""
  address: String!
  """Software version."""
  version: String!
  """Start time."""
  startedAt: DateTime
  """Self-reported health."""
  health: ServiceHealth!
  """Process id."""
  pid: Int
  """Machine name."""
  hostname: String
}

"""Kinds of stream events."""
enum TelemetryEventType {
  """A GPU record was written: new latest values."""
  GPU_UPDATE
  """
  A GPU record was written and its health state or reasons changed (a GPU_UPDATE with news: a
  GPU_UPDATE filter receives these too).
  """
  GPU_HEALTH
  """
  A GPU record was written marking it gone: the newest complete scrape of its target did not expose
  it, so it is inactive from now on (until a GPU_UPDATE shows it again).
  """
  GPU_INACTIVE
  """A GPU record was deleted."""
  GPU_REMOVED
  """
  The outlier watch marked the GPU as departing from its siblings (same host and model), or cleared
  the mark (outlier is then null). Its health shows PEER_OUTLIER while marked.
  """
  GPU_OUTLIER
  """A MIG instance record was written: new latest values of the instance (migInstance says which)."""
  MIG_UPDATE
  """A MIG instance was marked gone, like GPU_INACTIVE."""
  MIG_INACTIVE
  """A MIG instance record was deleted."""
  MIG_REMOVED
  """A host record was written (registration or last-seen refresh)."""
  HOST_UPDATE
  """A host record was deleted."""
  HOST_REMOVED
  """A cluster record was written."""
  CLUSTER_UPDATE
  """A cluster record was deleted."""
  CLUSTER_REMOVED
  """Current state of one GPU, sent on request or after a RESYNC."""
  SNAPSHOT
  """
  The stream could not replay the history after the client's cursor: discard local state; the
  next snapshotSize events are SNAPSHOT events, then live updates follow.
  """
  RESYNC
}

"""Why a stream restarted from a snapshot."""
enum ResyncReason {
  """The history after the cursor was compacted away."""
  COMPACTED
  """The cursor is ahead of the store (a different store, or a bad cursor)."""
  UNKNOWN_CURSOR
  """The server's watch broke and was restarted."""
  RESTARTED
  """Too many clients were replaying old history at once."""
  REPLAY_LIMIT
}

"""Events of telemetryUpdateBatches that arrived together, in order."""
type TelemetryEventBatch {
  """Cursor of the last event: resume with telemetryUpdateBatches(after:) or telemetryUpdates(after:)."""
  cursor: String!
  """The events, in order (at most 500)."""
  events: [TelemetryEvent!]!
}

"""One change to the live hierarchy."""
type TelemetryEvent {
  """
  Resume point: "R.i", change number i (from 0) of coordination revision R (the etcd revision in
  nexus mode; one revision updates many GPUs); "R" for SNAPSHOT and RESYNC. Pass the cursor of the
  last event processed as telemetryUpdates(after:) after a reconnect.
  """
  cursor: String!
  """Kind of change."""
  eventType: TelemetryEventType!
  """Newest sample time for GPU events; the time of the change otherwise."""
  timestamp: DateTime!
  """When the collector wrote the record (its clock); null when unknown."""
  observedAt: DateTime
  """Cluster id (empty for RESYNC)."""
  clusterId: ID!
  """Host name, for host and GPU events."""
  hostId: ID
  """GPU UUID, for GPU events."""
  gpuId: ID
  """Index of the GPU within its host, for GPU events."""
  gpuIndex: String
  """MIG events: the GPU instance id (GPU_I_ID) under the GPU; null for other events."""
  migInstance: String
  """
  GPU and MIG updates and snapshots: false when the GPU or instance is gone (its target's newest
  complete scrape did not expose it); null for other events.
  """
  active: Boolean
  """Product name, for GPU updates and snapshots."""
  deviceName: String
  """Latest values, for GPU and MIG updates and snapshots (narrowed by the metrics filter)."""
  data: TelemetryData
  """GPU events: the health the record stores (STALE, judged at read time, is not in it)."""
  health: GPUHealth
  """RESYNC only: why."""
  resyncReason: ResyncReason
  """RESYNC only: how many SNAPSHOT events follow."""
  snapshotSize: Int
  """GPU_OUTLIER only: the mark; null when the GPU is back in line with its siblings."""
  outlier: OutlierMark
}

"""The outlier watch's mark on a GPU departing from its siblings (docs/analytics.md, "Peer outliers")."""
type OutlierMark {
  """temperature, power or sm_clock."""
  signal: String!
  """Start of the ongoing stretch (sample time)."""
  since: DateTime!
  """Largest deviation of the stretch, in robust deviations (median/MAD)."""
  maxScore: Float!
  """Mean of (value - siblings' median) over the stretch, in the signal's unit."""
  meanDeviation: Float!
  """GPUs compared, this one included."""
  peers: Int!
  """The PEER_OUTLIER health reason's message."""
  message: String!
}

"""Latest values of a GPU's metrics by friendly name; null when not reported (or filtered out)."""
type TelemetryData {
${metricFields}
  """Every value, including DCGM fields the catalog does not name."""
  values: [MetricValue!]!
}

"""One group of an attribution (docs/analytics.md has the arithmetic)."""
type AttributionRow {
  """The group: a namespace, namespace/pod, container, label value, host or model (empty: no such label)."""
  key: String!
  """Distinct GPUs (MIG instances separately) that carried the group's samples."""
  gpus: Int!
  """GPU-hours held: utilization samples x scrape interval (MIG: x N/7)."""
  gpuHoursAllocated: Float!
  """GPU-hours busy: sum of utilization/100 x scrape interval (MIG: x N/7)."""
  gpuHoursBusy: Float!
  """Energy: sum of power samples x scrape interval, kWh."""
  energyKwh: Float!
  """Mean utilization, %."""
  avgUtilization: Float!
  """Highest utilization sample, %."""
  peakUtilization: Float!
  """Mean framebuffer used, MiB."""
  avgMemoryUsedMiB: Float!
  """Highest framebuffer used, MiB."""
  peakMemoryUsedMiB: Float!
  """Allocated GPU-hours x the price of each series' model (ANALYTICS_PRICES)."""
  allocatedCost: Float!
  """Busy GPU-hours x the price of each series' model."""
  effectiveCost: Float!
  """1 - busy / allocated."""
  wasteFraction: Float!
}

"""A stretch in which a workload held a GPU with utilization under the threshold."""
type IdleStretch {
  """Kubernetes namespace of the workload (dcgm-exporter's \`namespace\` label); empty when none."""
  namespace: String!
  """Pod of the workload; empty when none."""
  pod: String!
  """Container of the workload; empty when none."""
  container: String!
  """Host name."""
  hostname: String!
  """GPU index within the host."""
  gpuId: String!
  """GPU UUID."""
  uuid: String!
  """GPU model."""
  modelName: String!
  """MIG instance id (GPU_I_ID); empty for a whole GPU."""
  migInstance: String!
  """Start of the first idle minute."""
  start: DateTime!
  """End of the last idle minute."""
  end: DateTime!
  """Time held while idle (samples x interval), seconds."""
  idleSeconds: Float!
  """GPU-hours held while idle (MIG: x N/7)."""
  gpuHoursWasted: Float!
  """Highest utilization in the stretch, %."""
  maxUtilization: Float!
}

"""A stretch in which one GPU stood out from its siblings on one signal."""
type PeerOutlier {
  """Cluster id."""
  clusterId: String!
  """Host name."""
  hostname: String!
  """GPU index within the host."""
  gpuId: String!
  """GPU UUID."""
  uuid: String!
  """GPU model (its siblings are the GPUs of the same host and model)."""
  modelName: String!
  """temperature, power or sm_clock."""
  signal: String!
  """Start of the stretch."""
  start: DateTime!
  """End of the stretch."""
  end: DateTime!
  """Largest robust score in the stretch."""
  maxScore: Float!
  """Mean distance from the siblings' median, in the signal's unit (temperature and power after taking load out)."""
  meanDeviation: Float!
  """GPUs compared (the most in any minute of the stretch)."""
  peers: Int!
}
`;
