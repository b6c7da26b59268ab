// CPU reference for matmul: plain loops, float64 accumulation, numpy batch broadcasting, the same fused epilogue.
export type RefActivation = 'none' | 'relu' | 'gelu' | 'gelu_tanh';

export interface RefMatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: ArrayLike<number>;
  activation?: RefActivation;
  residual?: ArrayLike<number>;
}

/** erf(x) to ~1e-15: Maclaurin series for |x| < 3, continued fraction for erfc beyond. */
export function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) evaluated bottom-up
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

export function refActivation(v: number, act: RefActivation): number {
  switch (act) {
    case 'none':
      return v;
    case 'relu':
      return Math.max(v, 0);
    case 'gelu':
      return 0.5 * v * (1 + erf64(v / Math.SQRT2));
    case 'gelu_tanh':
      return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
  }
}

/**
 * out[...batch, M, N] = act(op(a)·op(b) + bias) + residual, with a [...batchA, M, K] (or [..., K, M]
 * when transA) and b [...batchB, K, N] (or [..., N, K] when transB); batch dims broadcast.
 */
export function refMatmul(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  o: RefMatmulOptions = {},
): { out: Float64Array; shape: number[] } {
  const ra = aShape.length;
  const rb = bShape.length;
  const M = o.transA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = o.transA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const N = o.transB ? bShape[rb - 2]! : bShape[rb - 1]!;
  const ab = aShape.slice(0, -2);
  const bb = bShape.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const outBatch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = ab[i - (rank - ab.length)] ?? 1;
    const db = bb[i - (rank - bb.length)] ?? 1;
    outBatch.push(Math.max(da, db));
  }
  const batch = outBatch.reduce((x, y) => x * y, 1);
  const out = new Float64Array(batch * M * N);
  // flat index of a batch element of an operand with batch dims `own` for output batch index z
  const srcBatch = (own: readonly number[], z: number): number => {
    let idx = 0;
    let mul = 1;
    let rest = z;
    for (let i = rank - 1; i >= 0; i--) {
      const d = outBatch[i]!;
      const c = rest % d;
      rest = Math.floor(rest / d);
      const j = i - (rank - own.length);
      if (j >= 0) {
        idx += (own[j] === 1 ? 0 : c) * mul;
        mul *= own[j]!;
      }
    }
    return idx;
  };
  for (let z = 0; z < batch; z++) {
    const ao = srcBatch(ab, z) * M * K;
    const bo = srcBatch(bb, z) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = o.transA ? a[ao + k * M + m]! : a[ao + m * K + k]!;
          const bv = o.transB ? b[bo + n * K + k]! : b[bo + k * N + n]!;
          s += av * bv;
        }
        if (o.bias) s += o.bias[n]!;
        s = refActivation(s, o.activation ?? 'none');
        const ci = (z * M + m) * N + n;
        if (o.residual) s += o.residual[ci]!;
        out[ci] = s;
      }
    }
  }
  return { out, shape: [...outBatch, M, N] };
}
