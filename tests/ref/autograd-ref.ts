// Float64 CPU reference autograd (micrograd on arrays): every op's forward with its analytic backward, plain loops.
export type Shape = readonly number[];

const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);
const strides = (s: Shape): number[] => {
  const out = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    out[i] = acc;
    acc *= s[i]!;
  }
  return out;
};

/** A CPU value: data, shape, accumulated grad, and how to push its grad to its parents. */
export class R {
  grad: Float64Array;
  constructor(
    readonly data: Float64Array,
    readonly shape: number[],
    readonly prev: R[] = [],
    public back: (() => void) | null = null,
  ) {
    this.grad = new Float64Array(data.length);
  }
}

export function leaf(data: ArrayLike<number>, shape: Shape): R {
  return new R(Float64Array.from(data), [...shape]);
}

/** Reverse-topological backward from `root` with seed gradient `seed` (default ones). */
export function backwardRef(root: R, seed?: ArrayLike<number>): void {
  const order: R[] = [];
  const seen = new Set<R>();
  const visit = (v: R) => {
    if (seen.has(v)) return;
    seen.add(v);
    v.prev.forEach(visit);
    order.push(v);
  };
  visit(root);
  if (seed) root.grad.set(Array.from(seed));
  else root.grad.fill(1);
  for (let i = order.length - 1; i >= 0; i--) order[i]!.back?.();
}

function out(data: Float64Array, shape: Shape, prev: R[], back: (o: R) => void): R {
  const o = new R(data, [...shape], prev);
  o.back = () => back(o);
  return o;
}

// ---------- broadcasting element-wise ----------

export function broadcastShape(a: Shape, b: Shape): number[] {
  const r = Math.max(a.length, b.length);
  const s: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`ref: cannot broadcast [${a}] and [${b}]`);
    s.push(da === 1 ? db : da);
  }
  return s;
}

/** For each flat index of `outShape`, the flat index of the broadcast input of `inShape`. */
function bmap(outShape: Shape, inShape: Shape): Int32Array {
  const n = numel(outShape);
  const m = new Int32Array(n);
  const os = strides(outShape);
  const is = strides(inShape);
  const off = outShape.length - inShape.length;
  for (let i = 0; i < n; i++) {
    let rem = i;
    let j = 0;
    for (let d = 0; d < outShape.length; d++) {
      const c = Math.floor(rem / os[d]!);
      rem -= c * os[d]!;
      if (d >= off && inShape[d - off] !== 1) j += c * is[d - off]!;
    }
    m[i] = j;
  }
  return m;
}

function binaryRef(a: R, b: R, f: (x: number, y: number) => number, da: (x: number, y: number) => number, db: (x: number, y: number) => number): R {
  const s = broadcastShape(a.shape, b.shape);
  const ma = bmap(s, a.shape);
  const mb = bmap(s, b.shape);
  const y = new Float64Array(numel(s));
  for (let i = 0; i < y.length; i++) y[i] = f(a.data[ma[i]!]!, b.data[mb[i]!]!);
  return out(y, s, [a, b], (o) => {
    for (let i = 0; i < y.length; i++) {
      const x = a.data[ma[i]!]!;
      const z = b.data[mb[i]!]!;
      a.grad[ma[i]!] += o.grad[i]! * da(x, z);
      b.grad[mb[i]!] += o.grad[i]! * db(x, z);
    }
  });
}

export const add = (a: R, b: R) => binaryRef(a, b, (x, y) => x + y, () => 1, () => 1);
export const sub = (a: R, b: R) => binaryRef(a, b, (x, y) => x - y, () => 1, () => -1);
export const mul = (a: R, b: R) => binaryRef(a, b, (x, y) => x * y, (_x, y) => y, (x) => x);
export const div = (a: R, b: R) => binaryRef(a, b, (x, y) => x / y, (_x, y) => 1 / y, (x, y) => -x / (y * y));

function unaryRef(a: R, f: (x: number) => number, df: (x: number) => number): R {
  const y = a.data.map(f);
  return out(y, a.shape, [a], (o) => {
    for (let i = 0; i < y.length; i++) a.grad[i] += o.grad[i]! * df(a.data[i]!);
  });
}

