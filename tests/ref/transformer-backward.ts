// CPU references (plain loops, float64) for transformer training ops: forward AND backward of attention, cross-entropy, dropout, layer norm, softmax, activations, embedding.
type Arr = ArrayLike<number>;

// ---------------------------------------------------------------------------------------------
// Activations: forward y = f(x) and derivative f'(x) (backward dx = dy * f'(x)).

export type ActOp = 'relu' | 'gelu' | 'gelu_tanh' | 'tanh' | 'sigmoid';

/** erf to ~1e-16: erf(x) = 2/√π e^{-x²} Σ 2^n x^{2n+1} / (1·3·…·(2n+1)) (all terms positive, no cancellation). */
export function erfRef(x: number): number {
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  let term = a;
  let sum = a;
  for (let n = 1; n < 200; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
  return x < 0 ? -r : r;
}

const GELU_K = Math.sqrt(2 / Math.PI);

export function activationRef(x: number, op: ActOp): number {
  switch (op) {
    case 'relu':
      return x > 0 ? x : 0;
    case 'gelu':
      return 0.5 * x * (1 + erfRef(x / Math.SQRT2));
    case 'gelu_tanh':
      return 0.5 * x * (1 + Math.tanh(GELU_K * (x + 0.044715 * x * x * x)));
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
  }
}

/** f'(x); relu'(0) = 0 as in PyTorch. */
export function activationGradRef(x: number, op: ActOp): number {
  switch (op) {
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'gelu': {
      const cdf = 0.5 * (1 + erfRef(x / Math.SQRT2));
      const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      return cdf + x * pdf;
    }
    case 'gelu_tanh': {
      const u = GELU_K * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x);
    }
    case 'tanh': {
      const t = Math.tanh(x);
      return 1 - t * t;
    }
    case 'sigmoid': {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 - s);
    }
  }
}

export function activationBackwardRef(x: Arr, dy: Arr, op: ActOp): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = dy[i]! * activationGradRef(x[i]!, op);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Softmax / log-softmax along one axis of x viewed as [outer, D, inner].

export function axisGeometry(shape: readonly number[], axis: number): { outer: number; D: number; inner: number } {
  const a = axis < 0 ? axis + shape.length : axis;
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < a; i++) outer *= shape[i]!;
  for (let i = a + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, D: shape[a]!, inner };
}

export function softmaxRef(x: Arr, shape: readonly number[], axis: number, log: boolean): Float64Array {
  const { outer, D, inner } = axisGeometry(shape, axis);
  const y = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let n = 0; n < inner; n++) {
      const at = (j: number) => (o * D + j) * inner + n;
      let m = -Infinity;
      for (let j = 0; j < D; j++) m = Math.max(m, x[at(j)]!);
      let s = 0;
      for (let j = 0; j < D; j++) s += Math.exp(x[at(j)]! - m);
      for (let j = 0; j < D; j++) y[at(j)] = log ? x[at(j)]! - m - Math.log(s) : Math.exp(x[at(j)]! - m) / s;
    }
  }
  return y;
}

/** Softmax: dx = y (dy - Σ dy·y). Log-softmax (y = log p): dx = dy - exp(y) Σ dy. */
export function softmaxBackwardRef(y: Arr, dy: Arr, shape: readonly number[], axis: number, log: boolean): Float64Array {
  const { outer, D, inner } = axisGeometry(shape, axis);
  const dx = new Float64Array(y.length);
  for (let o = 0; o < outer; o++) {
    for (let n = 0; n < inner; n++) {
      const at = (j: number) => (o * D + j) * inner + n;
      let s = 0;
      for (let j = 0; j < D; j++) s += log ? dy[at(j)]! : dy[at(j)]! * y[at(j)]!;
      for (let j = 0; j < D; j++) {
        const k = at(j);
        dx[k] = log ? dy[k]! - Math.exp(y[k]!) * s : y[k]! * (dy[k]! - s);
      }
    }
  }
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Layer norm over the last dim D: x [rows, D], weight/bias [D] or null.

export function layerNormRef(
  x: Arr,
  D: number,
  weight: Arr | null,
  bias: Arr | null,
  eps: number,
): { y: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const rows = x.length / D;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < D; j++) m += x[r * D + j]!;
    m /= D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (x[r * D + j]! - m) ** 2;
    v /= D;
    const rs = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let j = 0; j < D; j++) {
      const xh = (x[r * D + j]! - m) * rs;
      y[r * D + j] = xh * (weight ? weight[j]! : 1) + (bias ? bias[j]! : 0);
    }
  }
  return { y, mean, rstd };
}

