// CPU references (plain loops, float64) for CNN training ops: conv2d, max/avg/global pooling, batch norm — forward and backward.
// Activations are NCHW, conv weights [K, C/groups, R, S]; semantics follow PyTorch. Backward passes here use the
// scatter formulation (loop over outputs, add into inputs), independent of the GPU gather kernels.
import { rng } from '../helpers/rand.js';

type Arr = ArrayLike<number>;
export type RefPair = number | [number, number];
export type Shape4 = [number, number, number, number];

export interface RefConvOpts {
  stride?: RefPair;
  padding?: RefPair;
  dilation?: RefPair;
  groups?: number;
}

export interface RefPoolOpts {
  kernel: RefPair;
  stride?: RefPair; // default: kernel
  padding?: RefPair;
  dilation?: RefPair;
  ceilMode?: boolean;
  countIncludePad?: boolean; // default true (avg only)
}

const two = (v: RefPair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

// ---------------------------------------------------------------- conv2d

interface ConvG {
  N: number; C: number; H: number; W: number; K: number; Cg: number; R: number; S: number;
  P: number; Q: number; G: number; Kg: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

function convG(xShape: readonly number[], wShape: readonly number[], o: RefConvOpts): ConvG {
  const [N, C, H, W] = xShape as Shape4;
  const [K, Cg, R, S] = wShape as Shape4;
  const G = o.groups ?? 1;
  const [sh, sw] = two(o.stride, 1);
  const [ph, pw] = two(o.padding, 0);
  const [dh, dw] = two(o.dilation, 1);
  const P = Math.floor((H + 2 * ph - dh * (R - 1) - 1) / sh) + 1;
  const Q = Math.floor((W + 2 * pw - dw * (S - 1) - 1) / sw) + 1;
  if (Cg * G !== C || K % G !== 0 || P < 1 || Q < 1) throw new Error(`conv ref: bad shapes x [${xShape}] w [${wShape}]`);
  return { N, C, H, W, K, Cg, R, S, P, Q, G, Kg: K / G, sh, sw, ph, pw, dh, dw };
}

/** Output shape [N, K, P, Q] of a convolution. */
export function conv2dOutShapeRef(xShape: readonly number[], wShape: readonly number[], o: RefConvOpts = {}): Shape4 {
  const g = convG(xShape, wShape, o);
  return [g.N, g.K, g.P, g.Q];
}

/** Visit every (output, input, weight) index triple of a convolution. */
function convEach(g: ConvG, f: (yi: number, xi: number, wi: number) => void): void {
  const { N, C, H, W, K, Cg, R, S, P, Q, Kg } = g;
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      const grp = Math.floor(k / Kg);
      for (let p = 0; p < P; p++)
        for (let q = 0; q < Q; q++) {
          const yi = ((n * K + k) * P + p) * Q + q;
          for (let c = 0; c < Cg; c++)
            for (let r = 0; r < R; r++) {
              const h = p * g.sh - g.ph + r * g.dh;
              if (h < 0 || h >= H) continue;
              for (let s = 0; s < S; s++) {
                const w = q * g.sw - g.pw + s * g.dw;
                if (w < 0 || w >= W) continue;
                f(yi, ((n * C + grp * Cg + c) * H + h) * W + w, ((k * Cg + c) * R + r) * S + s);
              }
            }
        }
    }
}

/** y [N, K, P, Q] = conv2d(x [N, C, H, W], w [K, C/g, R, S]) (+ bias [K]). */
export function conv2dForwardRef(
  x: Arr, xShape: readonly number[], w: Arr, wShape: readonly number[], o: RefConvOpts = {}, bias?: Arr,
): { y: Float64Array; shape: Shape4 } {
  const g = convG(xShape, wShape, o);
  const y = new Float64Array(g.N * g.K * g.P * g.Q);
  convEach(g, (yi, xi, wi) => (y[yi]! += x[xi]! * w[wi]!));
  if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[Math.floor(i / (g.P * g.Q)) % g.K]!;
  return { y, shape: [g.N, g.K, g.P, g.Q] };
}

/** dx [N, C, H, W] from dy [N, K, P, Q] and w [K, C/g, R, S]. */
export function conv2dBackwardDataRef(dy: Arr, w: Arr, xShape: readonly number[], wShape: readonly number[], o: RefConvOpts = {}): Float64Array {
  const g = convG(xShape, wShape, o);
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  convEach(g, (yi, xi, wi) => (dx[xi]! += dy[yi]! * w[wi]!));
  return dx;
}

/** dw [K, C/g, R, S] from x [N, C, H, W] and dy [N, K, P, Q]. */
export function conv2dBackwardWeightRef(x: Arr, xShape: readonly number[], dy: Arr, wShape: readonly number[], o: RefConvOpts = {}): Float64Array {
  const g = convG(xShape, wShape, o);
  const dw = new Float64Array(g.K * g.Cg * g.R * g.S);
  convEach(g, (yi, xi, wi) => (dw[wi]! += dy[yi]! * x[xi]!));
  return dw;
}

/** dbias [K] = sum of dy [N, K, P, Q] over N, P, Q. */
export function conv2dBackwardBiasRef(dy: Arr, dyShape: readonly number[]): Float64Array {
  return channelSum(dy, dyShape);
}

function channelSum(t: Arr, shape: readonly number[]): Float64Array {
  const [N, C, H, W] = shape as Shape4;
  const out = new Float64Array(C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) out[c]! += t[(n * C + c) * H * W + i]!;
  return out;
}

// ---------------------------------------------------------------- pooling

export interface PoolG {
  N: number; C: number; H: number; W: number; R: number; S: number; P: number; Q: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number; ceil: boolean; incPad: boolean;
}

/** PyTorch's pooling output size (ceil mode drops a last window that would start in the right padding). */
export function poolOutRef(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = size + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (o - 1) * s >= size + p) o--;
  return o;
}

