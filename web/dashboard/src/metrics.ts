// The metrics the dashboard shows: DCGM field, friendly name (the /ws `data` key), label, unit, scale.
import { DCGM_FIELDS } from '../../../src/domain/catalog';

/** A metric as the dashboard shows it. */
export interface MetricInfo {
  field: string;
  friendly: string;
  label: string;
  unit: string;
}

const BY_FIELD = new Map<string, MetricInfo>(
  DCGM_FIELDS.map((f) => [
    f.field,
    { field: f.field, friendly: f.friendlyName, label: f.description, unit: f.unit },
  ]),
);
const BY_FRIENDLY = new Map<string, MetricInfo>([...BY_FIELD.values()].map((m) => [m.friendly, m]));

/** Catalog entry of a DCGM field (a bare entry for fields the catalog does not know). */
export function metricInfo(field: string): MetricInfo {
  return BY_FIELD.get(field) ?? { field, friendly: field, label: field, unit: '' };
}

/** DCGM field of a /ws `data` key (friendly name, or a DCGM name for uncatalogued fields). */
export function fieldOf(key: string): string {
  return BY_FRIENDLY.get(key)?.field ?? key;
}

/** The metrics a tile can be coloured by, with the range its colour scale spans. */
export const HEAT_METRICS: { field: string; min: number; max: number }[] = [
  { field: 'DCGM_FI_DEV_GPU_UTIL', min: 0, max: 100 },
  { field: 'DCGM_FI_DEV_GPU_TEMP', min: 20, max: 95 },
  { field: 'DCGM_FI_DEV_POWER_USAGE', min: 0, max: 700 },
  { field: 'DCGM_FI_DEV_FB_USED', min: 0, max: 81_559 },
  { field: 'DCGM_FI_DEV_MEM_COPY_UTIL', min: 0, max: 100 },
];

/** The four distributions of the overview. */
export const OVERVIEW_METRICS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_GPU_TEMP',
  'DCGM_FI_DEV_POWER_USAGE',
  'DCGM_FI_DEV_FB_USED',
];

/** A value for display: at most 3 significant decimals, with its unit. */
export function formatValue(value: number | undefined, unit = ''): string {
  if (value === undefined) return '–';
  const text = Number.isInteger(value) ? String(value) : String(Number(value.toFixed(2)));
  return unit && unit !== 'count' && unit !== 'code' && unit !== 'status' ? `${text} ${unit}` : text;
}

/** Heat colour of a value on [min, max]: blue (cold) -> green -> yellow -> red (hot). */
export function heatColor(value: number | undefined, min: number, max: number): string {
  if (value === undefined) return 'var(--tile-empty)';
  const x = Math.min(1, Math.max(0, (value - min) / (max - min || 1)));
  // Hue 220 (blue) down to 0 (red); lightness kept so dark text stays readable on every colour.
  return `hsl(${Math.round(220 - 220 * x)} 70% 72%)`;
}
