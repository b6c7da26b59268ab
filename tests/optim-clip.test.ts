// Gradient clipping by global norm on the GPU: norm vs float64, clip factor applied inside the next step, loose-tensor path, grad scaling, determinism, dispatch/submit counts.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { AdamW, SGD, clipGradNorm } from '../src/optim/index.js';
import { GraftError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { adamwStateRef, adamwStepRef, clipCoefRef, gradNormRef, sgdStepRef, type SgdRefHyper } from './ref/optim.js';

const rt = useRuntime();
const SIZES = [1, 3, 17, 255, 1000, 70_001];

function setup(seed: number): { ts: Tensor[]; host: Float64Array[] } {
  const host = SIZES.map((n, i) => Float64Array.from(randArray(n, seed + i)));
  const ts = host.map((h) => {
    const t = Tensor.from(rt(), h, [h.length]);
    t.requiresGrad = true;
    return t;
  });
  return { ts, host };
}

function writeGrads(ts: readonly Tensor[], seed: number): Float32Array[] {
  return ts.map((t, i) => {
    const g = randArray(t.size, seed * 31 + i);
    t.grad!.write(g);
    return g;
  });
}

const H: SgdRefHyper = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: false, maximize: false };

describe('clipGradNorm(optimizer)', () => {
  for (const normType of [2, Infinity]) {
    it(`norm ${normType}: matches float64, records chunks + 1 dispatches and no submit, factor applied in the next step`, async () => {
      const { ts, host } = setup(1);
      const opt = new SGD(ts, { lr: H.lr, momentum: H.momentum, weightDecay: H.weightDecay, maxChunkBytes: 282_000 });
      expect(opt.chunkCount).toBeGreaterThanOrEqual(2);
      const bufs: (Float64Array | null)[] = ts.map(() => null);
      const norms: Tensor[] = [];
      const refNorms: number[] = [];
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        const grads = writeGrads(ts, 10 + s);
        const ref = gradNormRef(grads, normType);
        // step 0: clip bites; step 1: maxNorm above the norm (coefficient 1); step 2: clip bites again
        const maxNorm = s === 1 ? ref * 2 : ref * 0.3;
        const d0 = rt().stats.dispatches;
        const s0 = rt().stats.submits;
        norms.push(opt.clipGradNorm(maxNorm, { normType }));
        opt.step();
        expect(rt().stats.submits - s0).toBe(0);
        expect(rt().stats.dispatches - d0).toBe(2 * opt.chunkCount + 1);
        refNorms.push(ref);
        const coef = clipCoefRef(ref, maxNorm);
        if (s === 1) expect(coef).toBe(1);
        grads.forEach((g, i) => (bufs[i] = sgdStepRef(host[i]!, g.map((v) => v * coef), bufs[i]!, H)));
      }
      for (let i = 0; i < ts.length; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 2e-6, rtol: 1e-5 }, `param ${i} (${SIZES[i]})`);
      for (let s = 0; s < 3; s++) expectClose(await norms[s]!.read(), [refNorms[s]!], { atol: 0, rtol: 2e-6 }, `norm at step ${s}`);
      opt.dispose();
    });
  }

  it('the reduction is deterministic (bit-identical norms) and the grads themselves are left untouched', async () => {
    const { ts } = setup(2);
    const opt = new AdamW(ts, { maxChunkBytes: 282_000 });
    const grads = writeGrads(ts, 20);
    const a = await opt.clipGradNorm(0.1).read();
    const b = await opt.clipGradNorm(0.1).read();
    expect(Array.from(b)).toEqual(Array.from(a));
    for (let i = 0; i < ts.length; i++) expectClose(await ts[i]!.grad!.read(), grads[i]!, { atol: 0, rtol: 0 });
    opt.dispose();
  });

  it('gradScale: the norm is that of the scaled grads and the step uses the same scale', async () => {
    const { ts, host } = setup(3);
    const opt = new AdamW(ts, { lr: 1e-2 });
    const states = ts.map((t) => adamwStateRef(t.size));
    const grads = writeGrads(ts, 30);
    const scaled = grads.map((g) => g.map((v) => v / 3));
    const ref = gradNormRef(scaled);
    const norm = opt.clipGradNorm(ref / 2, { gradScale: 1 / 3 });
    expect(() => opt.step({ gradScale: 0.5 })).toThrow(GraftError);
    opt.step();
    const coef = clipCoefRef(ref, ref / 2);
    scaled.forEach((g, i) => adamwStepRef(host[i]!, g.map((v) => v * coef), states[i]!, { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, maximize: false }, false));
    expectClose(await norm.read(), [ref], { atol: 0, rtol: 2e-6 });
    for (let i = 0; i < ts.length; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });

  it('zeroGrad cancels a pending clip', async () => {
    const { ts, host } = setup(4);
    const opt = new SGD(ts, { lr: 0.1 });
    writeGrads(ts, 40);
    opt.clipGradNorm(1e-3);
    opt.zeroGrad();
    const grads = writeGrads(ts, 41);
    opt.step();
    grads.forEach((g, i) => sgdStepRef(host[i]!, g, null, { ...H, momentum: 0, weightDecay: 0 }));
    for (let i = 0; i < ts.length; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });

  it('rejects bad arguments', () => {
    const { ts } = setup(5);
    const opt = new SGD(ts, { lr: 0.1 });
    expect(() => opt.clipGradNorm(1, { normType: 1 })).toThrow(/normType/);
    expect(() => opt.clipGradNorm(-1)).toThrow(/maxNorm/);
    expect(() => opt.clipGradNorm(1, { gradScale: 0 })).toThrow(/gradScale/);
    opt.dispose();
    for (const t of ts) t.dispose();
  });
});

describe('clipGradNorm(params)', () => {
  for (const normType of [2, Infinity]) {
    it(`norm ${normType}: loose grads are scaled in place; params without a grad are ignored`, async () => {
      const sizes = [1, 17, 1000, 70_001, 3];
      const ts = sizes.map((n, i) => Tensor.from(rt(), randArray(n, 50 + i), [n]));
      const grads = sizes.map((n, i) => randArray(n, 60 + i, -2, 2));
      ts.forEach((t, i) => {
        if (i !== 4) t.grad = Tensor.from(rt(), grads[i]!, [sizes[i]!]);
      });
      const ref = gradNormRef(grads.slice(0, 4), normType);
      const s0 = rt().stats.submits;
      const norm = clipGradNorm(ts, ref / 4, { normType });
      expect(rt().stats.submits - s0).toBe(0);
      expectClose(await norm.read(), [ref], { atol: 0, rtol: 2e-6 });
      const coef = clipCoefRef(ref, ref / 4);
      for (let i = 0; i < 4; i++) expectClose(await ts[i]!.grad!.read(), grads[i]!.map((v) => v * coef), { atol: 1e-7, rtol: 1e-6 }, `grad ${i}`);
      expect(ts[4]!.grad).toBeNull();
      const none = clipGradNorm([ts[4]!], 1);
      expect(Array.from(await none.read())).toEqual([0]);
      for (const t of ts) {
        t.grad?.dispose();
        t.dispose();
      }
    });
  }
});