export function layerNormBackwardRef(
  dy: Arr,
  x: Arr,
  D: number,
  weight: Arr | null,
  eps: number,
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const rows = x.length / D;
  const { mean, rstd } = layerNormRef(x, D, null, null, eps);
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(D);
  const dbias = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < D; j++) {
      const xh = (x[r * D + j]! - mean[r]!) * rstd[r]!;
      const g = dy[r * D + j]! * (weight ? weight[j]! : 1);
      sg += g;
      sgx += g * xh;
      dweight[j] += dy[r * D + j]! * xh;
      dbias[j] += dy[r * D + j]!;
    }
    for (let j = 0; j < D; j++) {
      const xh = (x[r * D + j]! - mean[r]!) * rstd[r]!;
      const g = dy[r * D + j]! * (weight ? weight[j]! : 1);
      dx[r * D + j] = rstd[r]! * (g - sg / D - (xh * sgx) / D);
    }
  }
  return { dx, dweight, dbias };
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy (PyTorch semantics): logits [B, C], targets [B].

export interface CeRefOptions {
  labelSmoothing?: number;
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
}

/** Per-row losses (0 for ignored rows), the reduced loss (NaN mean when nothing counts) and the count. */
export function crossEntropyRef(
  logits: Arr,
  targets: Arr,
  C: number,
  o: CeRefOptions = {},
): { rows: Float64Array; loss: number; count: number } {
  const B = targets.length;
  const eps = o.labelSmoothing ?? 0;
  const ignore = o.ignoreIndex ?? -100;
  const rows = new Float64Array(B);
  let count = 0;
  let sum = 0;
  for (let b = 0; b < B; b++) {
    const t = targets[b]!;
    if (t === ignore) continue;
    count++;
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, logits[b * C + j]!);
    let s = 0;
    let sx = 0;
    for (let j = 0; j < C; j++) {
      s += Math.exp(logits[b * C + j]! - m);
      sx += logits[b * C + j]!;
    }
    const lse = m + Math.log(s);
    rows[b] = (1 - eps) * (lse - logits[b * C + t]!) + (eps / C) * (C * lse - sx);
    sum += rows[b]!;
  }
  const red = o.reduction ?? 'mean';
  const loss = red === 'mean' ? sum / count : red === 'sum' ? sum : NaN;
  return { rows, loss, count };
}

/** d(loss)/d(logits): of the mean or sum for those reductions, of Σ rows for 'none'. */
export function crossEntropyBackwardRef(logits: Arr, targets: Arr, C: number, o: CeRefOptions = {}): Float64Array {
  const B = targets.length;
  const eps = o.labelSmoothing ?? 0;
  const ignore = o.ignoreIndex ?? -100;
  let count = 0;
  for (let b = 0; b < B; b++) if (targets[b] !== ignore) count++;
  const scale = (o.reduction ?? 'mean') === 'mean' ? 1 / count : 1;
  const d = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    const t = targets[b]!;
    if (t === ignore) continue;
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, logits[b * C + j]!);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(logits[b * C + j]! - m);
    for (let j = 0; j < C; j++) {
      const p = Math.exp(logits[b * C + j]! - m) / s;
      d[b * C + j] = scale * (p - (j === t ? 1 - eps : 0) - eps / C);
    }
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Dropout with a given keep mask (1 = keep): y = x * mask / (1 - p); backward identical on dy.

export function dropoutRef(x: Arr, mask: Arr, p: number): Float64Array {
  const y = new Float64Array(x.length);
  const s = p >= 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < x.length; i++) y[i] = mask[i] ? x[i]! * s : 0;
  return y;
}

export const dropoutBackwardRef = dropoutRef;

// ---------------------------------------------------------------------------------------------
// Embedding: table [V, D], ids [N] -> out [N, D]; backward scatter-adds dy rows into dTable [V, D].

export function embeddingRef(table: Arr, ids: Arr, D: number): Float64Array {
  const out = new Float64Array(ids.length * D);
  for (let i = 0; i < ids.length; i++) for (let d = 0; d < D; d++) out[i * D + d] = table[ids[i]! * D + d]!;
  return out;
}

export function embeddingBackwardRef(ids: Arr, dy: Arr, V: number, D: number, paddingIdx?: number): Float64Array {
  const g = new Float64Array(V * D);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === paddingIdx || id < 0 || id >= V) continue;
    for (let d = 0; d < D; d++) g[id * D + d] += dy[i * D + d]!;
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// Scaled dot-product attention: q [B,H,Tq,Dh], k/v [B,H,Tk,Dh], mask [B,Tk] (1 attend, 0 pad) or
// null, causal = top-left aligned (key j visible to query i iff j <= i, as torch SDPA is_causal).
// Fully-masked rows: output 0, lse -Infinity, no gradient.

