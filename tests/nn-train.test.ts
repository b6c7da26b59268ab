// Training through autograd + nn + the fused optimizer: loss falls, grads stay the optimizer's arena views, steady state allocates nothing.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import * as F from '../src/autograd/functional.js';
import { backward } from '../src/autograd/engine.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Rng, Sequential, AdaptiveAvgPool2d, Dropout } from '../src/nn/index.js';
import { AdamW } from '../src/optim/index.js';
import { useRuntime } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';

const rt = useRuntime();

describe('training loop: autograd + nn + AdamW', () => {
  it('a small CNN learns a synthetic 3-class problem; no buffers are created after warm-up', async () => {
    const r = rt();
    const R = new Rng(1);
    const model = new Sequential(
      new Conv2d(r, 1, 8, 3, { padding: 1, rng: R }),
      new BatchNorm2d(r, 8),
      new ReLU(),
      new Conv2d(r, 8, 8, 3, { stride: 2, padding: 1, rng: R }),
      new ReLU(),
      new AdaptiveAvgPool2d(1),
      new Flatten(),
      new Dropout(0.1, { rng: R }),
      new Linear(r, 8, 3, { rng: R }),
    );
    // Class c: a bright bar in row band c of an 8x8 image, plus noise.
    const B = 24;
    const u = rng(5);
    const xs = new Float32Array(B * 64);
    const ys: number[] = [];
    for (let b = 0; b < B; b++) {
      const c = b % 3;
      ys.push(c);
      for (let i = 0; i < 64; i++) xs[b * 64 + i] = 0.3 * (u() - 0.5) + (Math.floor(Math.floor(i / 8) / 3) === c ? 1 : 0);
    }
    const x = Tensor.from(r, xs, [B, 1, 8, 8]);
    const t = Tensor.from(r, ys, [B], 'i32');
    const opt = new AdamW(model.parameters(), { lr: 0.02, weightDecay: 0 });
    const grads0 = model.parameters().map((p) => p.grad);
    const losses: number[] = [];
    let created = 0;
    let live = 0;
    for (let step = 0; step < 40; step++) {
      opt.zeroGrad();
      const loss = scope(r, () => F.crossEntropy(model.forward(x), t));
      backward(loss);
      opt.step();
      losses.push((await loss.read())[0]!);
      loss.dispose();
      if (step === 4) {
        created = r.pool.stats.created;
        live = r.pool.stats.live;
      }
    }
    expect(r.pool.stats.created, 'buffers created after warm-up').toBe(created);
    expect(r.pool.stats.live, 'live buffers after warm-up').toBe(live);
    expect(model.parameters().map((p) => p.grad), 'grads are still the arena views').toEqual(grads0);
    expect(losses[losses.length - 1]!).toBeLessThan(0.5 * losses[0]!);
    // Eval mode: accuracy on the training set.
    model.eval();
    const logits = noGrad(() => scope(r, () => model.forward(x)));
    const lv = await logits.read();
    let correct = 0;
    for (let b = 0; b < B; b++) {
      const row = Array.from(lv.slice(b * 3, b * 3 + 3));
      if (row.indexOf(Math.max(...row)) === ys[b]) correct++;
    }
    expect(correct).toBeGreaterThanOrEqual(B - 2);
    logits.dispose();
    opt.dispose();
    model.dispose();
    x.dispose();
    t.dispose();
  });
});
