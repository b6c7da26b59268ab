// Matrix primitives: batched matmul and linear (x·Wᵀ + b with a fused bias / relu epilogue).
import { matmul } from '../../kernels/matmul.js';
import { activationBackward } from '../../kernels/activation-backward.js';
import { reduce } from '../../kernels/reduce.js';
import type { Shape, Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';
import { consume } from './util.js';

export type LinalgPrims = {
  /** a [..., M, K] @ b [..., K, N] (same batch dims) or b [K, N] (broadcast over a's batch). */
  matmul: { params: null; saved: { a: Tensor | null; b: Tensor | null; bShape: Shape } };
  /** x [..., in] · w [out, in]ᵀ (+ b [out]) then optional relu; inputs [x, w] or [x, w, b]. */
  linear: { params: { activation: 'none' | 'relu' }; saved: { x: Tensor | null; w: Tensor | null; y: Tensor | null } };
};

/** View t [..., R, C] as [rows, C]. */
const rows2d = (t: Tensor): Tensor => t.reshape([-1, t.shape[t.rank - 1]!]);

export const linalgRules: Rules<LinalgPrims> = {
  matmul: {
    forward: (ctx, [a, b]) => ({
      out: [matmul(a!, b!)],
      saved: { a: ctx.needs[1] ? ctx.save(a!) : null, b: ctx.needs[0] ? ctx.save(b!) : null, bShape: b!.shape },
    }),
    backward: (ctx, [gy], s) => {
      // dA = gy · Bᵀ  [..., M, K]
      const da = ctx.needs[0] ? matmul(gy!, s.b!, { transB: true }) : null;
      let db: Tensor | null = null;
      if (ctx.needs[1]) {
        const a = s.a!;
        if (s.bShape.length === 2 && a.rank > 2) {
          // b broadcast over a's batch: dB = Σ_batch Aᵀ · gy = A2ᵀ · G2 with rows = batch·M
          const a2 = rows2d(a);
          const g2 = rows2d(gy!);
          db = matmul(a2, g2, { transA: true });
          a2.dispose();
          g2.dispose();
        } else db = matmul(a, gy!, { transA: true });
      }
      return [da, db];
    },
  },
  linear: {
    forward: (ctx, [x, w, b], p) => {
      const y = matmul(x!, w!, { transB: true, bias: b, activation: p.activation });
      return {
        out: [y],
        saved: {
          x: ctx.needs[1] ? ctx.save(x!) : null,
          w: ctx.needs[0] ? ctx.save(w!) : null,
          y: p.activation === 'relu' ? ctx.save(y) : null,
        },
      };
    },
    backward: (ctx, [gy], s, p) => {
      // The relu mask is y > 0 (same as pre-activation > 0).
      const g = p.activation === 'relu' ? activationBackward(s.y!, gy!, 'relu') : gy!.reshape(gy!.shape);
      return consume(g, (g) => {
        const dx = ctx.needs[0] ? matmul(g, s.w!) : null; // [..., out] · [out, in]
        const g2 = rows2d(g);
        let dw: Tensor | null = null;
        if (ctx.needs[1]) {
          const x2 = rows2d(s.x!);
          dw = matmul(g2, x2, { transA: true }); // [out, rows] · [rows, in]
          x2.dispose();
        }
        const db = ctx.needs[2] ? reduce(g2, 'sum', [0]) : null;
        g2.dispose();
        return [dx, dw, db];
      });
    },
  },
};
