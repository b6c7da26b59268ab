// Unfused reference paths behind the fusion switches (src/runtime/fusion.ts): attention and cross-entropy
// composed from ordinary differentiable ops, so forward and backward run as separate kernels.
import { Tensor } from '../../tensor.js';
import { binary, scale as scaleKernel } from '../../kernels/elementwise.js';
import { embedding as embeddingKernel } from '../../kernels/embedding.js';
import { reduce } from '../../kernels/reduce.js';
import * as F from '../functional.js';

/** Large negative added to masked scores: exp() underflows to exactly 0, as the fused kernel's weight 0. */
const MASKED = -1e30;

/**
 * softmax(q kᵀ · scale + mask bias (+ causal bias)) · v for q [B, H, Tq, Dh], k, v [B, H, Tk, Dh],
 * mask [B, Tk] (1 keep, 0 pad). Separate kernels: matmul, scale, add, softmax, matmul; autograd records each.
 * A sequence whose keys are all masked gets output 0 (and no gradient), as in the fused kernel.
 */
export function attentionUnfused(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, scale: number | undefined, causal: boolean): Tensor {
  const [B, , Tq, Dh] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  const kt = F.transpose(k, 2, 3); // [B, H, Dh, Tk]
  const s = F.matmul(q, kt); // [B, H, Tq, Tk]
  kt.dispose();
  let logits = F.mul(s, scale ?? 1 / Math.sqrt(Dh));
  s.dispose();
  if (mask) {
    // 1 -> 0, 0 -> MASKED, broadcast over heads and queries: [B, 1, 1, Tk]
    const bias = scaleKernel(mask, -MASKED, MASKED);
    const b4 = bias.reshape([B, 1, 1, Tk]);
    const next = F.add(logits, b4);
    bias.dispose();
    b4.dispose();
    logits.dispose();
    logits = next;
  }
  if (causal) {
    // query i sees keys j <= i (top-left aligned): [Tq, Tk] bias
    const data = new Float32Array(Tq * Tk);
    for (let i = 0; i < Tq; i++) for (let j = i + 1; j < Tk; j++) data[i * Tk + j] = MASKED;
    const cb = Tensor.from(q.rt, data, [Tq, Tk]);
    const next = F.add(logits, cb);
    cb.dispose();
    logits.dispose();
    logits = next;
  }
  const p = F.softmax(logits, -1);
  logits.dispose();
  const out = F.matmul(p, v); // [B, H, Tq, Dh]
  p.dispose();
  if (!mask) return out;
  // softmax over all-masked keys is uniform; the fused kernel gives 0: zero those sequences
  const any = reduce(mask, 'max', [1]); // [B]
  const any4 = any.reshape([B, 1, 1, 1]);
  const y = F.mul(out, any4);
  for (const t of [any, any4, out]) t.dispose();
  return y;
}

export interface CeUnfusedOpts {
  labelSmoothing: number;
  ignoreIndex: number;
  reduction: 'mean' | 'sum' | 'none';
}

/**
 * Per-element target weights [B, C] (no gradient): (1 − ε)·[c = t] + ε/C on rows whose target is not
 * ignoreIndex, 0 on ignored rows; and the row-valid mask [B, 1]. Built with gather + compare kernels.
 */
function targetWeights(targets: Tensor, C: number, o: CeUnfusedOpts): { w: Tensor; valid: Tensor } {
  const rt = targets.rt;
  const B = targets.shape[0]!;
  // class c -> c + 1 (0 marks an id outside [0, C), which the gather returns as a zero row)
  const ids1 = Tensor.from(rt, Float32Array.from({ length: C }, (_, c) => c + 1), [C, 1]);
  const t1 = embeddingKernel(targets, ids1); // [B, 1]
  const row = ids1.reshape([1, C]);
  const onehot = binary(t1, row, 'eq'); // [B, C]
  const ign = o.ignoreIndex;
  let validMask: Tensor; // [B, 1]
  if (ign >= 0 && ign < C) {
    const isIgnored = binary(t1, ign + 1, 'eq');
    validMask = scaleKernel(isIgnored, -1, 1);
    isIgnored.dispose();
  } else validMask = binary(t1, 0, 'gt');
  const eps = o.labelSmoothing;
  const smoothed = scaleKernel(onehot, 1 - eps, eps / C);
  const w = binary(smoothed, validMask, 'mul');
  for (const t of [ids1, t1, row, onehot, smoothed]) t.dispose();
  return { w, valid: validMask };
}

/**
 * Cross-entropy of logits [B, C] against i32 targets [B] as log-softmax, weighted gather (one-hot
 * product), row sums and a mean over non-ignored rows, through autograd. Loss [1] ('mean' / 'sum') or [B].
 */
export function crossEntropyUnfused(logits: Tensor, targets: Tensor, o: CeUnfusedOpts): Tensor {
  const [B, C] = logits.shape as [number, number];
  const { w, valid } = targetWeights(targets, C, o);
  const lp = F.logSoftmax(logits, -1);
  const prod = F.mul(lp, w);
  lp.dispose();
  w.dispose();
  const rows = F.sum(prod, [1]); // [B]
  prod.dispose();
  const nll = F.neg(rows);
  rows.dispose();
  if (o.reduction === 'none') {
    valid.dispose();
    return nll;
  }
  const total = F.sum(nll); // []
  nll.dispose();
  const t1 = F.reshape(total, [1]);
  total.dispose();
  if (o.reduction === 'sum') {
    valid.dispose();
    return t1;
  }
  const vB = valid.reshape([B]);
  const count = F.sum(vB); // [] (no gradient)
  vB.dispose();
  valid.dispose();
  const c1 = count.reshape([1]);
  const out = F.div(t1, c1);
  for (const t of [t1, count, c1]) t.dispose();
  return out;
}
