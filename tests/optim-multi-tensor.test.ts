// Fusion switch 'adamw-multi-tensor': per-parameter dispatches (switch off) give the same parameters and state as one dispatch per arena chunk, for AdamW (amsgrad, weight decay, clipping, groups) and SGD.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { SGD, AdamW, clipGradNorm, type Optimizer, type BaseHyper } from '../src/optim/index.js';
import { withFusion } from '../src/runtime/fusion.js';
import { useRuntime } from './helpers/gpu.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

const SIZES = [1, 3, 17, 255, 1000, 4099, 33, 64];
const STEPS = 4;

function makeParams(seed: number): Tensor[] {
  return SIZES.map((n, i) => {
    const t = Tensor.from(rt(), randArray(n, seed + i), [n]);
    t.requiresGrad = true;
    return t;
  });
}

/**
 * Run STEPS steps with fresh random grads (clipping on the odd steps) with the switch on or off;
 * returns the parameters and every state tensor, and the dispatches of the last step's update.
 */
async function run<H extends BaseHyper>(multi: boolean, make: (ts: Tensor[]) => Optimizer<H>): Promise<{ values: Map<string, Float32Array>; dispatches: number; chunks: number }> {
  const r = rt();
  const ts = makeParams(7);
  const opt = make(ts);
  let dispatches = 0;
  for (let s = 0; s < STEPS; s++) {
    opt.zeroGrad();
    ts.forEach((t, i) => t.grad!.write(randArray(t.size, 1000 * s + i, -2, 2)));
    if (s % 2) clipGradNorm(opt, 3.0).dispose();
    const d0 = r.stats.dispatches;
    withFusion({ 'adamw-multi-tensor': multi }, () => opt.step());
    dispatches = r.stats.dispatches - d0;
  }
  const values = new Map<string, Float32Array>();
  for (let i = 0; i < ts.length; i++) values.set(`param ${i}`, await ts[i]!.read());
  const sd = opt.stateDict();
  for (const [k, t] of Object.entries(sd.state)) {
    values.set(k, await t.read());
    t.dispose();
  }
  const chunks = opt.chunkCount;
  opt.dispose();
  for (const t of ts) t.dispose();
  return { values, dispatches, chunks };
}

async function expectSame<H extends BaseHyper>(make: (ts: Tensor[]) => Optimizer<H>): Promise<void> {
  const fused = await run(true, make);
  const perTensor = await run(false, make);
  expect(fused.chunks).toBeGreaterThanOrEqual(2);
  expect(fused.dispatches, 'switch on: one dispatch per arena chunk').toBe(fused.chunks);
  expect(perTensor.dispatches, 'switch off: one dispatch per parameter').toBe(SIZES.length);
  expect([...perTensor.values.keys()]).toEqual([...fused.values.keys()]);
  let moved = 0;
  for (const [k, a] of fused.values) {
    const b = perTensor.values.get(k)!;
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) expect.fail(`${k}[${i}]: fused ${a[i]} vs per-tensor ${b[i]}`);
    }
    if (k.endsWith('exp_avg') || k.endsWith('momentum_buffer')) moved += a.some((v) => v !== 0) ? 1 : 0;
  }
  expect(moved, 'state was written for every parameter').toBe(SIZES.length);
}

describe("fusion switch 'adamw-multi-tensor'", () => {
  it('AdamW: per-parameter dispatches give bit-identical params, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad, weight decay, two groups, clipping, 3+ chunks)', async () => {
    await expectSame((ts) =>
      new AdamW(
        [
          { params: ts.filter((_, i) => i % 2 === 0), lr: 1e-2, weightDecay: 0.1 },
          { params: ts.filter((_, i) => i % 2 === 1), lr: 3e-3, weightDecay: 0, betas: [0.8, 0.99] },
        ],
        { amsgrad: true, maxChunkBytes: 20 * 1024 },
      ),
    );
  });

  it('SGD: per-parameter dispatches give bit-identical params and momentum buffers (momentum, nesterov, weight decay, clipping)', async () => {
    await expectSame((ts) =>
      new SGD(
        [
          { params: ts.filter((_, i) => i % 2 === 0), lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true },
          { params: ts.filter((_, i) => i % 2 === 1), lr: 0.05, momentum: 0.5, dampening: 0.1 },
        ],
        { lr: 0.1, maxChunkBytes: 20 * 1024 },
      ),
    );
  });
});