export interface AttnRefOptions {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  mask?: Arr | null;
  scale?: number;
  causal?: boolean;
}

function visible(o: AttnRefOptions, b: number, i: number, j: number): boolean {
  if (o.causal && j > i) return false;
  return !o.mask || o.mask[b * o.Tk + j] !== 0;
}

/** P [B,H,Tq,Tk] (0 where masked; an all-zero row when fully masked) and lse [B,H,Tq]. */
export function attentionProbsRef(q: Arr, k: Arr, o: AttnRefOptions): { P: Float64Array; lse: Float64Array } {
  const { B, H, Tq, Tk, Dh } = o;
  const scale = o.scale ?? 1 / Math.sqrt(Dh);
  const P = new Float64Array(B * H * Tq * Tk);
  const lse = new Float64Array(B * H * Tq);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < Tq; i++) {
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          if (!visible(o, b, i, j)) continue;
          let acc = 0;
          for (let d = 0; d < Dh; d++) acc += q[(bh * Tq + i) * Dh + d]! * k[(bh * Tk + j) * Dh + d]!;
          s[j] = acc * scale;
          m = Math.max(m, s[j]!);
        }
        if (m === -Infinity) {
          lse[bh * Tq + i] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) if (visible(o, b, i, j)) sum += Math.exp(s[j]! - m);
        const l = m + Math.log(sum);
        lse[bh * Tq + i] = l;
        for (let j = 0; j < Tk; j++) if (visible(o, b, i, j)) P[(bh * Tq + i) * Tk + j] = Math.exp(s[j]! - l);
      }
    }
  }
  return { P, lse };
}

export function attentionRef(q: Arr, k: Arr, v: Arr, o: AttnRefOptions): { out: Float64Array; lse: Float64Array } {
  const { B, H, Tq, Tk, Dh } = o;
  const { P, lse } = attentionProbsRef(q, k, o);
  const out = new Float64Array(B * H * Tq * Dh);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      for (let j = 0; j < Tk; j++) {
        const pij = P[(bh * Tq + i) * Tk + j]!;
        if (pij === 0) continue;
        for (let d = 0; d < Dh; d++) out[(bh * Tq + i) * Dh + d] += pij * v[(bh * Tk + j) * Dh + d]!;
      }
    }
  }
  return { out, lse };
}

/** dq, dk, dv of L = Σ dOut·out, through the explicit probability matrix. */
export function attentionBackwardRef(
  dOut: Arr,
  q: Arr,
  k: Arr,
  v: Arr,
  o: AttnRefOptions,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, H, Tq, Tk, Dh } = o;
  const scale = o.scale ?? 1 / Math.sqrt(Dh);
  const { P } = attentionProbsRef(q, k, o);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dP = new Float64Array(Tk);
  for (let bh = 0; bh < B * H; bh++) {
    for (let i = 0; i < Tq; i++) {
      const qi = (bh * Tq + i) * Dh;
      // dP_ij = dO_i · v_j ; dS_ij = P_ij (dP_ij - Σ_l P_il dP_il)
      let rowDot = 0;
      for (let j = 0; j < Tk; j++) {
        let acc = 0;
        for (let d = 0; d < Dh; d++) acc += dOut[qi + d]! * v[(bh * Tk + j) * Dh + d]!;
        dP[j] = acc;
        rowDot += P[(bh * Tq + i) * Tk + j]! * acc;
      }
      for (let j = 0; j < Tk; j++) {
        const pij = P[(bh * Tq + i) * Tk + j]!;
        if (pij === 0) continue;
        const ds = pij * (dP[j]! - rowDot) * scale;
        const kj = (bh * Tk + j) * Dh;
        for (let d = 0; d < Dh; d++) {
          dv[kj + d] += pij * dOut[qi + d]!;
          dq[qi + d] += ds * k[kj + d]!;
          dk[kj + d] += ds * q[qi + d]!;
        }
      }
    }
  }
  return { dq, dk, dv };
}

// ---------------------------------------------------------------------------------------------
// Central finite differences of a scalar function, float64.

/** ∂f/∂x_i for the listed indices by (f(x + h e_i) - f(x - h e_i)) / 2h. */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, indices: readonly number[], h = 1e-6): Float64Array {
  const g = new Float64Array(indices.length);
  indices.forEach((i, n) => {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const fp = f(x);
    x[i] = x0 - h;
    const fm = f(x);
    x[i] = x0;
    g[n] = (fp - fm) / (2 * h);
  });
  return g;
}

/** Σ a·b (a scalar "loss" whose gradient w.r.t. b's producer is a). */
export function dot(a: Arr, b: Arr): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