export const affine = (a: R, alpha: number, beta: number) => unaryRef(a, (x) => alpha * x + beta, () => alpha);
export const pow = (a: R, p: number) => unaryRef(a, (x) => x ** p, (x) => p * x ** (p - 1));

/** erf to ~1e-13 (Taylor series; |x| >= 5 rounds to ±1). */
export function erf(x: number): number {
  if (Math.abs(x) >= 5) return Math.sign(x);
  let term = x;
  let s = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    s += add;
    if (Math.abs(add) < 1e-17 * Math.abs(s)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * s;
}

const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_PI * (x + 0.044715 * x ** 3)));
const geluTanhGrad = (x: number) => {
  const u = SQRT_2_PI * (x + 0.044715 * x ** 3);
  const t = Math.tanh(u);
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_PI * (1 + 3 * 0.044715 * x * x);
};
const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** f and f' of every differentiable unary op. */
export const UNARY: Record<string, [(x: number) => number, (x: number) => number]> = {
  neg: [(x) => -x, () => -1],
  abs: [Math.abs, (x) => Math.sign(x)],
  exp: [Math.exp, Math.exp],
  log: [Math.log, (x) => 1 / x],
  sqrt: [Math.sqrt, (x) => 0.5 / Math.sqrt(x)],
  rsqrt: [(x) => 1 / Math.sqrt(x), (x) => -0.5 * x ** -1.5],
  square: [(x) => x * x, (x) => 2 * x],
  reciprocal: [(x) => 1 / x, (x) => -1 / (x * x)],
  relu: [(x) => Math.max(x, 0), (x) => (x > 0 ? 1 : 0)],
  gelu: [(x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-x * x / 2)) / Math.sqrt(2 * Math.PI)],
  gelu_tanh: [geluTanh, geluTanhGrad],
  tanh: [Math.tanh, (x) => 1 - Math.tanh(x) ** 2],
  sigmoid: [sig, (x) => sig(x) * (1 - sig(x))],
  sin: [Math.sin, Math.cos],
  cos: [Math.cos, (x) => -Math.sin(x)],
};

export const unary = (a: R, op: string): R => {
  const u = UNARY[op];
  if (!u) throw new Error(`ref: unknown unary ${op}`);
  return unaryRef(a, u[0], u[1]);
};

// ---------- shape ----------

export function reshape(a: R, shape: Shape): R {
  return out(a.data.slice(), shape, [a], (o) => {
    for (let i = 0; i < o.grad.length; i++) a.grad[i] += o.grad[i]!;
  });
}

/** For each flat output index of a permutation of `shape`, the flat input index. */
function permMap(shape: Shape, perm: readonly number[]): { map: Int32Array; outShape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  const is = strides(shape);
  const os = strides(outShape);
  const n = numel(shape);
  const map = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let j = 0;
    for (let d = 0; d < outShape.length; d++) {
      const c = Math.floor(rem / os[d]!);
      rem -= c * os[d]!;
      j += c * is[perm[d]!]!;
    }
    map[i] = j;
  }
  return { map, outShape };
}

export function permute(a: R, perm: readonly number[]): R {
  const { map, outShape } = permMap(a.shape, perm);
  const y = new Float64Array(map.length);
  for (let i = 0; i < y.length; i++) y[i] = a.data[map[i]!]!;
  return out(y, outShape, [a], (o) => {
    for (let i = 0; i < y.length; i++) a.grad[map[i]!] += o.grad[i]!;
  });
}

export function slice(a: R, starts: readonly number[], ends: readonly number[]): R {
  const outShape = a.shape.map((_, d) => ends[d]! - starts[d]!);
  const os = strides(outShape);
  const is = strides(a.shape);
  const n = numel(outShape);
  const map = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let j = 0;
    for (let d = 0; d < outShape.length; d++) {
      const c = Math.floor(rem / os[d]!);
      rem -= c * os[d]!;
      j += (c + starts[d]!) * is[d]!;
    }
    map[i] = j;
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = a.data[map[i]!]!;
  return out(y, outShape, [a], (o) => {
    for (let i = 0; i < n; i++) a.grad[map[i]!] += o.grad[i]!;
  });
}

