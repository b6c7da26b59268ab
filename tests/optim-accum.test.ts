// Gradient accumulation: grads summed in the arena over k micro-batches + step({ gradScale: 1/k }) (and clipping with the same scale) equal one batch of k·b; float64 per-batch gradients of a linear least-squares model.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { binary } from '../src/kernels/elementwise.js';
import { AdamW, SGD, clipGradNorm } from '../src/optim/index.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();
const IN = 33;
const OUT = 17;

/**
 * Gradients of loss = mean over rows and outputs of (x·Wᵀ + b − y)² for one batch, float64.
 * x [B, IN], y [B, OUT], w [OUT, IN], b [OUT] → [dW, db].
 */
function lsqGrads(x: Float32Array, y: Float32Array, w: Float32Array, b: Float32Array): [Float32Array, Float32Array] {
  const B = x.length / IN;
  const dw = new Float64Array(OUT * IN);
  const db = new Float64Array(OUT);
  const c = 2 / (B * OUT);
  for (let r = 0; r < B; r++) {
    for (let o = 0; o < OUT; o++) {
      let pred = b[o]!;
      for (let i = 0; i < IN; i++) pred += x[r * IN + i]! * w[o * IN + i]!;
      const e = c * (pred - y[r * OUT + o]!);
      db[o] = db[o]! + e;
      for (let i = 0; i < IN; i++) dw[o * IN + i] = dw[o * IN + i]! + e * x[r * IN + i]!;
    }
  }
  return [Float32Array.from(dw), Float32Array.from(db)];
}

/** What backward does for a leaf whose grad exists: grad += g in place (here: a GPU add, copied back into the arena view). */
function accumulate(p: Tensor, g: Float32Array): void {
  const gt = Tensor.from(rt(), g, p.shape);
  const sum = binary(p.grad!, gt, 'add');
  rt().commandEncoder().copyBufferToBuffer(sum.buffer, sum.byteOffset, p.grad!.buffer, p.grad!.byteOffset, p.grad!.byteLength);
  gt.dispose();
  sum.dispose();
}

function model(): Tensor[] {
  const w = Tensor.from(rt(), randArray(OUT * IN, 1, -0.3, 0.3), [OUT, IN]);
  const b = Tensor.from(rt(), randArray(OUT, 2, -0.3, 0.3), [OUT]);
  w.requiresGrad = b.requiresGrad = true;
  return [w, b];
}

describe('gradient accumulation', () => {
  for (const clip of [null, 0.05]) {
    for (const kind of ['adamw', 'sgd'] as const) {
      it(`${kind}${clip ? `, clipped at ${clip}` : ''}: 4 micro-batches of 5 with gradScale 1/4 == one batch of 20, over 3 steps`, async () => {
        const k = 4;
        const mb = 5;
        const full = model();
        const micro = model();
        const mk = (ps: Tensor[]) =>
          kind === 'adamw'
            ? new AdamW([{ params: [ps[0]!], lr: 1e-2 }, { params: [ps[1]!], lr: 3e-3, weightDecay: 0 }], { maxChunkBytes: 2304 })
            : new SGD([{ params: [ps[0]!], lr: 0.2, momentum: 0.9 }, { params: [ps[1]!], lr: 0.1 }], { lr: 0.1, maxChunkBytes: 2304 });
        const optF = mk(full);
        const optM = mk(micro);
        expect(optM.chunkCount).toBe(2);
        for (let s = 0; s < 3; s++) {
          const xs = randArray(k * mb * IN, 100 + s);
          const ys = randArray(k * mb * OUT, 200 + s);
          const [wF, bF] = [await full[0]!.read(), await full[1]!.read()];
          const [wM, bM] = [await micro[0]!.read(), await micro[1]!.read()];

          optF.zeroGrad();
          const [dw, db] = lsqGrads(xs, ys, wF, bF);
          full[0]!.grad!.write(dw);
          full[1]!.grad!.write(db);
          const normF = clip ? clipGradNorm(optF, clip) : null;
          optF.step();

          optM.zeroGrad();
          for (let i = 0; i < k; i++) {
            const [dwi, dbi] = lsqGrads(xs.subarray(i * mb * IN, (i + 1) * mb * IN), ys.subarray(i * mb * OUT, (i + 1) * mb * OUT), wM, bM);
            accumulate(micro[0]!, dwi);
            accumulate(micro[1]!, dbi);
          }
          const s0 = rt().stats.submits;
          const normM = clip ? clipGradNorm(optM, clip, { gradScale: 1 / k }) : null;
          optM.step({ gradScale: 1 / k });
          expect(rt().stats.submits - s0).toBe(0);
          if (normF && normM) {
            const [nf] = await normF.read();
            expect(nf!).toBeGreaterThan(clip!); // the clip bites
            expectClose(await normM.read(), [nf!], { atol: 0, rtol: 1e-5 }, `norm at step ${s}`);
          }
        }
        for (let i = 0; i < 2; i++) expectClose(await micro[i]!.read(), await full[i]!.read(), { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
        optF.dispose();
        optM.dispose();
      });
    }
  }
});
