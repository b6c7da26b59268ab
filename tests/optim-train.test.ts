// Optimizers with the autograd engine: backward accumulates into the grad arena, k micro-batches + gradScale 1/k equal one batch of k·b (with and without clipping), and clip + step stay submit-free.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import { backward, F } from '../src/autograd/index.js';
import { AdamW, SGD, clipGradNorm } from '../src/optim/index.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();
const IN = 33;
const OUT = IN;

/**
 * A small model without matmul (keeps pipeline compiles cheap on CPU adapters):
 * y = tanh(x ∘ w1 + b1) ∘ w2 + b2 with x [B, 33] and params w1, b1, w2, b2 [33] broadcast over rows.
 */
function mlp(seed: number): { params: Tensor[]; forward: (x: Tensor) => Tensor } {
  const params = [0, 1, 2, 3].map((k) => {
    const t = Tensor.from(rt(), randArray(IN, seed * 10 + k, -0.8, 0.8), [IN]);
    t.requiresGrad = true;
    return t;
  });
  const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
  const forward = (x: Tensor): Tensor => F.add(F.mul(F.tanh(F.add(F.mul(x, w1), b1)), w2), b2);
  return { params, forward };
}

/** mean-squared-error loss of one batch, back-propagated into the params' grads. */
function lossBackward(model: ReturnType<typeof mlp>, x: Tensor, y: Tensor): void {
  scope(rt(), () => backward(F.mseLoss(model.forward(x), y)));
}

describe('training with the autograd engine', () => {
  for (const clip of [null, 0.05]) {
    for (const kind of ['adamw', 'sgd'] as const) {
      it(`${kind}${clip ? `, clipped at ${clip}` : ''}: 4 micro-batches of 5 with gradScale 1/4 == one batch of 20, over 3 steps`, async () => {
        const k = 4;
        const b = 5;
        const a = mlp(7);
        const m = mlp(7);
        const mk = (ps: Tensor[]) =>
          kind === 'adamw'
            ? new AdamW([{ params: ps.slice(0, 2), lr: 1e-2 }, { params: ps.slice(2), lr: 3e-3, weightDecay: 0 }], { maxChunkBytes: 512 })
            : new SGD([{ params: ps.slice(0, 2), lr: 0.2, momentum: 0.9 }, { params: ps.slice(2), lr: 0.1 }], { lr: 0.1, maxChunkBytes: 512 });
        const optA = mk(a.params);
        const optM = mk(m.params);
        expect(optM.chunkCount).toBe(2);
        for (let s = 0; s < 3; s++) {
          const xs = randArray(k * b * IN, 100 + s);
          const ys = randArray(k * b * OUT, 200 + s);
          optA.zeroGrad();
          const x = Tensor.from(rt(), xs, [k * b, IN]);
          const y = Tensor.from(rt(), ys, [k * b, OUT]);
          lossBackward(a, x, y);
          const normA = clip ? clipGradNorm(optA, clip) : null;
          optA.step();

          optM.zeroGrad();
          for (let i = 0; i < k; i++) {
            const xi = Tensor.from(rt(), xs.subarray(i * b * IN, (i + 1) * b * IN), [b, IN]);
            const yi = Tensor.from(rt(), ys.subarray(i * b * OUT, (i + 1) * b * OUT), [b, OUT]);
            lossBackward(m, xi, yi); // accumulates into the grad arena
            xi.dispose();
            yi.dispose();
          }
          const s0 = rt().stats.submits;
          const normM = clip ? clipGradNorm(optM, clip, { gradScale: 1 / k }) : null;
          optM.step({ gradScale: 1 / k });
          expect(rt().stats.submits - s0).toBe(0);
          if (normA && normM) {
            const [na] = await normA.read();
            expect(na!).toBeGreaterThan(clip!); // the clip bites
            expectClose(await normM.read(), [na!], { atol: 0, rtol: 1e-5 }, `norm at step ${s}`);
          }
          x.dispose();
          y.dispose();
        }
        for (let i = 0; i < a.params.length; i++) {
          expectClose(await m.params[i]!.read(), await a.params[i]!.read(), { atol: 2e-6, rtol: 1e-5 }, `param ${i}`);
        }
        optA.dispose();
        optM.dispose();
      });
    }
  }
});