export function concat(xs: R[], axis: number): R {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
  const outer = numel(shape.slice(0, axis));
  const inner = numel(shape.slice(axis + 1));
  const y = new Float64Array(numel(shape));
  const place = (fn: (x: R, src: number, dst: number) => void) => {
    let at = 0;
    for (const x of xs) {
      const len = x.shape[axis]! * inner;
      for (let o = 0; o < outer; o++) for (let i = 0; i < len; i++) fn(x, o * len + i, o * shape[axis]! * inner + at + i);
      at += len;
    }
  };
  place((x, s, d) => (y[d] = x.data[s]!));
  return out(y, shape, xs, (o) => place((x, s, d) => (x.grad[s] += o.grad[d]!)));
}

/** Sum (or mean) over `axes`, optionally keeping them as size 1. */
export function sum(a: R, axes: readonly number[], keepDims = false, mean = false): R {
  const keepShape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepDims ? keepShape : a.shape.filter((_, i) => !axes.includes(i));
  const m = bmap(a.shape, keepShape);
  const cnt = axes.reduce((s, ax) => s * a.shape[ax]!, 1);
  const k = mean ? 1 / cnt : 1;
  const y = new Float64Array(numel(keepShape));
  for (let i = 0; i < a.data.length; i++) y[m[i]!] += a.data[i]! * k;
  return out(y, outShape, [a], (o) => {
    for (let i = 0; i < a.data.length; i++) a.grad[i] += o.grad[m[i]!]! * k;
  });
}

// ---------- linear algebra ----------

/** a [..., M, K] @ b [..., K, N] or b [K, N]. */
export function matmul(a: R, b: R): R {
  const [M, K] = a.shape.slice(-2) as [number, number];
  const N = b.shape[b.shape.length - 1]!;
  const batch = numel(a.shape.slice(0, -2));
  const bBatched = b.shape.length > 2;
  const y = new Float64Array(batch * M * N);
  const bo = (t: number) => (bBatched ? t * K * N : 0);
  for (let t = 0; t < batch; t++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[t * M * K + i * K + k]! * b.data[bo(t) + k * N + j]!;
        y[t * M * N + i * N + j] = s;
      }
  return out(y, [...a.shape.slice(0, -2), M, N], [a, b], (o) => {
    for (let t = 0; t < batch; t++)
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          const g = o.grad[t * M * N + i * N + j]!;
          for (let k = 0; k < K; k++) {
            a.grad[t * M * K + i * K + k] += g * b.data[bo(t) + k * N + j]!;
            b.grad[bo(t) + k * N + j] += g * a.data[t * M * K + i * K + k]!;
          }
        }
  });
}

/** x [..., in] · w [out, in]ᵀ + b, optional relu (composed from primitives). */
export function linear(x: R, w: R, b: R | null, act: 'none' | 'relu' = 'none'): R {
  let y = matmul(x, permute(w, [1, 0]));
  if (b) y = add(y, b);
  return act === 'relu' ? unary(y, 'relu') : y;
}

// ---------- convolution and pooling ----------

export interface ConvRefOpts {
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
}

