// Fused optimizers vs float64 CPU references: SGD (all options) and AdamW (PyTorch 1.13) over awkward multi-group, multi-chunk parameter sets; dispatch/submit counts.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import { SGD, AdamW, type SGDHyper, type AdamWHyper, type ParamGroup, type Optimizer, type OptimizerStateDict, type BaseHyper } from '../src/optim/index.js';
import { GraftError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { adamwStateRef, adamwStepRef, sgdStepRef, type AdamWRefState, type SgdRefHyper } from './ref/optim.js';

const rt = useRuntime();

/** Parameters of awkward sizes; `frozen` lists indices created with requiresGrad false. */
function makeParams(sizes: readonly number[], seed: number, frozen: readonly number[] = []): { ts: Tensor[]; host: Float64Array[] } {
  const host = sizes.map((n, i) => Float64Array.from(randArray(n, seed + i)));
  const ts = host.map((h, i) => {
    const t = Tensor.from(rt(), h, [h.length]);
    t.requiresGrad = !frozen.includes(i);
    return t;
  });
  return { ts, host };
}

/** Write fresh random grads into every trainable param's .grad; returns them by param index. */
function writeGrads(ts: readonly Tensor[], seed: number, scale = 1): Map<number, Float32Array> {
  const out = new Map<number, Float32Array>();
  ts.forEach((t, i) => {
    if (!t.grad) return;
    const g = randArray(t.size, seed * 101 + i, -scale, scale);
    t.grad.write(g);
    out.set(i, g);
  });
  return out;
}

/** step() must record exactly one dispatch per arena chunk and submit nothing. */
function stepCounted(opt: SGD | AdamW, gradScale?: number): void {
  const d0 = rt().stats.dispatches;
  const s0 = rt().stats.submits;
  opt.step(gradScale === undefined ? {} : { gradScale });
  expect(rt().stats.dispatches - d0).toBe(opt.chunkCount);
  expect(rt().stats.submits - s0).toBe(0);
}

const SIZES = [1, 3, 17, 255, 1000, 4099, 33];

function sgdGroups(ts: Tensor[]): ParamGroup<SGDHyper>[] {
  return [
    { params: [ts[0]!, ts[1]!, ts[4]!], lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, name: 'a' },
    { params: [ts[2]!, ts[5]!], lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.02 },
    { params: [ts[3]!, ts[6]!], lr: 0.2, weightDecay: 0.001, maximize: true },
  ];
}

function refHyper<H extends object>(groups: ParamGroup<SGDHyper>[] | ParamGroup<AdamWHyper>[], defaults: H, ts: Tensor[]): Map<number, H> {
  const out = new Map<number, H>();
  for (const g of groups) {
    const h = { ...defaults };
    for (const k of Object.keys(defaults) as (keyof H)[]) {
      const v = (g as Record<string, unknown>)[k as string];
      if (v !== undefined) h[k] = v as H[keyof H];
    }
    for (const p of g.params) out.set(ts.indexOf(p), h);
  }
  return out;
}

const SGD_DEFAULTS: SgdRefHyper = { lr: 0, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false };
const ADAMW_DEFAULTS: AdamWHyper = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, maximize: false };

