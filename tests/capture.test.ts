// Whole-step capture: N replayed training steps equal N normal steps (losses, weights, BN running stats, lrs, AdamW step counts) for MLP, SmallCNN and TinyEncoder; recapture per shape; pinned buffers; clear errors.
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime/runtime.js';
import { GraftError, ShapeError } from '../src/runtime/errors.js';
import { captureStep } from '../src/runtime/capture.js';
import { Tensor, scope } from '../src/tensor.js';
import { backward, F } from '../src/autograd/index.js';
import type { Module } from '../src/nn/index.js';
import { AdamW, clipGradNorm, linearWarmupDecay, captureTrainingStep, type BatchInput } from '../src/optim/index.js';
import { MLP, SmallCNN, TinyEncoder } from '../src/models/small.js';
import { dropout } from '../src/kernels/dropout.js';
import { f32 } from '../src/runtime/params.js';
import dropoutSrc from '../shaders/dropout.wgsl';
import { useRuntime } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';

const rt = useRuntime();

/** A model under training: its forward on the batch inputs, and how to make a batch. */
interface Case {
  name: string;
  model: (r: Runtime) => Module;
  forward: (m: Module, inputs: readonly Tensor[]) => Tensor;
  batch: (seed: number, b: number) => BatchInput[];
  /** Batch size. */
  b: number;
}

function imgBatch(shape: number[], classes: number, seed: number): BatchInput[] {
  const u = rng(seed);
  const n = shape.reduce((a, c) => a * c, 1);
  return [
    { data: Float32Array.from({ length: n }, () => 2 * u() - 1), shape },
    { data: Int32Array.from({ length: shape[0]! }, () => Math.floor(u() * classes)), shape: [shape[0]!], dtype: 'i32' },
  ];
}

const CASES: Case[] = [
  {
    name: 'MLP 64→32→32→10',
    model: (r) => new MLP(r, [64, 32, 32, 10], { rng: 3 }),
    forward: (m, [x]) => (m as MLP).forward(x!),
    batch: (seed, b) => imgBatch([b, 64], 10, seed),
    b: 8,
  },
  {
    name: 'SmallCNN (BatchNorm running stats)',
    model: (r) => new SmallCNN(r, { rng: 4 }),
    forward: (m, [x]) => (m as SmallCNN).forward(x!),
    batch: (seed, b) => imgBatch([b, 3, 16, 16], 10, seed),
    b: 4,
  },
  {
    name: 'TinyEncoder (2 layers, attention)',
    model: (r) => new TinyEncoder(r, { rng: 5, vocab: 20, dModel: 16, heads: 2, dimFeedforward: 32, maxLen: 8 }),
    forward: (m, [ids]) => (m as TinyEncoder).forward(ids!),
    batch: (seed, b) => {
      const u = rng(seed);
      return [
        { data: Int32Array.from({ length: b * 8 }, () => Math.floor(u() * 20)), shape: [b, 8], dtype: 'i32' },
        { data: Int32Array.from({ length: b }, () => Math.floor(u() * 3)), shape: [b], dtype: 'i32' },
      ];
    },
    b: 4,
  },
];

/** Model + AdamW (weight decay) + warm-up/decay schedule + clip, and the step function over input tensors. */
function setup(r: Runtime, c: Case) {
  const model = c.model(r);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.05 });
  const sched = linearWarmupDecay(opt, 3, 12);
  const stepFn = (inputs: readonly Tensor[]): Tensor => {
    opt.zeroGrad();
    const l = F.crossEntropy(c.forward(model, inputs), inputs[inputs.length - 1]!);
    backward(l);
    clipGradNorm(opt, 0.5); // small: clipping is active in most steps
    opt.step();
    sched.step();
    return l;
  };
  return { model, opt, sched, stepFn };
}

async function stateOf(m: Module): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of m.stateDict()) out.set(k, await t.read());
  return out;
}

/** Train with batch sizes `sizes` (one step each) with or without capture; losses, final state, lrs, step counts. */
async function train(r: Runtime, c: Case, sizes: readonly number[], capture: boolean) {
  const s = setup(r, c);
  const runner = captureTrainingStep(r, s.stepFn, { capture });
  const losses: number[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const loss = runner.step(c.batch(100 + (i % 3), sizes[i]!));
    losses.push((await loss.read())[0]!);
    loss.dispose();
  }
  const state = await stateOf(s.model);
  const res = { losses, state, lr: s.opt.lrs[0]!, steps: s.opt.stepCount, sched: s.sched.lastStep, stats: { ...runner.stats }, pinned: r.pool.stats.pinned };
  runner.dispose();
  s.opt.dispose();
  s.model.dispose();
  await r.sync();
  return res;
}

