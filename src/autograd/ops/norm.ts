// Normalisation primitives: layer norm and 2-D batch norm (training batch statistics or eval running stats).
import { layerNorm } from '../../kernels/layernorm.js';
import { layerNormBackward, layerNormTrain } from '../../kernels/norm-backward.js';
import { batchNorm2d } from '../../kernels/batchnorm.js';
import { batchNorm2dBackward, batchNorm2dTrain, channelSum } from '../../kernels/batchnorm-train.js';
import { activationBackward } from '../../kernels/activation-backward.js';
import { binary, scale, unary } from '../../kernels/elementwise.js';
import type { Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';
import { consume } from './util.js';

/** Which optional affine inputs follow x: inputs are [x], [x, w], [x, b] or [x, w, b]. */
export interface Affine {
  weight: boolean;
  bias: boolean;
}

export type NormPrims = {
  /** Layer norm over the last dim of x [..., D]; weight/bias [D]. */
  layerNorm: {
    params: Affine & { eps: number };
    saved: { x: Tensor | null; w: Tensor | null; mean: Tensor | null; rstd: Tensor | null };
  };
  /** Batch norm with batch statistics, x [N, C, ...]; updates the running stats in place. */
  batchNorm2dTrain: {
    params: Affine & { runningMean: Tensor | null; runningVar: Tensor | null; momentum: number; eps: number };
    saved: { x: Tensor; w: Tensor | null; mean: Tensor; invstd: Tensor };
  };
  /** Batch norm with fixed (running) statistics, optional fused relu; still differentiable in x, w, b. */
  batchNorm2dEval: {
    params: Affine & { mean: Tensor; variance: Tensor; eps: number; activation: 'none' | 'relu' };
    saved: { x: Tensor | null; w: Tensor | null; mean: Tensor; variance: Tensor; y: Tensor | null };
  };
};

/** Split [x, w?, b?] by the affine flags. */
function affineInputs(inputs: readonly Tensor[], a: Affine): { x: Tensor; w: Tensor | null; b: Tensor | null } {
  return { x: inputs[0]!, w: a.weight ? inputs[1]! : null, b: a.bias ? inputs[a.weight ? 2 : 1]! : null };
}

/** Arrange [dx, dw, db] in the order of the inputs that exist. */
function affineGrads(a: Affine, dx: Tensor | null, dw: Tensor | null, db: Tensor | null): (Tensor | null)[] {
  const out = [dx];
  if (a.weight) out.push(dw);
  else dw?.dispose();
  if (a.bias) out.push(db);
  else db?.dispose();
  return out;
}

/** Reshape a per-channel vector [C] to broadcast over x [N, C, ...]. */
const perChannel = (v: Tensor, rank: number): Tensor => v.reshape([v.size, ...new Array<number>(Math.max(0, rank - 2)).fill(1)]);

export const normRules: Rules<NormPrims> = {
  layerNorm: {
    forward: (ctx, inputs, p) => {
      const { x, w, b } = affineInputs(inputs, p);
      if (!ctx.recording) return { out: [layerNorm(x, w, b, p.eps)], saved: { x: null, w: null, mean: null, rstd: null } };
      const r = layerNormTrain(x, w, b, p.eps);
      return { out: [r.y], saved: { x: ctx.save(x), w: w && ctx.save(w), mean: ctx.own(r.mean), rstd: ctx.own(r.rstd) } };
    },
    backward: (ctx, [gy], s, p) => {
      const needW = ctx.needs[1] && p.weight;
      const needB = ctx.needs[p.weight ? 2 : 1] && p.bias;
      // frozen weight and bias (LoRA, adapters, probes): dx only, no per-column reductions
      const r = layerNormBackward(gy!, s.x!, s.mean!, s.rstd!, s.w, !!(needW || needB));
      if (!ctx.needs[0]) r.dx.dispose();
      return affineGrads(p, ctx.needs[0] ? r.dx : null, needW ? r.dweight : (r.dweight?.dispose(), null), needB ? r.dbias : (r.dbias?.dispose(), null));
    },
  },
  batchNorm2dTrain: {
    forward: (ctx, inputs, p) => {
      const { x, w, b } = affineInputs(inputs, p);
      const r = batchNorm2dTrain(x, w, b, p.runningMean, p.runningVar, p.momentum, p.eps);
      return { out: [r.y], saved: { x: ctx.save(x), w: w && ctx.save(w), mean: ctx.own(r.mean), invstd: ctx.own(r.invstd) } };
    },
    backward: (ctx, [gy], s, p) => {
      const r = batchNorm2dBackward(gy!, s.x, s.mean, s.invstd, s.w);
      const keep = (t: Tensor, need: boolean | undefined) => (need ? t : (t.dispose(), null));
      return affineGrads(p, keep(r.dx, ctx.needs[0]), keep(r.dweight, ctx.needs[1] && p.weight), keep(r.dbias, ctx.needs[p.weight ? 2 : 1] && p.bias));
    },
  },
  batchNorm2dEval: {
    forward: (ctx, inputs, p) => {
      const { x, w, b } = affineInputs(inputs, p);
      const y = batchNorm2d(x, p.mean, p.variance, w, b, p.eps, p.activation);
      const needW = p.weight && ctx.needs[1];
      return {
        out: [y],
        saved: {
          x: needW ? ctx.save(x) : null,
          w: w && ctx.needs[0] ? ctx.save(w) : null,
          mean: ctx.save(p.mean),
          variance: ctx.save(p.variance),
          y: p.activation === 'relu' ? ctx.save(y) : null,
        },
      };
    },
    // y = (x - mean)·invstd·w + b:  dx = g·w·invstd,  dw = invstd·(Σ g·x − mean·Σ g),  db = Σ g  (Σ over all but C)
    backward: (ctx, [gy], s, p) => {
      const g = p.activation === 'relu' ? activationBackward(s.y!, gy!, 'relu') : gy!.reshape(gy!.shape);
      return consume(g, (g) => {
        const needW = ctx.needs[1] && p.weight;
        const needB = ctx.needs[p.weight ? 2 : 1] && p.bias;
        const invstd = consume(scale(s.variance, 1, p.eps), (v) => unary(v, 'rsqrt'));
        return consume(invstd, (invstd) => {
          let dx: Tensor | null = null;
          if (ctx.needs[0]) {
            const k = s.w ? binary(s.w, invstd, 'mul') : invstd.reshape(invstd.shape);
            dx = consume(k, (k) => consume(perChannel(k, g.rank), (kc) => binary(g, kc, 'mul')));
          }
          const sg = needW || needB ? channelSum(g) : null;
          let dw: Tensor | null = null;
          if (needW && sg) {
            const sgx = consume(binary(g, s.x!, 'mul'), (gx) => channelSum(gx));
            const centred = consume(sgx, (sgx) => consume(binary(s.mean, sg, 'mul'), (ms) => binary(sgx, ms, 'sub')));
            dw = consume(centred, (c) => binary(c, invstd, 'mul'));
          }
          const db = needB ? sg : (sg?.dispose(), null);
          return affineGrads(p, dx, dw, db);
        });
      });
    },
  },
};