export function poolG(xShape: readonly number[], o: RefPoolOpts): PoolG {
  const [N, C, H, W] = xShape as Shape4;
  const [R, S] = two(o.kernel, 1);
  const [sh, sw] = two(o.stride ?? o.kernel, 1);
  const [ph, pw] = two(o.padding, 0);
  const [dh, dw] = two(o.dilation, 1);
  const ceil = !!o.ceilMode;
  const P = poolOutRef(H, R, sh, ph, dh, ceil);
  const Q = poolOutRef(W, S, sw, pw, dw, ceil);
  return { N, C, H, W, R, S, P, Q, sh, sw, ph, pw, dh, dw, ceil, incPad: o.countIncludePad ?? true };
}

/** Max pooling: y [N, C, P, Q] and the argmax h·W + w of each window (first max wins; NaN wins, like PyTorch). */
export function maxPool2dRef(x: Arr, xShape: readonly number[], o: RefPoolOpts): { y: Float64Array; idx: Int32Array; shape: Shape4 } {
  const g = poolG(xShape, o);
  const { N, C, H, W, R, S, P, Q } = g;
  const y = new Float64Array(N * C * P * Q);
  const idx = new Int32Array(N * C * P * Q);
  for (let nc = 0; nc < N * C; nc++)
    for (let p = 0; p < P; p++)
      for (let q = 0; q < Q; q++) {
        let best = -Infinity;
        let bi = -1;
        for (let r = 0; r < R; r++) {
          const h = p * g.sh - g.ph + r * g.dh;
          if (h < 0 || h >= H) continue;
          for (let s = 0; s < S; s++) {
            const w = q * g.sw - g.pw + s * g.dw;
            if (w < 0 || w >= W) continue;
            const v = x[nc * H * W + h * W + w]!;
            if (bi < 0 || v > best || Number.isNaN(v)) {
              best = v;
              bi = h * W + w;
            }
          }
        }
        const i = (nc * P + p) * Q + q;
        y[i] = best;
        idx[i] = bi;
      }
  return { y, idx, shape: [N, C, P, Q] };
}

export function maxPool2dBackwardRef(dy: Arr, x: Arr, xShape: readonly number[], o: RefPoolOpts): Float64Array {
  const { idx, shape } = maxPool2dRef(x, xShape, o);
  const [N, C, P, Q] = shape;
  const HW = xShape[2]! * xShape[3]!;
  const dx = new Float64Array(N * C * HW);
  for (let nc = 0; nc < N * C; nc++) for (let i = 0; i < P * Q; i++) dx[nc * HW + idx[nc * P * Q + i]!]! += dy[nc * P * Q + i]!;
  return dx;
}

/** Number of window taps of output row p along one axis that count towards the average. */
function taps(p: number, k: number, s: number, pad: number, d: number, size: number, incPad: boolean): number {
  let n = 0;
  for (let r = 0; r < k; r++) {
    const h = p * s - pad + r * d;
    if (incPad ? h < size + pad : h >= 0 && h < size) n++;
  }
  return n;
}

/** Visit every (output, input, divisor) of an average pool. */
function avgEach(g: PoolG, f: (yi: number, xi: number, div: number) => void): void {
  const { N, C, H, W, R, S, P, Q } = g;
  for (let nc = 0; nc < N * C; nc++)
    for (let p = 0; p < P; p++)
      for (let q = 0; q < Q; q++) {
        const div = taps(p, R, g.sh, g.ph, g.dh, H, g.incPad) * taps(q, S, g.sw, g.pw, g.dw, W, g.incPad);
        for (let r = 0; r < R; r++) {
          const h = p * g.sh - g.ph + r * g.dh;
          if (h < 0 || h >= H) continue;
          for (let s = 0; s < S; s++) {
            const w = q * g.sw - g.pw + s * g.dw;
            if (w < 0 || w >= W) continue;
            f((nc * P + p) * Q + q, nc * H * W + h * W + w, div);
          }
        }
      }
}

/** Average pooling (PyTorch divisor rule: with countIncludePad, taps in the padding count, taps past it do not). */
export function avgPool2dRef(x: Arr, xShape: readonly number[], o: RefPoolOpts): { y: Float64Array; shape: Shape4 } {
  const g = poolG(xShape, o);
  const y = new Float64Array(g.N * g.C * g.P * g.Q);
  avgEach(g, (yi, xi, div) => (y[yi]! += x[xi]! / div));
  return { y, shape: [g.N, g.C, g.P, g.Q] };
}