describe('SGD', () => {
  it('matches the float64 reference over 5 steps: groups (momentum/dampening/nesterov/maximize/wd), several chunks, a frozen param', async () => {
    const { ts, host } = makeParams(SIZES, 10, [6]);
    const frozenData = Float32Array.from(host[6]!);
    const groups = sgdGroups(ts);
    const opt = new SGD(groups, { lr: 0.1, maxChunkBytes: 20 * 1024 });
    expect(opt.chunkCount).toBeGreaterThanOrEqual(2);
    expect(opt.params.length).toBe(6);
    expect(ts[6]!.grad).toBeNull();
    const hyper = refHyper(groups, SGD_DEFAULTS, ts);
    const bufs = new Map<number, Float64Array | null>();
    for (let s = 0; s < 5; s++) {
      opt.zeroGrad();
      const grads = writeGrads(ts, s + 1);
      expect(grads.has(6)).toBe(false);
      stepCounted(opt);
      for (const [i, g] of grads) bufs.set(i, sgdStepRef(host[i]!, g, bufs.get(i) ?? null, hyper.get(i)!));
    }
    for (let i = 0; i < 6; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i} (${SIZES[i]})`);
    expectClose(await ts[6]!.read(), frozenData, { atol: 0, rtol: 0 }, 'frozen param');
    const sd = opt.stateDict();
    expect(Object.keys(sd.state).sort()).toEqual(['0.momentum_buffer', '1.momentum_buffer', '2.momentum_buffer', '3.momentum_buffer', '4.momentum_buffer']);
    // flat order is group order: [0, 1, 4] [2, 5] [3]
    const flatToParam = [0, 1, 4, 2, 5, 3];
    for (const [k, t] of Object.entries(sd.state)) {
      const i = flatToParam[Number(k.split('.')[0])]!;
      expectClose(await t.read(), bufs.get(i)!, { atol: 1e-6, rtol: 1e-5 }, `momentum ${k}`);
      t.dispose();
    }
    opt.dispose();
  });

  it('plain SGD (no momentum state), and momentum switched on later starts its buffer with the first-step rule', async () => {
    const { ts, host } = makeParams([1000, 17], 20);
    const opt = new SGD(ts, { lr: 0.05, dampening: 0.3, maxChunkBytes: 4096 });
    expect(opt.chunkCount).toBe(2);
    const h: SgdRefHyper = { ...SGD_DEFAULTS, lr: 0.05, dampening: 0.3 };
    const bufs: (Float64Array | null)[] = [null, null];
    for (let s = 0; s < 4; s++) {
      if (s === 2) opt.paramGroups[0]!.momentum = h.momentum = 0.7;
      opt.zeroGrad();
      const grads = writeGrads(ts, 30 + s);
      stepCounted(opt);
      for (const [i, g] of grads) bufs[i] = sgdStepRef(host[i]!, g, bufs[i]!, h);
    }
    for (let i = 0; i < 2; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });

  it('gradScale scales the gradients inside the kernel', async () => {
    const { ts, host } = makeParams([255, 3], 40);
    const opt = new SGD(ts, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const h: SgdRefHyper = { ...SGD_DEFAULTS, lr: 0.1, momentum: 0.9, weightDecay: 0.01 };
    const bufs: (Float64Array | null)[] = [null, null];
    for (let s = 0; s < 3; s++) {
      opt.zeroGrad();
      const grads = writeGrads(ts, 50 + s, 4);
      stepCounted(opt, 0.25);
      for (const [i, g] of grads) bufs[i] = sgdStepRef(host[i]!, g.map((v) => v * 0.25), bufs[i]!, h);
    }
    for (let i = 0; i < 2; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });

  it('rejects bad configurations', () => {
    const { ts } = makeParams([3, 5], 60);
    expect(() => new SGD([], { lr: 0.1 })).toThrow(GraftError);
    expect(() => new SGD([ts[0]!, ts[0]!], { lr: 0.1 })).toThrow(/more than once/);
    expect(() => new SGD(ts, { lr: -1 })).toThrow(/lr/);
    expect(() => new SGD(ts, { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new SGD([{ params: ts, lr: 0.1, betas: [0.9, 0.9] } as ParamGroup<SGDHyper>], { lr: 0.1 })).toThrow(/unknown option 'betas'/);
    ts[1]!.requiresGrad = false;
    ts[0]!.requiresGrad = false;
    expect(() => new SGD(ts, { lr: 0.1 })).toThrow(/empty/);
    for (const t of ts) t.dispose();
  });
});

describe('AdamW', () => {
  const adamGroups = (ts: Tensor[]): ParamGroup<AdamWHyper>[] => [
    { params: [ts[5]!, ts[0]!], lr: 1e-2, weightDecay: 1e-2 },
    { params: [ts[1]!, ts[2]!, ts[3]!], lr: 3e-3, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 },
    { params: [ts[4]!, ts[6]!], lr: 5e-3, weightDecay: 0, maximize: true },
  ];

  for (const amsgrad of [false, true]) {
    it(`matches the float64 reference over 6 steps${amsgrad ? ' with amsgrad' : ''}: groups (betas/eps/wd/maximize), several chunks, a frozen param`, async () => {
      const { ts, host } = makeParams(SIZES, 70, [6]);
      const groups = adamGroups(ts);
      const opt = new AdamW(groups, { amsgrad, maxChunkBytes: 17 * 1024 });
      expect(opt.chunkCount).toBeGreaterThanOrEqual(2);
      const hyper = refHyper(groups, ADAMW_DEFAULTS, ts);
      const states = new Map<number, AdamWRefState>();
      for (let s = 0; s < 6; s++) {
        opt.zeroGrad();
        const grads = writeGrads(ts, 80 + s);
        stepCounted(opt);
        for (const [i, g] of grads) {
          if (!states.has(i)) states.set(i, adamwStateRef(g.length));
          adamwStepRef(host[i]!, g, states.get(i)!, hyper.get(i)!, amsgrad);
        }
      }
      for (let i = 0; i < 6; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i} (${SIZES[i]})`);
      const sd = opt.stateDict();
      expect(sd.paramSteps).toEqual([6, 6, 6, 6, 6, 6]);
      const flatToParam = [5, 0, 1, 2, 3, 4];
      const names = amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
      expect(Object.keys(sd.state).length).toBe(6 * names.length);
      for (const [k, t] of Object.entries(sd.state)) {
        const [fi, name] = k.split('.') as [string, string];
        const st = states.get(flatToParam[Number(fi)]!)!;
        const ref = name === 'exp_avg' ? st.m : name === 'exp_avg_sq' ? st.v : st.vmax;
        expectClose(await t.read(), ref, { atol: 1e-7, rtol: 1e-5 }, k);
        t.dispose();
      }
      opt.dispose();
    });
  }

  it('two steps recorded in one batch (no submit between) each see their own lr and step', async () => {
    const { ts, host } = makeParams([17, 1000], 90);
    const opt = new AdamW(ts, { lr: 1e-2, weightDecay: 0.05 });
    opt.zeroGrad();
    const grads = writeGrads(ts, 91);
    const states = [adamwStateRef(17), adamwStateRef(1000)];
    const s0 = rt().stats.submits;
    opt.step();
    opt.paramGroups[0]!.lr = 2e-3;
    opt.step();
    expect(rt().stats.submits - s0).toBe(0);
    for (const lr of [1e-2, 2e-3]) {
      for (const [i, g] of grads) adamwStepRef(host[i]!, g, states[i]!, { ...ADAMW_DEFAULTS, lr, weightDecay: 0.05 }, false);
    }
    for (let i = 0; i < 2; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });

  it('skips params whose grad was removed (per-param step counts, like PyTorch) and re-adopts replaced grads', async () => {
    const { ts, host } = makeParams([3, 255, 17], 100);
    const opt = new AdamW(ts, { lr: 1e-2 });
    const states = [adamwStateRef(3), adamwStateRef(255), adamwStateRef(17)];
    const h = { ...ADAMW_DEFAULTS, lr: 1e-2 };
    for (let s = 0; s < 4; s++) {
      opt.zeroGrad();
      const grads = writeGrads(ts, 110 + s);
      if (s === 1) {
        ts[1]!.grad!.dispose(); // e.g. Module.zeroGrad() with setToNone
        ts[1]!.grad = null;
        grads.delete(1);
      }
      if (s === 2) {
        const g = randArray(17, 999);
        ts[2]!.grad = Tensor.from(rt(), g, [17]); // e.g. the engine adopted a fresh tensor
        grads.set(2, g);
      }
      opt.step();
      for (const [i, g] of grads) adamwStepRef(host[i]!, g, states[i]!, h, false);
    }
    expect(opt.stateDict().paramSteps).toEqual([4, 3, 4]);
    expect(ts[1]!.grad).not.toBeNull();
    for (let i = 0; i < 3; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });

  it('includeFrozen keeps a frozen param, skips it while frozen and trains it once unfrozen', async () => {
    const { ts, host } = makeParams([33, 17], 120, [1]);
    const opt = new AdamW(ts, { lr: 1e-2, includeFrozen: true });
    expect(opt.params.length).toBe(2);
    const states = [adamwStateRef(33), adamwStateRef(17)];
    const h = { ...ADAMW_DEFAULTS, lr: 1e-2 };
    for (let s = 0; s < 3; s++) {
      if (s === 1) ts[1]!.requiresGrad = true;
      opt.zeroGrad();
      const grads = writeGrads(ts, 130 + s);
      opt.step();
      for (const [i, g] of grads) if (ts[i]!.requiresGrad) adamwStepRef(host[i]!, g, states[i]!, h, false);
    }
    expect(opt.stateDict().paramSteps).toEqual([3, 2]);
    for (let i = 0; i < 2; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    opt.dispose();
  });
});

describe('optimizer housekeeping', () => {
  it('zeroGrad clears every grad chunk with no dispatch; grads are arena views that accumulate', async () => {
    const { ts } = makeParams([1, 3, 17, 255, 1000], 140);
    const opt = new SGD(ts, { lr: 0.1, maxChunkBytes: 4096 });
    expect(opt.chunkCount).toBeGreaterThanOrEqual(2);
    writeGrads(ts, 141);
    const d0 = rt().stats.dispatches;
    opt.zeroGrad();
    expect(rt().stats.dispatches).toBe(d0);
    for (const t of ts) expect(Math.max(...(await t.grad!.read()).map(Math.abs))).toBe(0);
    // views share the arena buffers: the grads of params in one chunk share a GPUBuffer
    expect(ts[0]!.grad!.buffer).toBe(ts[1]!.grad!.buffer);
    opt.dispose();
  });

  it('adopts an existing grad at construction; dispose moves params out (usable) and drops grads', async () => {
    const { ts, host } = makeParams([17, 3], 150);
    const g = randArray(17, 151);
    ts[0]!.grad = Tensor.from(rt(), g, [17]);
    const opt = new SGD(ts, { lr: 0.5 });
    expectClose(await ts[0]!.grad!.read(), g, { atol: 0, rtol: 0 });
    opt.step();
    opt.dispose();
    expect(ts[0]!.grad).toBeNull();
    sgdStepRef(host[0]!, g, null, { ...SGD_DEFAULTS, lr: 0.5 });
    expectClose(await ts[0]!.read(), host[0]!, { atol: 1e-6, rtol: 1e-6 });
    expectClose(await ts[1]!.read(), host[1]!, { atol: 0, rtol: 0 });
    expect(() => opt.step()).toThrow(/disposed/);
  });

  it('survives construction inside a scope; zero-size params are harmless', async () => {
    const { ts, host } = makeParams([0, 5, 64], 190);
    const opt = scope(rt(), () => new AdamW(ts, { lr: 0.1, maxChunkBytes: 256 }));
    expect(opt.chunkCount).toBe(3);
    const grads = writeGrads(ts, 191);
    const norm = opt.clipGradNorm(1e9);
    opt.step();
    const states = ts.map((t) => adamwStateRef(t.size));
    for (const [i, g] of grads) adamwStepRef(host[i]!, g, states[i]!, { ...ADAMW_DEFAULTS, lr: 0.1 }, false);
    for (let i = 1; i < 3; i++) expectClose(await ts[i]!.read(), host[i]!, { atol: 1e-6, rtol: 1e-5 }, `param ${i}`);
    const ref = Math.hypot(...grads.get(1)!, ...grads.get(2)!);
    expectClose(await norm.read(), [ref], { atol: 0, rtol: 2e-6 });
    opt.dispose();
  });

  /** Run 3 steps, checkpoint through host memory + JSON, resume in a fresh optimizer, compare 2 more steps bit for bit. */
  async function resumeCheck<H extends BaseHyper>(mk: (ts: Tensor[]) => Optimizer<H>): Promise<void> {
    const sizes = [255, 17, 1000];
    const a = makeParams(sizes, 160);
    const b = makeParams(sizes, 160);
    const optA = mk(a.ts);
    for (let s = 0; s < 3; s++) {
      optA.zeroGrad();
      writeGrads(a.ts, 170 + s);
      optA.step();
    }
    optA.paramGroups[1]!.lr = 7e-3;
    const sd = optA.stateDict();
    const saved: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(sd.state)) {
      saved[k] = Tensor.from(rt(), await t.read(), t.shape);
      t.dispose();
    }
    const json = JSON.parse(JSON.stringify({ ...sd, state: {} })) as OptimizerStateDict<H>;
    for (let i = 0; i < sizes.length; i++) b.ts[i]!.write(await a.ts[i]!.read());
    const optB = mk(b.ts);
    optB.loadStateDict({ ...json, state: saved });
    expect(optB.stepCount).toBe(3);
    expect(optB.paramGroups[1]!.lr).toBe(7e-3);
    for (const [o, ts] of [[optA, a.ts], [optB, b.ts]] as const) {
      for (let s = 0; s < 2; s++) {
        o.zeroGrad();
        writeGrads(ts, 180 + s);
        o.step();
      }
    }
    for (let i = 0; i < sizes.length; i++) expectClose(await b.ts[i]!.read(), await a.ts[i]!.read(), { atol: 0, rtol: 0 }, `param ${i}`);
    const again = optB.stateDict();
    for (const t of Object.values(again.state)) t.dispose();
    expect(() => optB.loadStateDict({ ...again, kind: 'other' })).toThrow(/other/);
    const first = saved[Object.keys(saved)[0]!]!;
    expect(() => optB.loadStateDict({ ...again, state: { ...saved, '9.exp_avg': first } })).toThrow(/unexpected/);
    optA.dispose();
    optB.dispose();
    for (const t of Object.values(saved)) t.dispose();
  }

  it('sgd: stateDict/loadStateDict resumes exactly (bit-identical to an uninterrupted run)', async () => {
    await resumeCheck((ts) => new SGD([{ params: [ts[0]!, ts[1]!], momentum: 0.9 }, { params: [ts[2]!], lr: 0.01 }], { lr: 0.1, maxChunkBytes: 4096 }));
  });

  it('adamw (amsgrad): stateDict/loadStateDict resumes exactly (bit-identical to an uninterrupted run)', async () => {
    await resumeCheck((ts) => new AdamW([{ params: [ts[0]!, ts[1]!], lr: 3e-3 }, { params: [ts[2]!], lr: 1e-2 }], { amsgrad: true, maxChunkBytes: 4096 }));
  });
});
