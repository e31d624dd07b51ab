/** Location of the DCGM sample shipped with the package (sample/ at the package root). */
import { fileURLToPath } from 'node:url';

export const BUNDLED_SAMPLE_NAME = 'dcgm_metrics_20250718_134233.csv';

/** Absolute path of the bundled sample; works from src/ (tsx) and dist/ (built) alike. */
export function bundledSamplePath(): string {
  return fileURLToPath(new URL(`../../sample/${BUNDLED_SAMPLE_NAME}`, import.meta.url));
}
