// CPU references (float64, plain loops) for SGD and AdamW (PyTorch 1.13 single-tensor formulas), global-norm clipping and LR schedule factors.

export interface SgdRefHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export interface AdamWRefHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  maximize: boolean;
}

/** One SGD update of p (in place); `buf` null means no momentum buffer yet. Returns the buffer. */
export function sgdStepRef(p: Float64Array, g: ArrayLike<number>, buf: Float64Array | null, h: SgdRefHyper): Float64Array | null {
  const d = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) d[i] = h.maximize ? -g[i]! : g[i]!;
  if (h.weightDecay !== 0) for (let i = 0; i < p.length; i++) d[i] = d[i]! + h.weightDecay * p[i]!;
  let b = buf;
  if (h.momentum !== 0) {
    if (!b) b = Float64Array.from(d);
    else for (let i = 0; i < p.length; i++) b[i] = h.momentum * b[i]! + (1 - h.dampening) * d[i]!;
    for (let i = 0; i < p.length; i++) d[i] = h.nesterov ? d[i]! + h.momentum * b[i]! : b[i]!;
  }
  for (let i = 0; i < p.length; i++) p[i] = p[i]! - h.lr * d[i]!;
  return b;
}

export interface AdamWRefState {
  step: number;
  m: Float64Array;
  v: Float64Array;
  vmax: Float64Array;
}

export function adamwStateRef(n: number): AdamWRefState {
  return { step: 0, m: new Float64Array(n), v: new Float64Array(n), vmax: new Float64Array(n) };
}

/** One AdamW update of p and its state (in place). */
export function adamwStepRef(p: Float64Array, g: ArrayLike<number>, s: AdamWRefState, h: AdamWRefHyper, amsgrad: boolean): void {
  const [b1, b2] = h.betas;
  s.step++;
  const bc1 = 1 - b1 ** s.step;
  const bc2 = 1 - b2 ** s.step;
  for (let i = 0; i < p.length; i++) {
    const gi = h.maximize ? -g[i]! : g[i]!;
    p[i] = p[i]! * (1 - h.lr * h.weightDecay);
    s.m[i] = b1 * s.m[i]! + (1 - b1) * gi;
    s.v[i] = b2 * s.v[i]! + (1 - b2) * gi * gi;
    let vh = s.v[i]!;
    if (amsgrad) {
      s.vmax[i] = Math.max(s.vmax[i]!, vh);
      vh = s.vmax[i]!;
    }
    const denom = Math.sqrt(vh) / Math.sqrt(bc2) + h.eps;
    p[i] = p[i]! - (h.lr / bc1) * (s.m[i]! / denom);
  }
}

/** Global norm of all gradients together: L2 (normType 2) or max |g| (Infinity). */
export function gradNormRef(grads: readonly ArrayLike<number>[], normType = 2): number {
  let acc = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]!);
      acc = normType === Infinity ? Math.max(acc, a) : acc + a * a;
    }
  }
  return normType === Infinity ? acc : Math.sqrt(acc);
}

/** torch.nn.utils.clip_grad_norm_'s coefficient. */
export function clipCoefRef(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/** HF transformers get_linear_schedule_with_warmup, written from its definition. */
export function linearWarmupRef(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  return Math.max(0, (total - step) / Math.max(1, total - warmup));
}

/** HF transformers get_cosine_schedule_with_warmup, written from its definition. */
export function cosineWarmupRef(step: number, warmup: number, total: number, cycles = 0.5): number {
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
}

/** StepLR in PyTorch's recursive (chainable) form: lr is multiplied by gamma when step % stepSize == 0. */
export function stepLrRef(base: number, steps: number, stepSize: number, gamma: number): number[] {
  const out = [base];
  let lr = base;
  for (let s = 1; s <= steps; s++) {
    if (s % stepSize === 0) lr *= gamma;
    out.push(lr);
  }
  return out;
}
