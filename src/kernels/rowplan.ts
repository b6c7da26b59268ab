// Launch plan for row-wise kernels (softmax, layer norm, global pooling): T threads share a row.
import type { Runtime } from '../runtime/runtime.js';
import { grid1d } from './grid.js';

/**
 * A row kernel runs WG threads per workgroup; T of them (a power of two dividing WG) cooperate on
 * one row with a workgroup-memory tree reduction, so a workgroup covers WG / T rows. T = 1 is the
 * cheap path for short rows (no workgroup memory, no barriers); T = WG is one workgroup per row.
 */
export interface RowPlan {
  wg: number;
  t: number;
  workgroups: [number, number];
}

/** Knobs chosen per adapter (see tuneRows in rowtune.ts), kept in `rt.tuning` under 'rows'. */
export interface RowTuning {
  /** Threads per workgroup (power of two). */
  wg: number;
  /** Elements each thread should handle before another thread joins the row. */
  perThread: number;
  /** While rows × T is below this (few rows), give each row more threads to fill the device. */
  minThreads: number;
}

/**
 * Used until tuneRows (or setRowTuning) runs. Measured on lavapipe, where barriers are costly and
 * one thread per row wins unless rows are few; a GPU should run tuneRows once (ROW_CANDIDATES
 * holds GPU-shaped tunings) and cache the result per rt.adapterKey().
 */
export const DEFAULT_TUNING: RowTuning = { wg: 64, perThread: 1 << 30, minThreads: 64 };

export function rowTuning(rt: Runtime): RowTuning {
  const t = rt.tuning.get('rows');
  return isRowTuning(t) ? t : DEFAULT_TUNING;
}

/** Install a tuning for this runtime (e.g. the result of tuneRows, or one cached per adapterKey()). */
export function setRowTuning(rt: Runtime, t: RowTuning): void {
  const ok = Number.isInteger(t.wg) && t.wg >= 1 && (t.wg & (t.wg - 1)) === 0 && t.perThread >= 1 && t.minThreads >= 0;
  if (!ok) throw new RangeError(`row tuning ${JSON.stringify(t)}: wg must be a power of two, perThread >= 1, minThreads >= 0`);
  rt.tuning.set('rows', { ...t });
}

function isRowTuning(v: unknown): v is RowTuning {
  return typeof v === 'object' && v !== null && 'wg' in v && 'perThread' in v && 'minThreads' in v;
}

const pow2ceil = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const pow2floor = (n: number): number => 2 ** Math.floor(Math.log2(Math.max(1, n)));

/** Plan `rows` rows of `d` elements each; `force` pins wg and/or t (tests, benchmarks). */
export function planRows(rt: Runtime, rows: number, d: number, force?: { wg?: number; t?: number }): RowPlan {
  const tune = rowTuning(rt);
  const L = rt.limits;
  const wg = pow2floor(Math.min(force?.wg ?? tune.wg, L.maxComputeInvocationsPerWorkgroup, L.maxComputeWorkgroupSizeX));
  let t = force?.t;
  if (t === undefined) {
    t = pow2ceil(Math.ceil(d / tune.perThread));
    while (rows * t < tune.minThreads && t * 4 <= d) t *= 2;
  }
  if (!(Number.isInteger(t) && t >= 1 && (t & (t - 1)) === 0)) throw new RangeError(`row plan: threads per row must be a power of two, got ${t}`);
  t = Math.min(t, wg);
  return { wg, t, workgroups: grid1d(rows * t, wg, L.maxComputeWorkgroupsPerDimension) };
}