function expectSameState(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, v] of a) {
    const w = b.get(k)!;
    let worst = 0;
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - w[i]!));
    expect(worst, `${k}: max |captured − normal|`).toBeLessThanOrEqual(1e-6);
  }
}

describe('replayed steps equal normal steps', () => {
  for (const c of CASES) {
    it(`${c.name}: 8 steps (1 recorded + 7 replayed) give the same losses, weights, buffers, lr and step counts`, async () => {
      const r = rt();
      const sizes = Array.from({ length: 8 }, () => c.b);
      const normal = await train(r, c, sizes, false);
      const captured = await train(r, c, sizes, true);
      expect(captured.stats).toEqual({ captures: 1, replays: 7 });
      expect(captured.pinned, 'the capture held pinned buffers').toBeGreaterThan(0);
      expect(r.pool.stats.pinned, 'disposing the runner unpins everything').toBe(0);
      for (let i = 0; i < sizes.length; i++) expect(Math.abs(captured.losses[i]! - normal.losses[i]!), `loss of step ${i}`).toBeLessThanOrEqual(1e-6);
      // the losses move (the replay really trains) and the schedule advanced through warm-up and decay
      expect(new Set(normal.losses.map((l) => l.toFixed(6))).size).toBeGreaterThan(4);
      expect(captured.sched).toBe(8);
      expect(captured.steps).toBe(8);
      expect(captured.lr).toBe(normal.lr);
      expect(captured.lr).toBeCloseTo(3e-3 * (12 - 8) / (12 - 3), 12);
      expectSameState(normal.state, captured.state);
    });
  }

  it('MLP: a batch-size change records a second capture, returning to a known shape replays it; results equal normal training', async () => {
    const r = rt();
    const c = CASES[0]!;
    const sizes = [8, 8, 5, 8, 5, 3, 8];
    const normal = await train(r, c, sizes, false);
    const captured = await train(r, c, sizes, true);
    // shapes 8, 5 recorded; 8, 5 replayed; 3 evicts the oldest (maxShapes 2: 8) and records; 8 records again
    expect(captured.stats).toEqual({ captures: 4, replays: 3 });
    for (let i = 0; i < sizes.length; i++) expect(Math.abs(captured.losses[i]! - normal.losses[i]!), `loss of step ${i}`).toBeLessThanOrEqual(1e-6);
    expectSameState(normal.state, captured.state);
  });
});