export function conv2d(x: R, w: R, b: R | null, o: ConvRefOpts = {}): R {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [K, Cg, Rr, S] = w.shape as [number, number, number, number];
  const G = o.groups ?? 1;
  const Kg = K / G;
  const [sh, sw] = o.stride ?? [1, 1];
  const [ph, pw] = o.padding ?? [0, 0];
  const [dh, dw] = o.dilation ?? [1, 1];
  const P = Math.floor((H + 2 * ph - dh * (Rr - 1) - 1) / sh) + 1;
  const Q = Math.floor((W + 2 * pw - dw * (S - 1) - 1) / sw) + 1;
  const y = new Float64Array(N * K * P * Q);
  const each = (fn: (yi: number, xi: number, wi: number) => void) => {
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const g = Math.floor(k / Kg);
        for (let p = 0; p < P; p++)
          for (let q = 0; q < Q; q++) {
            const yi = ((n * K + k) * P + p) * Q + q;
            for (let c = 0; c < Cg; c++)
              for (let r = 0; r < Rr; r++) {
                const h = p * sh - ph + r * dh;
                if (h < 0 || h >= H) continue;
                for (let s = 0; s < S; s++) {
                  const ww = q * sw - pw + s * dw;
                  if (ww < 0 || ww >= W) continue;
                  fn(yi, ((n * C + g * Cg + c) * H + h) * W + ww, ((k * Cg + c) * Rr + r) * S + s);
                }
              }
          }
      }
  };
  each((yi, xi, wi) => (y[yi] += x.data[xi]! * w.data[wi]!));
  if (b) for (let i = 0; i < y.length; i++) y[i] += b.data[Math.floor(i / (P * Q)) % K]!;
  return out(y, [N, K, P, Q], b ? [x, w, b] : [x, w], (o) => {
    each((yi, xi, wi) => {
      x.grad[xi] += o.grad[yi]! * w.data[wi]!;
      w.grad[wi] += o.grad[yi]! * x.data[xi]!;
    });
    if (b) for (let i = 0; i < y.length; i++) b.grad[Math.floor(i / (P * Q)) % K] += o.grad[i]!;
  });
}

export interface PoolRefOpts {
  kernel: [number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

function poolOut(len: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = len + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (o - 1) * s >= len + p) o--;
  return o;
}

/** Max / average pooling with PyTorch semantics; backward routes to the (first) max or spreads the average. */
export function pool2d(x: R, mode: 'max' | 'avg', o: PoolRefOpts): R {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [kh, kw] = o.kernel;
  const [sh, sw] = o.stride ?? o.kernel;
  const [ph, pw] = o.padding ?? [0, 0];
  const [dh, dw] = o.dilation ?? [1, 1];
  const P = poolOut(H, kh, sh, ph, dh, !!o.ceilMode);
  const Q = poolOut(W, kw, sw, pw, dw, !!o.ceilMode);
  const y = new Float64Array(N * C * P * Q);
  const src: number[][] = [];
  const wt: number[] = [];
  for (let pl = 0; pl < N * C; pl++)
    for (let i = 0; i < P; i++)
      for (let j = 0; j < Q; j++) {
        const idx: number[] = [];
        for (let a = 0; a < kh; a++)
          for (let b = 0; b < kw; b++) {
            const r = i * sh - ph + a * dh;
            const q = j * sw - pw + b * dw;
            if (r >= 0 && r < H && q >= 0 && q < W) idx.push((pl * H + r) * W + q);
          }
        const yi = (pl * P + i) * Q + j;
        if (mode === 'max') {
          let best = -1;
          for (const t of idx) if (best < 0 || x.data[t]! > x.data[best]!) best = t;
          y[yi] = best < 0 ? -Infinity : x.data[best]!;
          src[yi] = best < 0 ? [] : [best];
          wt[yi] = 1;
        } else {
          const r0 = i * sh - ph;
          const q0 = j * sw - pw;
          const div = (o.countIncludePad ?? true) ? (Math.min(r0 + kh, H + ph) - r0) * (Math.min(q0 + kw, W + pw) - q0) : idx.length;
          let s = 0;
          for (const t of idx) s += x.data[t]!;
          y[yi] = idx.length ? s / div : 0;
          src[yi] = idx;
          wt[yi] = idx.length ? 1 / div : 0;
        }
      }
  return out(y, [N, C, P, Q], [x], (oo) => {
    for (let yi = 0; yi < y.length; yi++) for (const t of src[yi]!) x.grad[t] += oo.grad[yi]! * wt[yi]!;
  });
}

/** [N, C, H, W] -> [N, C]. */
export function globalAvgPool2d(x: R): R {
  const [N, C] = x.shape as [number, number];
  return reshape(sum(x, [2, 3], false, true), [N, C]);
}

// ---------- normalisation ----------

/** Normalise groups of elements: `groupOf(i)` gives the statistic index; affine params indexed by `chan(i)`. */
function normalize(x: R, w: R | null, b: R | null, groups: number, groupOf: (i: number) => number, chan: (i: number) => number, eps: number) {
  const n = x.data.length;
  const cnt = new Float64Array(groups);
  const mean = new Float64Array(groups);
  const v = new Float64Array(groups);
  for (let i = 0; i < n; i++) {
    cnt[groupOf(i)]++;
    mean[groupOf(i)] += x.data[i]!;
  }
  for (let g = 0; g < groups; g++) mean[g] /= cnt[g]!;
  for (let i = 0; i < n; i++) v[groupOf(i)] += (x.data[i]! - mean[groupOf(i)]!) ** 2;
  for (let g = 0; g < groups; g++) v[g] /= cnt[g]!;
  const invstd = v.map((vv) => 1 / Math.sqrt(vv + eps));
  const xhat = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = groupOf(i);
    xhat[i] = (x.data[i]! - mean[g]!) * invstd[g]!;
    y[i] = xhat[i]! * (w ? w.data[chan(i)]! : 1) + (b ? b.data[chan(i)]! : 0);
  }
  const prev = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  const r = out(y, x.shape, prev, (o) => {
    const s1 = new Float64Array(groups);
    const s2 = new Float64Array(groups);
    for (let i = 0; i < n; i++) {
      const g = groupOf(i);
      const dxh = o.grad[i]! * (w ? w.data[chan(i)]! : 1);
      s1[g] += dxh;
      s2[g] += dxh * xhat[i]!;
      if (w) w.grad[chan(i)] += o.grad[i]! * xhat[i]!;
      if (b) b.grad[chan(i)] += o.grad[i]!;
    }
    for (let i = 0; i < n; i++) {
      const g = groupOf(i);
      const dxh = o.grad[i]! * (w ? w.data[chan(i)]! : 1);
      x.grad[i] += (invstd[g]! / cnt[g]!) * (cnt[g]! * dxh - s1[g]! - xhat[i]! * s2[g]!);
    }
  });
  return { y: r, mean, variance: v, count: cnt };
}

