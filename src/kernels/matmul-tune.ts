// Matmul autotuning: times every variant this adapter supports per shape class and keeps the fastest in rt.tuning.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { matmul, matmulDims } from './matmul.js';
import { VARIANT_TABLE, shapeClass, unsupportedReason } from './matmul-variants.js';

/**
 * Default tuning shapes [M, N, K]: a square product, a BERT FFN layer (M = tokens), and small-M
 * products for each 'sg' row count (decode-style rows, short sequences).
 */
export const MATMUL_TUNE_SHAPES: readonly [number, number, number][] = [
  [512, 512, 512],
  [128, 3072, 768],
  [1, 768, 768],
  [8, 768, 768],
  [16, 768, 768],
  [32, 768, 768],
];

/** Fill with a cheap deterministic pattern in [-1, 1). */
function pattern(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (((i * 2654435761 + seed * 40503) >>> 0) % 2000) / 1000 - 1;
  return x;
}

/** Best time in ms of `reps` runs of fn (GPU timestamps when available, else wall clock around a sync). */
async function timeBest(rt: Runtime, fn: () => void, reps: number): Promise<number> {
  fn(); // compile + warm the pool outside the timed runs
  await rt.sync();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const t = await rt.timeGpu(fn);
    best = Math.min(best, t ? t.totalMs : performance.now() - t0);
  }
  return best;
}

/**
 * Time every supported variant (vec4 loads where the shape allows) on `shapes` ([M, N, K] each) and
 * store, per shape class, the variant with the lowest summed slowdown relative to the best of each
 * shape. The choices go to rt.tuning ('matmul'), merged over earlier tunings, and are returned.
 */
export async function tuneMatmul(
  rt: Runtime,
  shapes: [number, number, number][] = MATMUL_TUNE_SHAPES.map((s): [number, number, number] => [...s]),
  reps = 3,
): Promise<Record<string, string>> {
  const candidates = [...VARIANT_TABLE.values()].filter((v) => !v.scalar && unsupportedReason(rt, v) === null);
  // per class: variant -> [summed time / best time of that shape, shapes it ran]
  const score = new Map<string, Map<string, [number, number]>>();
  for (const [M, N, K] of shapes) {
    const a = Tensor.from(rt, pattern(M * K, 1), [M, K]);
    const b = Tensor.from(rt, pattern(K * N, 2), [K, N]);
    const times: [string, number][] = [];
    for (const v of candidates) {
      try {
        const ms = await timeBest(rt, () => matmul(a, b, { variant: v.name }).dispose(), reps);
        times.push([v.name, ms]);
      } catch {
        // a variant that cannot run this shape here (e.g. its grid exceeds the adapter limits) is not a candidate
      }
    }
    a.dispose();
    b.dispose();
    if (!times.length) continue;
    const best = Math.min(...times.map(([, t]) => t));
    const cls = shapeClass(M, N, matmulDims([M, K], [K, N], false, false).vec4);
    let s = score.get(cls);
    if (!s) score.set(cls, (s = new Map()));
    for (const [name, t] of times) {
      const [sum, n] = s.get(name) ?? [0, 0];
      s.set(name, [sum + t / best, n + 1]);
    }
  }
  const chosen: Record<string, string> = {};
  for (const [cls, s] of score) {
    // among the variants that ran every shape of the class, the lowest summed slowdown
    const full = Math.max(...[...s.values()].map(([, n]) => n));
    const ok = [...s.entries()].filter(([, [, n]]) => n === full);
    chosen[cls] = ok.reduce((x, y) => (y[1][0] < x[1][0] ? y : x))[0];
  }
  const prev = (rt.tuning.get('matmul') as Record<string, string> | undefined) ?? {};
  rt.tuning.set('matmul', { ...prev, ...chosen });
  return chosen;
}
