// Benchmark problem shapes (matmul, conv2d), their labels, seeded host data and NCHW <-> NHWC layout moves.

/** C[batch, m, n] = A[batch, m, k] · B[batch, k, n]; batch 1 means plain 2-D operands. */
export interface MatmulShape {
  m: number;
  n: number;
  k: number;
  batch: number;
}

/** x [n, c, h, w] (NCHW) ⊛ w [k, c/groups, r, s] (KCRS) → [n, k, p, q]. */
export interface Conv2dShape {
  n: number;
  c: number;
  h: number;
  w: number;
  k: number;
  r: number;
  s: number;
  stride: [number, number];
  pad: [number, number];
  dilation: [number, number];
  groups: number;
}

/** A conv2d shape from the usual short form; s defaults to r, stride/pad/dilation to 1/0/1, groups to 1. */
export function convShape(o: {
  n: number;
  c: number;
  h: number;
  w?: number;
  k: number;
  r: number;
  s?: number;
  stride?: number | [number, number];
  pad?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}): Conv2dShape {
  const two = (v: number | [number, number] | undefined, d: number): [number, number] =>
    v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  return {
    n: o.n,
    c: o.c,
    h: o.h,
    w: o.w ?? o.h,
    k: o.k,
    r: o.r,
    s: o.s ?? o.r,
    stride: two(o.stride, 1),
    pad: two(o.pad, 0),
    dilation: two(o.dilation, 1),
    groups: o.groups ?? 1,
  };
}

/** Output spatial size [p, q] of a conv2d shape (may be <= 0 for impossible shapes). */
export function convOutSize(s: Conv2dShape): [number, number] {
  const p = Math.floor((s.h + 2 * s.pad[0] - s.dilation[0] * (s.r - 1) - 1) / s.stride[0]) + 1;
  const q = Math.floor((s.w + 2 * s.pad[1] - s.dilation[1] * (s.s - 1) - 1) / s.stride[1]) + 1;
  return [p, q];
}

/** `[batch× ]m×k · k×n`: the two operand shapes, unambiguous about which dimension is which. */
export function matmulLabel(s: MatmulShape): string {
  return `${s.batch > 1 ? `${s.batch}× ` : ''}${s.m}×${s.k} · ${s.k}×${s.n}`;
}

const pairLabel = (v: [number, number]): string => (v[0] === v[1] ? `${v[0]}` : `${v[0]},${v[1]}`);

export function convLabel(s: Conv2dShape): string {
  const [p, q] = convOutSize(s);
  const ks = s.r === s.s ? `${s.r}×${s.r}` : `${s.r}×${s.s}`;
  const extra =
    (s.dilation[0] !== 1 || s.dilation[1] !== 1 ? ` d${pairLabel(s.dilation)}` : '') + (s.groups !== 1 ? ` g${s.groups}` : '');
  return `n${s.n} ${s.c}×${s.h}×${s.w} → ${s.k}×${p}×${q} ${ks}/${pairLabel(s.stride)} p${pairLabel(s.pad)}${extra}`;
}

/** n values uniform in [-1, 1), seeded (mulberry32) so runs and peers see the same data. */
export function seededData(n: number, seed: number): Float32Array {
  let st = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    st = (st + 0x6d2b79f5) >>> 0;
    let t = st;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Host operands of a matmul shape: a [batch, m, k], b [batch, k, n] (seeded). */
export function matmulHostData(s: MatmulShape, seed = 1): { a: Float32Array; b: Float32Array } {
  return { a: seededData(s.batch * s.m * s.k, seed), b: seededData(s.batch * s.k * s.n, seed + 1) };
}

/** Host operands of a conv2d shape: x [n, c, h, w], w [k, c/groups, r, s] (seeded). */
export function conv2dHostData(s: Conv2dShape, seed = 1): { x: Float32Array; w: Float32Array } {
  return { x: seededData(s.n * s.c * s.h * s.w, seed), w: seededData(s.k * (s.c / s.groups) * s.r * s.s, seed + 1) };
}

/** [n, c, h, w] → [n, h, w, c]. */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) out[((b * h + y) * w + xx) * c + ch] = x[((b * c + ch) * h + y) * w + xx]!;
  return out;
}

/** [n, h, w, c] → [n, c, h, w]. */
export function nhwcToNchw(x: ArrayLike<number>, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch]!;
  return out;
}

/** Weights [k, cg, r, s] (KCRS) → [r, s, cg, k] (HWIO, TensorFlow's conv2d filter layout). */
export function kcrsToRsck(wt: Float32Array, k: number, cg: number, r: number, s: number): Float32Array {
  const out = new Float32Array(wt.length);
  for (let o = 0; o < k; o++)
    for (let i = 0; i < cg; i++)
      for (let y = 0; y < r; y++) for (let x = 0; x < s; x++) out[((y * s + x) * cg + i) * k + o] = wt[((o * cg + i) * r + y) * s + x]!;
  return out;
}

/** Largest |a - b| and largest |b| (to judge the difference against the output's scale). */
export function diffStats(a: ArrayLike<number>, b: ArrayLike<number>): { maxAbsDiff: number; maxAbsRef: number } {
  if (a.length !== b.length) throw new RangeError(`diffStats: lengths ${a.length} and ${b.length} differ`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    if (!(e <= d)) d = e; // NaN propagates
    m = Math.max(m, Math.abs(b[i]!));
  }
  return { maxAbsDiff: d, maxAbsRef: m };
}
