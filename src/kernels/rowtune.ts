// Measures row-kernel launch tunings (threads per row / per workgroup) on this adapter and keeps the fastest.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { setRowTuning, type RowTuning } from './rowplan.js';
import { softmax } from './softmax.js';
import { layerNorm } from './layernorm.js';

/** Candidate tunings, from "one thread per row" (CPU-like adapters) to "many threads per row" (GPUs). */
export const ROW_CANDIDATES: readonly RowTuning[] = [
  { wg: 64, perThread: 1 << 30, minThreads: 64 },
  { wg: 64, perThread: 256, minThreads: 1024 },
  { wg: 256, perThread: 64, minThreads: 8192 },
  { wg: 256, perThread: 16, minThreads: 65536 },
];

/** Shapes [rows, D] the tuner times: many short rows, attention rows, BERT hidden rows, a vocab row. */
export const ROW_SHAPES: readonly [number, number][] = [
  [4096, 17],
  [1536, 128],
  [512, 768],
  [4, 30522],
];

export interface RowTuneResult {
  best: RowTuning;
  /** ms per (softmax + layerNorm) for each candidate (rows) and shape (columns). */
  ms: number[][];
}

/**
 * Time softmax + layer norm on ROW_SHAPES under each candidate, pick the candidate with the lowest
 * geometric-mean slowdown relative to the best per shape, and install it for this runtime.
 * Needs timestamp queries for GPU time; falls back to wall time around a sync otherwise.
 */
export async function tuneRows(rt: Runtime, reps = 3, candidates: readonly RowTuning[] = ROW_CANDIDATES): Promise<RowTuneResult> {
  const prev = rt.tuning.get('rows');
  const ms: number[][] = [];
  try {
    const xs = ROW_SHAPES.map(([r, d]) => Tensor.from(rt, Float32Array.from({ length: r * d }, (_, i) => Math.sin(i)), [r, d]));
    for (const c of candidates) {
      setRowTuning(rt, c);
      const row: number[] = [];
      for (const x of xs) {
        const step = () => {
          softmax(x).dispose();
          layerNorm(x, null, null).dispose();
        };
        step(); // compile outside the timed region
        await rt.sync();
        let best = Infinity;
        for (let k = 0; k < reps; k++) {
          const t0 = performance.now();
          const t = await rt.timeGpu(step);
          best = Math.min(best, t ? t.totalMs : performance.now() - t0);
        }
        row.push(best);
      }
      ms.push(row);
    }
    xs.forEach((x) => x.dispose());
  } finally {
    rt.tuning.set('rows', prev);
  }
  const bestPerShape = ROW_SHAPES.map((_, j) => Math.min(...ms.map((r) => r[j]!)));
  const score = ms.map((r) => r.reduce((s, v, j) => s + Math.log(v / bestPerShape[j]!), 0));
  const best = candidates[score.indexOf(Math.min(...score))]!;
  setRowTuning(rt, best);
  return { best, ms };
}
