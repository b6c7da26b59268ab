// LoRA linear primitive: fused forward (one kernel) and a backward that never forms dW for a frozen base weight.
import { loraLinearForward, type LoraFusedVariant } from '../../kernels/lora.js';
import { matmul } from '../../kernels/matmul.js';
import { dropout, dropoutBackward, type SeedSource } from '../../kernels/dropout.js';
import { capturedSeed } from './misc.js';
import { scale } from '../../kernels/elementwise.js';
import { reduce } from '../../kernels/reduce.js';
import type { Shape, Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';

export interface LoraLinearParams {
  /** s = alpha / r (alpha / √r with rsLoRA). */
  scaling: number;
  /** Dropout probability on the A branch's input (PEFT's lora_dropout; 0 = none). */
  dropout: number;
  /** Dropout mask = Philox(seed) at element offset + i of x (the same mask as F.dropout(x, p, true, seed, offset)). */
  seed: number;
  offset: number;
  /** Force the kernel path / fused variant (tests, benchmarks). */
  path?: 'fused' | 'matmul';
  variant?: LoraFusedVariant;
}

export type LoraPrims = {
  /**
   * x [..., in] · w [out, in]ᵀ (+ bias [out]) + scaling · (dropout(x) · a [r, in]ᵀ) · b [out, r]ᵀ;
   * inputs [x, w, a, b] or [x, w, a, b, bias]. Saves u = dropout(x)·aᵀ [rows, r] for dB.
   */
  loraLinear: {
    params: LoraLinearParams;
    saved: {
      x: Tensor | null; w: Tensor | null; a: Tensor | null; b: Tensor | null; u: Tensor | null; xShape: Shape;
      /** Under step capture, the dropout seed cell forward and backward share (replays refill it). */
      seedAt: SeedSource | undefined;
    };
  };
};

const rowsOf = (s: Shape): number => s.slice(0, -1).reduce((p, d) => p * d, 1);

/** t [..., C] as [rows, C] (a view). */
const flat = (t: Tensor): Tensor => t.reshape([rowsOf(t.shape), t.shape[t.rank - 1]!]);

export const loraRules: Rules<LoraPrims> = {
  loraLinear: {
    forward: (ctx, [x, w, a, b, bias], p) => {
      const x2 = flat(x!);
      const seedAt = p.dropout > 0 ? capturedSeed(p.seed) : undefined;
      const xd = p.dropout > 0 ? dropout(x2, p.dropout, p.seed, p.offset, seedAt) : null;
      let r;
      try {
        r = loraLinearForward(x2, w!, a!, b!, { bias, scaling: p.scaling, xd, wantU: ctx.needs[3], path: p.path, variant: p.variant });
      } finally {
        xd?.dispose();
        x2.dispose();
      }
      const y = r.y.reshape([...x!.shape.slice(0, -1), w!.shape[0]!]);
      r.y.dispose();
      const needDx = ctx.needs[0];
      return {
        out: [y],
        saved: {
          x: ctx.needs[1] || ctx.needs[2] ? ctx.save(x!) : null,
          w: needDx ? ctx.save(w!) : null,
          a: needDx ? ctx.save(a!) : null,
          b: needDx || ctx.needs[2] ? ctx.save(b!) : null,
          u: r.u ? ctx.own(r.u) : null,
          xShape: x!.shape,
          seedAt,
        },
      };
    },
    backward: (ctx, [gy], s, p) => {
      const [needX, needW, needA, needB, needBias] = ctx.needs;
      const g2 = flat(gy!); // [rows, out]
      const x2 = s.x ? flat(s.x) : null; // [rows, in]
      const out: (Tensor | null)[] = [null, null, null, null, null];
      try {
        // gb = s·(dY·B) [rows, r], shared by dX and dA
        let gb: Tensor | null = null;
        if (needX || needA) {
          const t = matmul(g2, s.b!);
          gb = scale(t, p.scaling);
          t.dispose();
        }
        if (needX) {
          // dX = dY·W + dropout'(s·(dY·B)·A)
          let l = matmul(gb!, s.a!);
          if (p.dropout > 0) {
            const ld = dropoutBackward(l, p.dropout, p.seed, p.offset, s.seedAt);
            l.dispose();
            l = ld;
          }
          const dx = matmul(g2, s.w!, { residual: l });
          l.dispose();
          out[0] = dx.reshape(s.xShape);
          dx.dispose();
        }
        if (needW) out[1] = matmul(g2, x2!, { transA: true }); // only when the base weight is trainable
        if (needA) {
          // dA = (s·dY·B)ᵀ · dropout(x)  [r, in]
          const xd = p.dropout > 0 ? dropout(x2!, p.dropout, p.seed, p.offset, s.seedAt) : x2!;
          out[2] = matmul(gb!, xd, { transA: true });
          if (xd !== x2) xd.dispose();
        }
        gb?.dispose();
        if (needB) {
          // dB = s·dYᵀ·u  [out, r]
          const t = matmul(g2, s.u!, { transA: true });
          out[3] = scale(t, p.scaling);
          t.dispose();
        }
        if (needBias) out[4] = reduce(g2, 'sum', [0]);
      } catch (e) {
        for (const t of out) t?.dispose();
        throw e;
      } finally {
        g2.dispose();
        x2?.dispose();
      }
      return out;
    },
  },
};
