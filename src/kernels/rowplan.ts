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

/** Knobs a caller (or a tuner) may set per runtime under `rt.tuning.get('rows')`. */
export interface RowTuning {
  /** Threads per workgroup (power of two). */
  wg: number;
  /** Target elements each thread handles before another thread joins the row. */
  perThread: number;
  /** Keep at least this many rows × threads in flight when rows are few (fills the device). */
  minThreads: number;
}

/**
 * Defaults measured on lavapipe (see the report in tests/softmax.test.ts' header / the PR): the
 * thread count only needs to cover the cores' SIMD lanes there, while a real GPU needs tens of
 * thousands of threads, so minThreads scales with the adapter's invocation limit.
 */
export function rowTuning(rt: Runtime): RowTuning {
  const t = rt.tuning.get('rows');
  if (isRowTuning(t)) return t;
  const def: RowTuning = { wg: 256, perThread: 32, minThreads: 1 << 14 };
  rt.tuning.set('rows', def);
  return def;
}

function isRowTuning(v: unknown): v is RowTuning {
  return typeof v === 'object' && v !== null && 'wg' in v && 'perThread' in v && 'minThreads' in v;
}

const pow2ceil = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Plan `rows` rows of `d` elements each. */
export function planRows(rt: Runtime, rows: number, d: number, force?: { wg?: number; t?: number }): RowPlan {
  const tune = rowTuning(rt);
  const wg = Math.min(force?.wg ?? tune.wg, rt.limits.maxComputeInvocationsPerWorkgroup, rt.limits.maxComputeWorkgroupSizeX);
  let t = force?.t;
  if (t === undefined) {
    // Enough threads that each handles about `perThread` elements ...
    t = pow2ceil(Math.ceil(d / tune.perThread));
    // ... and, when rows are few, more threads per row so the device has work to spread.
    while (rows * t < tune.minThreads && t * 4 <= d) t *= 2;
  }
  t = Math.min(t, wg);
  return { wg, t, workgroups: grid1d(rows * t, wg, rt.limits.maxComputeWorkgroupsPerDimension) };
}
