// CPU reference for LoRA (PEFT semantics), plain loops in float64: linear forward/backward, conv2d forward, merged weights.
export type Arr = ArrayLike<number>;

export interface LoraRefShapes {
  /** rows (batch × seq) */
  M: number;
  /** in features */
  K: number;
  /** out features */
  N: number;
  /** rank */
  R: number;
}

/**
 * y [M, N] = x·Wᵀ + bias + s·(xd·Aᵀ)·Bᵀ with xd = x ⊙ keep / (1 − p) (keep = null: no dropout).
 * W [N, K], A [R, K], B [N, R]. Also returns u = xd·Aᵀ [M, R].
 */
export function loraLinearRef(
  d: LoraRefShapes,
  x: Arr,
  w: Arr,
  a: Arr,
  b: Arr,
  bias: Arr | null,
  s: number,
  keep: Arr | null = null,
  p = 0,
): { y: Float64Array; u: Float64Array; xd: Float64Array } {
  const { M, K, N, R } = d;
  const xd = new Float64Array(M * K);
  for (let i = 0; i < M * K; i++) xd[i] = keep ? (keep[i] ? x[i]! / (1 - p) : 0) : x[i]!;
  const u = new Float64Array(M * R);
  for (let m = 0; m < M; m++) {
    for (let q = 0; q < R; q++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += xd[m * K + k]! * a[q * K + k]!;
      u[m * R + q] = acc;
    }
  }
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) acc += x[m * K + k]! * w[n * K + k]!;
      let l = 0;
      for (let q = 0; q < R; q++) l += u[m * R + q]! * b[n * R + q]!;
      y[m * N + n] = acc + s * l;
    }
  }
  return { y, u, xd };
}

/**
 * Gradients of L = Σ dy ⊙ y for loraLinearRef: dX = dY·W + dropout'(s·(dY·B)·A), dW = dYᵀ·x,
 * dA = s·(dY·B)ᵀ·xd, dB = s·dYᵀ·u, dbias = Σ_rows dY.
 */
export function loraLinearBackwardRef(
  d: LoraRefShapes,
  dy: Arr,
  x: Arr,
  w: Arr,
  a: Arr,
  b: Arr,
  s: number,
  keep: Arr | null = null,
  p = 0,
): { dx: Float64Array; dw: Float64Array; da: Float64Array; db: Float64Array; dbias: Float64Array } {
  const { M, K, N, R } = d;
  const { u, xd } = loraLinearRef(d, x, w, a, b, null, s, keep, p);
  const g = new Float64Array(M * R); // dY·B
  for (let m = 0; m < M; m++) {
    for (let q = 0; q < R; q++) {
      let acc = 0;
      for (let n = 0; n < N; n++) acc += dy[m * N + n]! * b[n * R + q]!;
      g[m * R + q] = acc;
    }
  }
  const dx = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let base = 0;
      for (let n = 0; n < N; n++) base += dy[m * N + n]! * w[n * K + k]!;
      let l = 0;
      for (let q = 0; q < R; q++) l += g[m * R + q]! * a[q * K + k]!;
      l *= s;
      if (keep) l = keep[m * K + k] ? l / (1 - p) : 0;
      dx[m * K + k] = base + l;
    }
  }
  const dw = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dy[m * N + n]! * x[m * K + k]!;
      dw[n * K + k] = acc;
    }
  }
  const da = new Float64Array(R * K);
  for (let q = 0; q < R; q++) {
    for (let k = 0; k < K; k++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += g[m * R + q]! * xd[m * K + k]!;
      da[q * K + k] = s * acc;
    }
  }
  const db = new Float64Array(N * R);
  for (let n = 0; n < N; n++) {
    for (let q = 0; q < R; q++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dy[m * N + n]! * u[m * R + q]!;
      db[n * R + q] = s * acc;
    }
  }
  const dbias = new Float64Array(N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) dbias[n]! += dy[m * N + n]!;
  return { dx, dw, da, db, dbias };
}

/** Merged weight W + s·B·A for W [N, ...rest] (conv kernels flattened), A [R, prod(rest)], B [N, R]. */
export function mergedWeightRef(w: Arr, a: Arr, b: Arr, N: number, R: number, s: number): Float64Array {
  const rest = w.length / N;
  const out = Float64Array.from(w);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < rest; j++) {
      let acc = 0;
      for (let q = 0; q < R; q++) acc += b[n * R + q]! * a[q * rest + j]!;
      out[n * rest + j]! += s * acc;
    }
  }
  return out;
}

/** Plain NCHW convolution (no dilation, groups 1): x [Nb, C, H, W] ⋆ w [O, C, kh, kw] (+ bias). */
export function conv2dPlainRef(
  x: Arr,
  xs: readonly [number, number, number, number],
  w: Arr,
  ws: readonly [number, number, number, number],
  bias: Arr | null,
  stride: number,
  pad: number,
): { y: Float64Array; shape: [number, number, number, number] } {
  const [Nb, C, H, W] = xs;
  const [O, , kh, kw] = ws;
  const Ho = Math.floor((H + 2 * pad - kh) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - kw) / stride) + 1;
  const y = new Float64Array(Nb * O * Ho * Wo);
  for (let n = 0; n < Nb; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < Ho; i++) {
        for (let j = 0; j < Wo; j++) {
          let acc = bias ? bias[o]! : 0;
          for (let c = 0; c < C; c++) {
            for (let di = 0; di < kh; di++) {
              const hi = i * stride - pad + di;
              if (hi < 0 || hi >= H) continue;
              for (let dj = 0; dj < kw; dj++) {
                const wj = j * stride - pad + dj;
                if (wj < 0 || wj >= W) continue;
                acc += x[((n * C + c) * H + hi) * W + wj]! * w[((o * C + c) * kh + di) * kw + dj]!;
              }
            }
          }
          y[((n * O + o) * Ho + i) * Wo + j] = acc;
        }
      }
    }
  }
  return { y, shape: [Nb, O, Ho, Wo] };
}

/** PEFT's LoRA conv forward: conv(x, W) + bias + s·conv1x1(conv(x, A, stride, pad), B). */
export function loraConv2dRef(
  x: Arr,
  xs: readonly [number, number, number, number],
  w: Arr,
  ws: readonly [number, number, number, number],
  bias: Arr | null,
  a: Arr,
  b: Arr,
  R: number,
  s: number,
  stride: number,
  pad: number,
): { y: Float64Array; shape: [number, number, number, number] } {
  const base = conv2dPlainRef(x, xs, w, ws, bias, stride, pad);
  const ua = conv2dPlainRef(x, xs, a, [R, ws[1], ws[2], ws[3]], null, stride, pad);
  const lb = conv2dPlainRef(ua.y, ua.shape, b, [ws[0], R, 1, 1], null, 1, 0);
  const y = base.y.map((v, i) => v + s * lb.y[i]!);
  return { y, shape: base.shape };
}
