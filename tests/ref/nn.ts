// Plain-loop float64 CPU references for softmax, layer norm, batch norm, pooling and embedding.

/** softmax / log-softmax of x (shape) along `axis` (non-negative), float64 accumulation. */
export function softmaxRef(x: ArrayLike<number>, shape: readonly number[], axis: number, log = false): Float64Array {
  const d = shape[axis]!;
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  const outer = x.length / (d * inner);
  const y = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => o * d * inner + j * inner + i;
      let m = -Infinity;
      for (let j = 0; j < d; j++) m = Math.max(m, x[at(j)]!);
      let s = 0;
      for (let j = 0; j < d; j++) s += Math.exp(x[at(j)]! - m);
      for (let j = 0; j < d; j++) y[at(j)] = log ? x[at(j)]! - m - Math.log(s) : Math.exp(x[at(j)]! - m) / s;
    }
  }
  return y;
}

/** Layer norm over the last dim d of x ([rows, d]); residual added first when given. Biased variance. */
export function layerNormRef(
  x: ArrayLike<number>,
  d: number,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
  residual: ArrayLike<number> | null = null,
): Float64Array {
  const rows = x.length / d;
  const y = new Float64Array(x.length);
  const h = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) h[j] = x[r * d + j]! + (residual ? residual[r * d + j]! : 0);
    let mean = 0;
    for (let j = 0; j < d; j++) mean += h[j]!;
    mean /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (h[j]! - mean) ** 2;
    v /= d;
    const rstd = 1 / Math.sqrt(v + eps);
    for (let j = 0; j < d; j++) y[r * d + j] = (h[j]! - mean) * rstd * (weight ? weight[j]! : 1) + (bias ? bias[j]! : 0);
  }
  return y;
}

/** Inference batch norm on NCHW x: (x - mean[c]) / sqrt(var[c] + eps) * w[c] + b[c], optional relu. */
export function batchNormRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  weight: ArrayLike<number> | null,
  bias: ArrayLike<number> | null,
  eps: number,
  relu: boolean,
): Float64Array {
  const [n, c] = [shape[0]!, shape[1]!];
  const hw = x.length / (n * c);
  const y = new Float64Array(x.length);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < hw; i++) {
        const at = (b * c + k) * hw + i;
        let v = ((x[at]! - mean[k]!) / Math.sqrt(variance[k]! + eps)) * (weight ? weight[k]! : 1) + (bias ? bias[k]! : 0);
        if (relu) v = Math.max(v, 0);
        y[at] = v;
      }
  return y;
}

export interface PoolRefOptions {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  ceilMode: boolean;
  countIncludePad: boolean;
}

/** PyTorch's pooled output length along one axis. */
export function poolOutSize(len: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = len + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= len + p) out--; // the last window must start inside the input or left padding
  return out;
}

/** Max or average 2-D pooling on NCHW x, PyTorch semantics. Returns data and the output shape. */
export function pool2dRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  mode: 'max' | 'avg',
  o: PoolRefOptions,
): { data: Float64Array; shape: number[] } {
  const [n, c, h, w] = shape as [number, number, number, number];
  const [kh, kw] = o.kernel;
  const [sh, sw] = o.stride;
  const [ph, pw] = o.padding;
  const [dh, dw] = o.dilation;
  const oh = poolOutSize(h, kh, sh, ph, dh, o.ceilMode);
  const ow = poolOutSize(w, kw, sw, pw, dw, o.ceilMode);
  const y = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let acc = mode === 'max' ? -Infinity : 0;
        let count = 0;
        for (let a = 0; a < kh; a++)
          for (let b = 0; b < kw; b++) {
            const r = i * sh - ph + a * dh;
            const q = j * sw - pw + b * dw;
            if (r < 0 || r >= h || q < 0 || q >= w) continue;
            const v = x[(p * h + r) * w + q]!;
            if (mode === 'max') acc = Math.max(acc, v);
            else acc += v;
            count++;
          }
        if (mode === 'avg') {
          // PyTorch: the divisor counts padded positions up to the padded edge (not past it) when countIncludePad.
          const r0 = i * sh - ph;
          const q0 = j * sw - pw;
          const r1 = Math.min(r0 + kh, h + ph);
          const q1 = Math.min(q0 + kw, w + pw);
          const div = o.countIncludePad ? (r1 - r0) * (q1 - q0) : count;
          acc = count === 0 ? 0 : acc / div; // an all-padding window gives 0, as in PyTorch
        }
        y[(p * oh + i) * ow + j] = acc;
      }
  return { data: y, shape: [n, c, oh, ow] };
}

/** Mean over H×W of NCHW x -> [N, C]. */
export function globalAvgPoolRef(x: ArrayLike<number>, n: number, c: number, hw: number): Float64Array {
  const y = new Float64Array(n * c);
  for (let p = 0; p < n * c; p++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[p * hw + i]!;
    y[p] = s / hw;
  }
  return y;
}

/** Rows of table [v, d] gathered by ids; ids outside [0, v) give a zero row. */
export function embeddingRef(ids: ArrayLike<number>, table: ArrayLike<number>, v: number, d: number): Float64Array {
  const y = new Float64Array(ids.length * d);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id < 0 || id >= v) continue;
    for (let j = 0; j < d; j++) y[t * d + j] = table[id * d + j]!;
  }
  return y;
}