export function layerNorm(x: R, w: R | null, b: R | null, eps = 1e-5): R {
  const D = x.shape[x.shape.length - 1]!;
  return normalize(x, w, b, x.data.length / D, (i) => Math.floor(i / D), (i) => i % D, eps).y;
}

/** Training batch norm on [N, C, H, W]; returns y and the batch mean / biased variance per channel. */
export function batchNormTrain(x: R, w: R | null, b: R | null, eps = 1e-5): { y: R; mean: Float64Array; variance: Float64Array; count: number } {
  const [, C, H, W] = x.shape as [number, number, number, number];
  const hw = H * W;
  const r = normalize(x, w, b, C, (i) => Math.floor(i / hw) % C, (i) => Math.floor(i / hw) % C, eps);
  return { y: r.y, mean: r.mean, variance: r.variance, count: r.count[0] ?? 0 };
}

/** Eval batch norm with fixed statistics (differentiable in x, w, b). */
export function batchNormEval(x: R, mean: ArrayLike<number>, variance: ArrayLike<number>, w: R | null, b: R | null, eps = 1e-5, relu = false): R {
  const C = x.shape[1]!;
  const hw = x.data.length / (x.shape[0]! * C);
  const ch = (i: number) => Math.floor(i / hw) % C;
  const inv = (c: number) => 1 / Math.sqrt(variance[c]! + eps);
  const xhat = x.data.map((v, i) => (v - mean[ch(i)]!) * inv(ch(i)));
  const y = xhat.map((v, i) => v * (w ? w.data[ch(i)]! : 1) + (b ? b.data[ch(i)]! : 0));
  const r = out(y, x.shape, [x, ...(w ? [w] : []), ...(b ? [b] : [])], (o) => {
    for (let i = 0; i < y.length; i++) {
      const c = ch(i);
      x.grad[i] += o.grad[i]! * (w ? w.data[c]! : 1) * inv(c);
      if (w) w.grad[c] += o.grad[i]! * xhat[i]!;
      if (b) b.grad[c] += o.grad[i]!;
    }
  });
  return relu ? unary(r, 'relu') : r;
}

