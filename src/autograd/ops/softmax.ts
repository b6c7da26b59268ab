// Softmax-family primitives: softmax, log-softmax, cross-entropy (fused loss + dlogits), attention.
import { logSoftmax, softmax } from '../../kernels/softmax.js';
import { logSoftmaxBackward, softmaxBackward } from '../../kernels/norm-backward.js';
import { crossEntropy, crossEntropyBackwardScale } from '../../kernels/cross-entropy.js';
import { attention, attentionBackward } from '../../kernels/attention.js';
import { binary } from '../../kernels/elementwise.js';
import type { Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';

export interface CrossEntropyParams {
  /** i32 [B] class indices. */
  targets: Tensor;
  labelSmoothing: number;
  ignoreIndex: number;
  reduction: 'mean' | 'sum' | 'none';
}

export interface AttentionParams {
  /** [B, Tk], 1 = attend, 0 = padding. */
  mask: Tensor | null;
  /** Defaults to 1/sqrt(Dh). */
  scale: number | undefined;
  causal: boolean;
}

export type SoftmaxPrims = {
  softmax: { params: { axis: number }; saved: { y: Tensor } };
  logSoftmax: { params: { axis: number }; saved: { y: Tensor } };
  /** logits [B, C] -> loss [] (mean/sum) or [B] (none); the kernel also writes dlogits. */
  crossEntropy: { params: CrossEntropyParams; saved: { dlogits: Tensor | null } };
  /** q, k, v [B, H, T, Dh] -> out [B, H, Tq, Dh] (flash-style, saves the log-sum-exp). */
  attention: {
    params: AttentionParams;
    saved: { q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor; mask: Tensor | null };
  };
};

export const softmaxRules: Rules<SoftmaxPrims> = {
  softmax: {
    forward: (ctx, [x], p) => {
      const y = softmax(x!, p.axis);
      return { out: [y], saved: { y: ctx.save(y) } };
    },
    backward: (_ctx, [gy], s, p) => [softmaxBackward(s.y, gy!, p.axis)],
  },
  logSoftmax: {
    forward: (ctx, [x], p) => {
      const y = logSoftmax(x!, p.axis);
      return { out: [y], saved: { y: ctx.save(y) } };
    },
    backward: (_ctx, [gy], s, p) => [logSoftmaxBackward(s.y, gy!, p.axis)],
  },
  crossEntropy: {
    forward: (ctx, [logits], p) => {
      const opts = { labelSmoothing: p.labelSmoothing, ignoreIndex: p.ignoreIndex, reduction: p.reduction, grad: ctx.needs[0] };
      const r = crossEntropy(logits!, p.targets, opts);
      return { out: [r.loss], saved: { dlogits: r.dlogits && ctx.own(r.dlogits) } };
    },
    // dlogits is d(loss)/d(logits); scale it by the incoming gradient (per row for reduction 'none').
    backward: (_ctx, [gy], s, p) => {
      const col = p.reduction === 'none' ? gy!.reshape([gy!.size, 1]) : gy!.reshape([1]);
      const dx = p.reduction === 'none' ? binary(s.dlogits!, col, 'mul') : crossEntropyBackwardScale(s.dlogits!, col);
      col.dispose();
      return [dx];
    },
  },
  attention: {
    forward: (ctx, [q, k, v], p) => {
      const opts = { mask: p.mask ?? undefined, scale: p.scale, causal: p.causal };
      const r = attention(q!, k!, v!, opts);
      return {
        out: [r.out],
        saved: {
          q: ctx.save(q!),
          k: ctx.save(k!),
          v: ctx.save(v!),
          out: ctx.save(r.out),
          lse: ctx.own(r.lse),
          mask: p.mask && ctx.save(p.mask),
        },
      };
    },
    backward: (ctx, [gy], s, p) => {
      const r = attentionBackward(gy!, s.q, s.k, s.v, s.out, s.lse, { mask: s.mask ?? undefined, scale: p.scale, causal: p.causal });
      const pick = (t: Tensor, i: number) => (ctx.needs[i] ? t : (t.dispose(), null));
      return [pick(r.dq, 0), pick(r.dk, 1), pick(r.dv, 2)];
    },
  },
};
