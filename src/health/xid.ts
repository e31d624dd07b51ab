/**
 * XID error catalog: what the common XID codes the NVIDIA driver logs mean, in one line each (our
 * own words, after NVIDIA's XID catalog), and how serious each is for the GPU's health. A code not
 * listed is a warning with a generic meaning.
 */
import type { HealthSeverity } from './types.js';

/** One XID code's meaning and severity. */
export interface XidInfo {
  code: number;
  severity: HealthSeverity;
  meaning: string;
}

const x = (code: number, severity: HealthSeverity, meaning: string): XidInfo => ({ code, severity, meaning });

/** The common XIDs, by code. */
export const XID_CATALOG: readonly XidInfo[] = [
  x(
    13,
    'warning',
    'graphics engine exception: usually an application fault (bad address, illegal instruction)',
  ),
  x(31, 'warning', 'GPU memory page fault: usually an application accessing memory it does not own'),
  x(43, 'warning', 'GPU stopped processing: a user application hit a fault and was stopped'),
  x(45, 'warning', 'preemptive cleanup: work was torn down after an earlier error or a killed process'),
  x(48, 'critical', 'double-bit ECC error: uncorrectable memory error, the GPU may need a reset'),
  x(61, 'critical', 'internal micro-controller breakpoint/warning: firmware fault'),
  x(62, 'critical', 'internal micro-controller halt: firmware stopped, reset the GPU'),
  x(63, 'warning', 'ECC page retirement or row remapping recorded: a memory page or row was replaced'),
  x(64, 'critical', 'ECC page retirement or row remapping failed: memory could not be repaired'),
  x(68, 'warning', 'video processor exception: an encoder or decoder engine faulted'),
  x(69, 'warning', 'graphics engine class error: an illegal operation reached the graphics engine'),
  x(74, 'critical', 'NVLink error: a link reported a fatal error or went down'),
  x(79, 'critical', 'GPU has fallen off the bus: it no longer answers on PCIe, a node drain is needed'),
  x(92, 'warning', 'high single-bit ECC error rate: memory is correcting many errors'),
  x(94, 'warning', 'contained ECC error: an uncorrectable error was contained to one application'),
  x(
    95,
    'critical',
    'uncontained ECC error: an uncorrectable error could affect every application, reset the GPU',
  ),
  x(119, 'critical', 'GSP RPC timeout: the GPU system processor stopped answering the driver'),
  x(120, 'critical', 'GSP error: the GPU system processor reported a fault'),
];

const BY_CODE = new Map(XID_CATALOG.map((info) => [info.code, info]));

/** Meaning and severity of an XID code; unknown codes are a warning with a generic meaning. */
export function xidInfo(code: number): XidInfo {
  return (
    BY_CODE.get(code) ?? {
      code,
      severity: 'warning',
      meaning: 'XID error not in the catalog: see the driver log',
    }
  );
}