// ---------- softmax family ----------

/** softmax / log-softmax along `axis`. */
export function softmax(x: R, axis: number, log = false): R {
  const d = x.shape[axis]!;
  const inner = numel(x.shape.slice(axis + 1));
  const outer = x.data.length / (d * inner);
  const y = new Float64Array(x.data.length);
  const rows = (fn: (at: (j: number) => number) => void) => {
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) fn((j) => o * d * inner + j * inner + i);
  };
  rows((at) => {
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, x.data[at(j)]!);
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.exp(x.data[at(j)]! - m);
    for (let j = 0; j < d; j++) y[at(j)] = log ? x.data[at(j)]! - m - Math.log(s) : Math.exp(x.data[at(j)]! - m) / s;
  });
  return out(y, x.shape, [x], (o) => {
    rows((at) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += log ? o.grad[at(j)]! : o.grad[at(j)]! * y[at(j)]!;
      for (let j = 0; j < d; j++) {
        const k = at(j);
        x.grad[k] += log ? o.grad[k]! - Math.exp(y[k]!) * s : y[k]! * (o.grad[k]! - s);
      }
    });
  });
}

/** torch cross_entropy on logits [B, C] with integer targets; loss [1] (mean/sum) or [B] (none). */
export function crossEntropy(
  logits: R,
  targets: ArrayLike<number>,
  o: { labelSmoothing?: number; ignoreIndex?: number; reduction?: 'mean' | 'sum' | 'none' } = {},
): R {
  const [B, C] = logits.shape as [number, number];
  const eps = o.labelSmoothing ?? 0;
  const ignore = o.ignoreIndex ?? -100;
  const red = o.reduction ?? 'mean';
  const lsm = softmax(leaf(logits.data, logits.shape), 1, true).data;
  const rowLoss = new Float64Array(B);
  let count = 0;
  for (let b = 0; b < B; b++) {
    const t = targets[b]!;
    if (t === ignore) continue;
    count++;
    let s = 0;
    for (let j = 0; j < C; j++) s += lsm[b * C + j]!;
    rowLoss[b] = -(1 - eps) * lsm[b * C + t]! - (eps / C) * s;
  }
  const scale = red === 'mean' ? 1 / count : 1;
  const y = red === 'none' ? rowLoss : Float64Array.of(rowLoss.reduce((a, v) => a + v, 0) * scale);
  return out(y, red === 'none' ? [B] : [1], [logits], (oo) => {
    for (let b = 0; b < B; b++) {
      const t = targets[b]!;
      if (t === ignore) continue;
      const g = red === 'none' ? oo.grad[b]! : oo.grad[0]! * scale;
      for (let j = 0; j < C; j++) {
        const p = Math.exp(lsm[b * C + j]!);
        logits.grad[b * C + j] += g * (p - ((j === t ? 1 - eps : 0) + eps / C));
      }
    }
  });
}