describe('memory plan and errors', () => {
  it('pinned buffers are never handed out while the capture lives, and return to the pool on dispose', async () => {
    const r = rt();
    const s = setup(r, CASES[0]!);
    const [bx, by] = CASES[0]!.batch(1, 8);
    const x = Tensor.from(r, bx!.data, bx!.shape);
    const y = Tensor.from(r, by!.data, by!.shape, 'i32');
    const cap = captureStep(r, () => s.stepFn([x, y]), { inputs: [x, y] });
    expect(cap.pinnedCount).toBeGreaterThan(3);
    expect(r.pool.stats.pinned).toBe(cap.pinnedCount);
    expect(cap.dispatchCount).toBeGreaterThan(10);
    // the step's temporaries (activations, grads of activations) were released, but stay reserved
    const handed: GPUBuffer[] = [];
    for (const sizeEl of [8, 32, 64, 256, 320, 2048]) {
      for (let k = 0; k < 6; k++) handed.push(r.pool.acquire(4 * sizeEl));
    }
    expect(handed.filter((b) => r.pool.isPinned(b)), 'no pinned buffer is handed out').toEqual([]);
    for (const b of handed) r.pool.release(b);
    const created2 = r.pool.stats.created;
    for (let i = 0; i < 3; i++) cap.replay().forEach((t) => t.dispose());
    expect(r.pool.stats.created, 'replays create no buffers').toBe(created2);
    cap.dispose();
    expect(r.pool.stats.pinned).toBe(0);
    // after dispose the uncaptured step reuses the freed buffers instead of creating new ones
    const before = r.pool.stats.created;
    scope(r, () => s.stepFn([x, y]));
    r.submit();
    expect(r.pool.stats.created - before).toBe(0);
    expect(() => cap.replay()).toThrow(/disposed/);
    x.dispose();
    y.dispose();
    s.opt.dispose();
    s.model.dispose();
    await r.sync();
  });

  it('wrong input data, submits and dropout inside a capture give clear GraftErrors', async () => {
    const r = rt();
    const s = setup(r, CASES[0]!);
    const [bx, by] = CASES[0]!.batch(2, 8);
    const x = Tensor.from(r, bx!.data, bx!.shape);
    const y = Tensor.from(r, by!.data, by!.shape, 'i32');
    const cap = captureStep(r, () => s.stepFn([x, y]), { inputs: [x, y] });
    expect(() => cap.replay([new Float32Array(7 * 64), by!.data])).toThrow(ShapeError);
    expect(() => cap.replay([new Float32Array(7 * 64), by!.data])).toThrow(/input 0 has 448 values, the step was captured for f32 \[8, 64\] \(512\); a new shape needs a new capture/);
    expect(() => cap.replay([bx!.data])).toThrow(/1 inputs given, the step was captured with 2/);
    expect(() => cap.replay([by!.data, by!.data])).toThrow(GraftError);
    cap.dispose();
    expect(() => captureStep(r, () => { const t = Tensor.zeros(r, [4]); t.write([1, 2, 3, 4]); return t; })).toThrow(/must be one batch/);
    // the dropout kernel called directly, without a dynamic seed, would freeze its mask
    expect(() => captureStep(r, () => dropout(x, 0.5, 7))).toThrow(/cannot capture kernel 'dropout'/);
    expect(r.pool.stats.pinned, 'failed captures pin nothing').toBe(0);
    // the runtime still works normally afterwards
    const l = scope(r, () => s.stepFn([x, y]));
    r.submit();
    expect(Number.isFinite((await l.read())[0]!)).toBe(true);
    l.dispose();
    x.dispose();
    y.dispose();
    s.opt.dispose();
    s.model.dispose();
    await r.sync();
  });
});

describe('host-side data in captured steps', () => {
  it('a dispatch with dynamic params re-evaluates them on every replay (dropout with a fresh seed per step equals uncaptured dropout with those seeds)', async () => {
    const r = rt();
    const n = 1000;
    const x = Tensor.from(r, Float32Array.from({ length: n }, (_, i) => 1 + (i % 7)), [n]);
    let seed = 41;
    const params = (s: number) => [n, 0, 0, 0, s, 0, 2 ** 31, 0, f32(2)]; // p = 0.5: thresh 2^31, scale 2, offset 0
    const cap = captureStep(r, () => {
      const y = Tensor.empty(r, [n]);
      r.dispatch(
        { name: 'dropout', code: dropoutSrc },
        { buffers: [x, y], params: params(seed), dynamic: () => params(++seed), constants: { WG: 256 }, workgroups: [Math.ceil(n / 4 / 256)] },
      );
      return y;
    });
    const got = [await cap.outputs[0]!.read()];
    for (let i = 0; i < 3; i++) {
      const [v] = cap.replay();
      got.push(await v!.read());
      v!.dispose();
    }
    expect(seed).toBe(44);
    for (let i = 0; i < got.length; i++) {
      const ref = dropout(x, 0.5, 41 + i);
      expect(Array.from(got[i]!), `replay ${i}: seed ${41 + i}`).toEqual(Array.from(await ref.read()));
      ref.dispose();
    }
    expect(Array.from(got[1]!)).not.toEqual(Array.from(got[0]!));
    cap.dispose();
    x.dispose();
    await r.sync();
  });

  it('host data uploaded inside the captured step (Tensor.from) keeps its buffer, so replays read the same constant', async () => {
    const r = rt();
    const x = Tensor.from(r, [1, 2, 3, 4], [4]);
    const cap = captureStep(
      r,
      () => {
        const c = Tensor.from(r, [10, 20, 30, 40], [4]);
        const y = F.add(x, c);
        c.dispose(); // its buffer must not be reused by the next kernel of the step
        const z = F.mul(y, y);
        y.dispose();
        return z;
      },
      { inputs: [x] },
    );
    expect(Array.from(await cap.outputs[0]!.read())).toEqual([121, 484, 1089, 1936]);
    const [v] = cap.replay([[0, 1, 2, 3]]);
    expect(Array.from(await v!.read())).toEqual([100, 441, 1024, 1849]);
    v!.dispose();
    cap.dispose();
    x.dispose();
    await r.sync();
  });
});
