// Matmul autotuning: tuning shape classes, measuring every supported variant on a shape, and the in-memory tuner.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { matmul, matmulDims, type MatmulDims } from './matmul.js';
import { VARIANT_TABLE, shapeClass, unsupportedReason } from './matmul-variants.js';
import type { TuneShape } from './tune-cache.js';
import { timeVariants } from './tune-time.js';

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

export type MatmulTuneShape = Extract<TuneShape, { kind: 'matmul' }>;

const bucket = (x: number, edges: readonly number[], p: string): string => {
  const e = edges.find((b) => x <= b);
  return e === undefined ? `${p}>${edges[edges.length - 1]}` : `${p}${e}`;
};

/**
 * The shape class the tuning cache is keyed by: M, N and K buckets (upper bounds), the transposes and whether
 * vec4 loads apply, e.g. 'm1024.n4096.k1024.nt.v4' (M ≤ 1024, N ≤ 4096, K ≤ 1024, B transposed, vec4).
 * M buckets follow the 'sg' row counts (8/16/32/64) then grow ×4; every shape of a class gets one variant.
 */
export function matmulTuneClass(d: MatmulDims): string {
  const m = bucket(d.M, [4, 8, 16, 32, 64, 256, 1024, 4096], 'm');
  const n = bucket(d.N, [4, 64, 256, 1024, 4096], 'n');
  const k = bucket(d.K, [64, 256, 1024, 4096], 'k');
  return `${m}.${n}.${k}.${d.transA ? 't' : 'n'}${d.transB ? 't' : 'n'}.${d.vec4 ? 'v4' : 's'}`;
}

/** Fill with a cheap deterministic pattern in [-1, 1). */
function pattern(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (((i * 2654435761 + seed * 40503) >>> 0) % 2000) / 1000 - 1;
  return x;
}

/** The variants tried on this runtime: every supported one with vec4 loads where the shape allows. */
export function matmulCandidates(rt: Runtime): string[] {
  return [...VARIANT_TABLE.values()].filter((v) => !v.scalar && unsupportedReason(rt, v) === null).map((v) => v.name);
}

/** Best ms of each candidate variant on one shape (a variant that cannot run it here is left out). */
export async function measureMatmul(rt: Runtime, s: MatmulTuneShape, reps = 3, candidates = matmulCandidates(rt)): Promise<Record<string, number>> {
  const { M, N, K, batch, transA, transB } = s;
  const lead = batch > 1 ? [batch] : [];
  const a = Tensor.from(rt, pattern(batch * M * K, 1), [...lead, ...(transA ? [K, M] : [M, K])]);
  const b = Tensor.from(rt, pattern(batch * K * N, 2), [...lead, ...(transB ? [N, K] : [K, N])]);
  try {
    return await timeVariants(
      rt,
      candidates.map((name) => ({ name, fn: () => matmul(a, b, { variant: name, transA, transB }).dispose() })),
      reps,
    );
  } finally {
    a.dispose();
    b.dispose();
  }
}

/**
 * In-memory tuner (no file): time every supported variant (vec4 loads where the shape allows) on `shapes`
 * ([M, N, K] each) and store, per coarse shapeClass (M bucket, N bucket, vec4), the variant with the lowest summed
 * slowdown relative to the best of each shape. The choices go to rt.tuning ('matmul'), which overrides the
 * tuning cache and the default for this runtime, merged over earlier tunings, and are returned.
 * The cached, per-adapter tuner is autotune.ts (tuneShapes / tunePending / `graft tune`).
 */
export async function tuneMatmul(
  rt: Runtime,
  shapes: [number, number, number][] = MATMUL_TUNE_SHAPES.map((s): [number, number, number] => [...s]),
  reps = 3,
): Promise<Record<string, string>> {
  // per class: variant -> [summed time / best time of that shape, shapes it ran]
  const score = new Map<string, Map<string, [number, number]>>();
  for (const [M, N, K] of shapes) {
    const times = Object.entries(await measureMatmul(rt, { kind: 'matmul', M, N, K, batch: 1, transA: false, transB: false }, reps));
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