/** softmax(q kᵀ·scale + masks) v on [B, H, T, D]; mask [B, Tk] (1 keep), causal = tril. */
export function attention(q: R, k: R, v: R, o: { mask?: ArrayLike<number>; causal?: boolean; scale?: number } = {}): R {
  const [B, Hh, Tq, D] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  const sc = o.scale ?? 1 / Math.sqrt(D);
  const y = new Float64Array(B * Hh * Tq * D);
  const probs: Float64Array[] = [];
  const base = (b: number, h: number, T: number) => (b * Hh + h) * T * D;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hh; h++)
      for (let i = 0; i < Tq; i++) {
        const s = new Float64Array(Tk);
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const keep = (!o.mask || o.mask[b * Tk + j]! !== 0) && (!o.causal || j <= i);
          if (!keep) {
            s[j] = -Infinity;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q.data[base(b, h, Tq) + i * D + d]! * k.data[base(b, h, Tk) + j * D + d]!;
          s[j] = dot * sc;
          m = Math.max(m, s[j]!);
        }
        let z = 0;
        for (let j = 0; j < Tk; j++) z += s[j] === -Infinity ? 0 : Math.exp(s[j]! - m);
        const p = s.map((x) => (x === -Infinity ? 0 : Math.exp(x - m) / z));
        probs.push(p);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < Tk; j++) acc += p[j]! * v.data[base(b, h, Tk) + j * D + d]!;
          y[base(b, h, Tq) + i * D + d] = acc;
        }
      }
  return out(y, q.shape, [q, k, v], (oo) => {
    let row = 0;
    for (let b = 0; b < B; b++)
      for (let h = 0; h < Hh; h++)
        for (let i = 0; i < Tq; i++) {
          const p = probs[row++]!;
          const qo = base(b, h, Tq) + i * D;
          const dp = new Float64Array(Tk);
          for (let j = 0; j < Tk; j++) {
            const vo = base(b, h, Tk) + j * D;
            for (let d = 0; d < D; d++) {
              v.grad[vo + d] += p[j]! * oo.grad[qo + d]!;
              dp[j] += oo.grad[qo + d]! * v.data[vo + d]!;
            }
          }
          let s = 0;
          for (let j = 0; j < Tk; j++) s += dp[j]! * p[j]!;
          for (let j = 0; j < Tk; j++) {
            const ds = p[j]! * (dp[j]! - s) * sc;
            const ko = base(b, h, Tk) + j * D;
            for (let d = 0; d < D; d++) {
              q.grad[qo + d] += ds * k.data[ko + d]!;
              k.grad[ko + d] += ds * q.data[qo + d]!;
            }
          }
        }
  });
}

// ---------- lookup, dropout ----------

/** table [V, D] rows by ids -> [...ids, D]; paddingIdx rows get no gradient. */
export function embedding(ids: ArrayLike<number>, idsShape: Shape, table: R, paddingIdx?: number): R {
  const [V, D] = table.shape as [number, number];
  const y = new Float64Array(ids.length * D);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id >= 0 && id < V) for (let j = 0; j < D; j++) y[t * D + j] = table.data[id * D + j]!;
  }
  return out(y, [...idsShape, D], [table], (o) => {
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t]!;
      if (id < 0 || id >= V || id === paddingIdx) continue;
      for (let j = 0; j < D; j++) table.grad[id * D + j] += o.grad[t * D + j]!;
    }
  });
}

/** x · keep / (1 - p) for a given keep mask. */
export function dropoutMasked(x: R, keep: ArrayLike<number>, p: number): R {
  const k = p >= 1 ? 0 : 1 / (1 - p);
  return unaryRefIndexed(x, (v, i) => v * keep[i]! * k, (i) => keep[i]! * k);
}

function unaryRefIndexed(a: R, f: (x: number, i: number) => number, df: (i: number) => number): R {
  const y = a.data.map(f);
  return out(y, a.shape, [a], (o) => {
    for (let i = 0; i < y.length; i++) a.grad[i] += o.grad[i]! * df(i);
  });
}

// ---------- checks ----------

/**
 * Central differences of L = Σ seed·f(inputs) in float64 for every element of the inputs listed
 * in `which`; returns the numeric gradients (for comparison with backwardRef's).
 */
export function numericGrads(f: (xs: R[]) => R, data: { data: ArrayLike<number>; shape: Shape }[], seed: ArrayLike<number>, which: number[], h = 1e-6): Float64Array[] {
  const base = data.map((d) => Float64Array.from(d.data));
  const L = (vals: Float64Array[]) => {
    const y = f(vals.map((v, i) => leaf(v, data[i]!.shape)));
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += y.data[i]! * seed[i]!;
    return s;
  };
  return which.map((w) => {
    const g = new Float64Array(base[w]!.length);
    for (let i = 0; i < g.length; i++) {
      const old = base[w]![i]!;
      base[w]![i] = old + h;
      const lp = L(base);
      base[w]![i] = old - h;
      const lm = L(base);
      base[w]![i] = old;
      g[i] = (lp - lm) / (2 * h);
    }
    return g;
  });
}
