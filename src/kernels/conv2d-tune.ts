// Conv2d autotuning: tuning shape classes and measuring every applicable tile variant on a shape.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { conv2d, conv2dVariantsFor } from './conv2d.js';
import type { ConvGeom } from './conv2d-geom.js';
import type { TuneShape } from './tune-cache.js';
import { timeVariants } from './tune-time.js';

export type ConvTuneShape = Extract<TuneShape, { kind: 'conv2d' }>;

const bucket = (x: number, edges: readonly number[], p: string): string => {
  const e = edges.find((b) => x <= b);
  return e === undefined ? `${p}>${edges[edges.length - 1]}` : `${p}${e}`;
};

/**
 * The shape class the tuning cache is keyed by: kernel R×S, stride, dilation (when not 1), whether there is
 * padding, grouping (dw: one channel per group, g: other groups), then buckets (upper bounds) of channels per
 * group in (c) and out (k) and of GEMM columns N·P·Q (n), e.g. 'r3x3.s1x1.p.c64.k64.n65536'.
 */
export function conv2dTuneClass(g: ConvGeom): string {
  const parts = [`r${g.R}x${g.S}`, `s${g.sh}x${g.sw}`];
  if (g.dh !== 1 || g.dw !== 1) parts.push(`d${g.dh}x${g.dw}`);
  parts.push(g.ph || g.pw ? 'p' : 'p0');
  if (g.groups > 1) parts.push(g.Cg === 1 ? 'dw' : 'g');
  parts.push(bucket(g.Cg, [4, 64, 256, 1024], 'c'), bucket(g.Kg, [64, 256, 1024], 'k'), bucket(g.N * g.P * g.Q, [32, 256, 1024, 8192, 65536], 'n'));
  return parts.join('.');
}

/** The tuning shape of a convolution geometry. */
export function convTuneShape(g: ConvGeom): ConvTuneShape {
  return {
    kind: 'conv2d',
    x: [g.N, g.C, g.H, g.W],
    w: [g.K, g.Cg, g.R, g.S],
    stride: [g.sh, g.sw],
    padding: [g.ph, g.pw],
    dilation: [g.dh, g.dw],
    groups: g.groups,
  };
}

function pattern(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (((i * 2654435761 + seed * 40503) >>> 0) % 2000) / 1000 - 1;
  return x;
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Best ms of each variant that applies to this convolution on this runtime (or of those in `only`). */
export async function measureConv2d(rt: Runtime, s: ConvTuneShape, reps = 3, only?: readonly string[]): Promise<Record<string, number>> {
  const opts = { stride: s.stride, padding: s.padding, dilation: s.dilation, groups: s.groups };
  const candidates = conv2dVariantsFor(rt, s.x, s.w, opts).filter((v) => !only || only.includes(v));
  const x = Tensor.from(rt, pattern(size(s.x), 1), s.x);
  const w = Tensor.from(rt, pattern(size(s.w), 2), s.w);
  try {
    return await timeVariants(
      rt,
      candidates.map((variant) => ({ name: variant, fn: () => conv2d(x, w, { ...opts, variant }).dispose() })),
      reps,
    );
  } finally {
    x.dispose();
    w.dispose();
  }
}