export function avgPool2dBackwardRef(dy: Arr, xShape: readonly number[], o: RefPoolOpts): Float64Array {
  const g = poolG(xShape, o);
  const dx = new Float64Array(g.N * g.C * g.H * g.W);
  avgEach(g, (yi, xi, div) => (dx[xi]! += dy[yi]! / div));
  return dx;
}

/** x [N, C, H, W] -> y [N, C], the mean over H, W. */
export function globalAvgPool2dRef(x: Arr, xShape: readonly number[]): Float64Array {
  const [N, C, H, W] = xShape as Shape4;
  const y = new Float64Array(N * C);
  for (let i = 0; i < N * C; i++) {
    let s = 0;
    for (let j = 0; j < H * W; j++) s += x[i * H * W + j]!;
    y[i] = s / (H * W);
  }
  return y;
}

export function globalAvgPool2dBackwardRef(dy: Arr, xShape: readonly number[]): Float64Array {
  const [N, C, H, W] = xShape as Shape4;
  const dx = new Float64Array(N * C * H * W);
  for (let i = 0; i < dx.length; i++) dx[i] = dy[Math.floor(i / (H * W))]! / (H * W);
  return dx;
}

// ---------------------------------------------------------------- batch norm (training)

export interface BnTrainRef {
  y: Float64Array;
  mean: Float64Array; // [C] batch mean
  invstd: Float64Array; // [C] 1 / sqrt(biased var + eps)
  varBiased: Float64Array;
  runningMean: Float64Array | null; // updated copies
  runningVar: Float64Array | null;
}

/** Batch norm in training mode: statistics over N, H, W per channel; PyTorch's running-stat rule (unbiased var). */
export function batchNorm2dTrainRef(
  x: Arr, xShape: readonly number[], weight: Arr | null, bias: Arr | null,
  runningMean: Arr | null, runningVar: Arr | null, momentum = 0.1, eps = 1e-5,
): BnTrainRef {
  const [N, C, H, W] = xShape as Shape4;
  const HW = H * W;
  const M = N * HW;
  const mean = new Float64Array(C);
  const varB = new Float64Array(C);
  const invstd = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) s += x[(n * C + c) * HW + i]!;
    const m = s / M;
    let v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) v += (x[(n * C + c) * HW + i]! - m) ** 2;
    mean[c] = m;
    varB[c] = v / M;
    invstd[c] = 1 / Math.sqrt(v / M + eps);
  }
  const y = new Float64Array(N * C * HW);
  for (let i = 0; i < y.length; i++) {
    const c = Math.floor(i / HW) % C;
    y[i] = (x[i]! - mean[c]!) * invstd[c]! * (weight ? weight[c]! : 1) + (bias ? bias[c]! : 0);
  }
  const rm = runningMean ? Float64Array.from(runningMean, (v, c) => (1 - momentum) * v + momentum * mean[c]!) : null;
  const rv = runningVar ? Float64Array.from(runningVar, (v, c) => (1 - momentum) * v + momentum * varB[c]! * (M / (M - 1))) : null;
  return { y, mean, invstd, varBiased: varB, runningMean: rm, runningVar: rv };
}

/** Gradients of batch norm (training mode) given the saved batch mean and invstd. */
export function batchNorm2dBackwardRef(
  dy: Arr, x: Arr, xShape: readonly number[], mean: Arr, invstd: Arr, weight: Arr | null,
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const [N, C, H, W] = xShape as Shape4;
  const HW = H * W;
  const M = N * HW;
  const dbias = new Float64Array(C);
  const dweight = new Float64Array(C);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        dbias[c]! += dy[j]!;
        dweight[c]! += dy[j]! * (x[j]! - mean[c]!) * invstd[c]!;
      }
  const dx = new Float64Array(N * C * HW);
  for (let j = 0; j < dx.length; j++) {
    const c = Math.floor(j / HW) % C;
    const xhat = (x[j]! - mean[c]!) * invstd[c]!;
    dx[j] = ((weight ? weight[c]! : 1) * invstd[c]! * (dy[j]! - dbias[c]! / M - (xhat * dweight[c]!) / M));
  }
  return { dx, dweight, dbias };
}

// ---------------------------------------------------------------- finite differences

/**
 * Central differences of a scalar loss with respect to every element of `input` (mutated in place and restored):
 * (loss(x + eps·e_i) - loss(x - eps·e_i)) / (2·eps), in float64.
 */
export function finiteDiff(input: Float64Array, loss: () => number, eps = 1e-6): Float64Array {
  const g = new Float64Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const v = input[i]!;
    input[i] = v + eps;
    const up = loss();
    input[i] = v - eps;
    const down = loss();
    input[i] = v;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** sum(a · b), the scalar loss whose gradient with respect to a is b. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** n uniform float64 values in [lo, hi) from the shared seeded generator. */
export function rand64(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
}
