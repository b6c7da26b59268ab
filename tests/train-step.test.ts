// A full training step (upload, forward, loss, backward, clip, AdamW, scheduler) is exactly one queue.submit; 200 steps create no buffers after warm-up; `graft bench train-step` reports sane numbers and JSON.
import { describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import type { Runtime } from '../src/runtime/runtime.js';
import { Tensor, scope } from '../src/tensor.js';
import { backward, F } from '../src/autograd/index.js';
import type { Module } from '../src/nn/index.js';
import { AdamW, captureTrainingStep, clipGradNorm, linearWarmupDecay } from '../src/optim/index.js';
import { MLP, SmallCNN } from '../src/models/small.js';
import { benchTrainStep, compareTrainStepCapture, makeTrainer, trainInputShape, type TrainStepResult } from '../src/bench/train-step.js';
import { registerTrainStepBench } from '../src/cli/bench-train-step.js';
import { useRuntime } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';

const rt = useRuntime();

const STEPS = 200;
/** Steps after which the pool must have stopped creating buffers. */
const SETTLE = 5;
/** Read the loss back every READ_EVERY steps (its readback submit is counted separately). */
const READ_EVERY = 25;

interface Case {
  name: string;
  model: (r: Runtime) => Module & { forward(x: Tensor): Tensor };
  inShape: number[];
  classes: number;
}

const CASES: Case[] = [
  { name: 'MLP 64→32→32→10', model: (r) => new MLP(r, [64, 32, 32, 10], { rng: 3 }), inShape: [8, 64], classes: 10 },
  { name: 'SmallCNN', model: (r) => new SmallCNN(r, { rng: 4 }), inShape: [4, 3, 16, 16], classes: 10 },
];

/** A small fixed data set (4 batches, cycled) so the loss can fall. */
function dataset(inShape: number[], classes: number, seed: number): { x: Float32Array; y: number[] }[] {
  const u = rng(seed);
  const n = inShape.reduce((a, b) => a * b, 1);
  return [0, 1, 2, 3].map(() => ({
    x: Float32Array.from({ length: n }, () => 2 * u() - 1),
    y: Array.from({ length: inShape[0]! }, () => Math.floor(u() * classes)),
  }));
}

describe('one submit per training step, no pool growth', () => {
  for (const c of CASES) {
    it(`${c.name}: ${STEPS} steps, each exactly 1 submit (upload + forward + backward + clip + AdamW + schedule), no buffers created or leaked after step ${SETTLE}`, async () => {
      const r = rt();
      const model = c.model(r);
      const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.01 });
      const sched = linearWarmupDecay(opt, 10, STEPS);
      const data = dataset(c.inShape, c.classes, 11);
      await r.sync();
      let created = -1;
      let live = -1;
      let dispatches = -1;
      let readSubmits = 0;
      const losses: number[] = [];
      for (let step = 0; step < STEPS; step++) {
        const batch = data[step % data.length]!;
        const s0 = r.stats.submits;
        const d0 = r.stats.dispatches;
        // The step as a user writes it: temporaries (batch, activations, the clip norm) are scoped; the loss is kept.
        const loss = scope(r, () => {
          const x = Tensor.from(r, batch.x, c.inShape);
          const y = Tensor.from(r, batch.y, [c.inShape[0]!], 'i32');
          opt.zeroGrad();
          const l = F.crossEntropy(model.forward(x), y);
          backward(l);
          clipGradNorm(opt, 1.0);
          opt.step();
          sched.step();
          return l;
        });
        expect(r.stats.submits - s0, `step ${step}: recording submits nothing`).toBe(0);
        r.submit();
        expect(r.stats.submits - s0, `step ${step}: one submit`).toBe(1);
        const d = r.stats.dispatches - d0;
        if (step > 0) expect(d, `step ${step}: same dispatch count every step`).toBe(dispatches);
        dispatches = d;
        if (step % READ_EVERY === 0 || step === STEPS - 1) {
          const s1 = r.stats.submits;
          losses.push((await loss.read())[0]!);
          readSubmits += r.stats.submits - s1;
          expect(r.stats.submits - s1, 'a loss readback is one extra submit').toBe(1);
        }
        loss.dispose();
        if (step === SETTLE) {
          created = r.pool.stats.created;
          live = r.pool.stats.live;
        } else if (step > SETTLE) {
          expect(r.pool.stats.created, `step ${step}: pool buffers created`).toBe(created);
          expect(r.pool.stats.live, `step ${step}: live pool buffers`).toBe(live);
        }
      }
      console.log(
        `${c.name} batch ${c.inShape[0]}: ${dispatches} dispatches + 1 submit per step; ${readSubmits} readback submits over ${STEPS} steps; ` +
          `pool: ${created} buffers created, ${live} live; loss ${losses[0]!.toFixed(3)} -> ${losses[losses.length - 1]!.toFixed(3)}`,
      );
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]!, 'the model fits its 4 batches').toBeLessThan(0.5 * losses[0]!);
      opt.dispose();
      model.dispose();
      await r.sync();
    });
  }
});

describe('captured training steps', () => {
  it(`SmallCNN via captureTrainingStep: 60 steps, each exactly 1 submit (batch upload included), no buffers created after the recording step, the loss falls`, async () => {
    const r = rt();
    const c = CASES[1]!;
    const model = c.model(r);
    const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.01 });
    const sched = linearWarmupDecay(opt, 10, 60);
    const runner = captureTrainingStep(r, ([x, y]) => {
      opt.zeroGrad();
      const l = F.crossEntropy(model.forward(x!), y!);
      backward(l);
      clipGradNorm(opt, 1.0);
      opt.step();
      sched.step();
      return l;
    });
    const data = dataset(c.inShape, c.classes, 11);
    await r.sync();
    let created = -1;
    const losses: number[] = [];
    for (let step = 0; step < 60; step++) {
      const b = data[step % data.length]!;
      const s0 = r.stats.submits;
      const loss = runner.step([
        { data: b.x, shape: c.inShape },
        { data: b.y, shape: [c.inShape[0]!], dtype: 'i32' },
      ]);
      expect(r.stats.submits - s0, `step ${step}: one submit`).toBe(1);
      if (step % 20 === 0 || step === 59) losses.push((await loss.read())[0]!);
      loss.dispose();
      if (step === 0) created = r.pool.stats.created;
      else expect(r.pool.stats.created, `step ${step}: pool buffers created`).toBe(created);
    }
    expect(runner.stats).toEqual({ captures: 1, replays: 59 });
    expect(losses[losses.length - 1]!, 'the model fits its 4 batches').toBeLessThan(0.5 * losses[0]!);
    runner.dispose();
    opt.dispose();
    model.dispose();
    await r.sync();
  });
});

function checkResult(res: TrainStepResult, model: string, batch: number, dispatches?: number): void {
  expect(res.model).toBe(model);
  expect(res.batch).toBe(batch);
  expect(res.submitsPerStep).toBe(1);
  expect(res.dispatchesPerStep).toBeGreaterThan(10);
  if (dispatches !== undefined) expect(res.dispatchesPerStep).toBe(dispatches);
  expect(res.stepMs).toBeGreaterThan(0);
  expect(Number.isFinite(res.stepMs)).toBe(true);
  expect(res.minStepMs).toBeLessThanOrEqual(res.stepMs);
  expect(res.recordMs).toBeLessThanOrEqual(res.stepMs);
  expect(res.samplesPerSec).toBeCloseTo((batch * 1000) / res.stepMs, 6);
  // The pool peak covers at least the batch input and the first layer's activations.
  const inBytes = 4 * trainInputShape(res.model, batch).reduce((a, b) => a * b, 1);
  expect(res.peakBytes).toBeGreaterThanOrEqual(inBytes);
  expect(res.peakBytes).toBeLessThan(64 << 20);
  expect(res.buffersCreated).toBe(0);
  expect(Number.isFinite(res.finalLoss)).toBe(true);
  expect(res.paramCount).toBeGreaterThan(0);
}

describe('graft bench train-step', () => {
  it('makeTrainer: one submit per step for every benchmark model', async () => {
    const r = rt();
    for (const name of ['mlp', 'cnn', 'encoder'] as const) {
      const tr = makeTrainer(r, name, 2);
      for (let i = 0; i < 3; i++) {
        const s0 = r.stats.submits;
        const loss = tr.step();
        expect(r.stats.submits - s0).toBe(1);
        loss.dispose();
      }
      tr.dispose();
      await r.sync();
    }
  });

  it('benchTrainStep (library): sane numbers at tiny sizes for mlp and cnn', async () => {
    const r = rt();
    const mlp = await benchTrainStep(r, { model: 'mlp', batch: 2, steps: 3, warmup: 1 });
    checkResult(mlp, 'mlp', 2);
    expect(mlp.paramCount).toBe(784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
    const progress: number[] = [];
    const cnn = await benchTrainStep(r, { model: 'cnn', batch: 3, steps: 2, warmup: 1, onProgress: (d) => progress.push(d) });
    checkResult(cnn, 'cnn', 3);
    expect(progress).toEqual([1, 2, 3]);
    expect(cnn.paramCount).toBe(8 * 3 * 9 + 8 + 8 + 8 + 512 * 10 + 10);
    console.log(`bench train-step at tiny sizes: mlp ${mlp.dispatchesPerStep} dispatches/step, cnn ${cnn.dispatchesPerStep} dispatches/step, 1 submit/step`);
  });

  it('the CLI command prints exactly one JSON object on stdout with --json, and rejects a bad --model', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerTrainStepBench(program.command('bench'));
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
    try {
      await program.parseAsync(['bench', 'train-step', '--model', 'cnn', '--batch', '2', '--steps', '2', '--warmup', '1', '--json'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const text = out.join('');
    expect(text.trim().split('\n')).toHaveLength(1);
    const v: unknown = JSON.parse(text);
    expect(v).toMatchObject({ model: 'cnn', batch: 2, submitsPerStep: 1, timer: 'wall-clock' });
    for (const k of ['stepMs', 'samplesPerSec', 'dispatchesPerStep', 'submitsPerStep', 'peakBytes', 'recordMs', 'finalLoss']) {
      expect(typeof Reflect.get(Object(v), k), k).toBe('number');
    }
    await expect(program.parseAsync(['bench', 'train-step', '--model', 'resnet'], { from: 'user' })).rejects.toThrow(/--model must be one of mlp, cnn, encoder, got 'resnet'/);
    await expect(program.parseAsync(['bench', 'train-step', '--batch', '0'], { from: 'user' })).rejects.toThrow(/--batch must be a positive integer/);
  });

  it('benchTrainStep with capture: same dispatches and final loss as the normal run, 1 submit, no buffers created, pinned memory reported', async () => {
    const r = rt();
    const c = await compareTrainStepCapture(r, { model: 'cnn', batch: 3, steps: 3, warmup: 1 });
    checkResult(c.uncaptured, 'cnn', 3);
    expect(c.captured.captured).toBe(true);
    expect(c.uncaptured.captured).toBe(false);
    expect(c.captured.submitsPerStep).toBe(1);
    expect(c.captured.dispatchesPerStep).toBe(c.uncaptured.dispatchesPerStep);
    expect(c.captured.buffersCreated).toBe(0);
    expect(c.captured.pinnedBytes).toBeGreaterThan(0);
    expect(c.uncaptured.pinnedBytes).toBe(0);
    expect(c.sameLoss, `final loss ${c.uncaptured.finalLoss} vs ${c.captured.finalLoss}`).toBe(true);
    expect(c.encodeSpeedup).toBeCloseTo(c.uncaptured.recordMs / c.captured.recordMs, 9);
    await expect(benchTrainStep(r, { model: 'mlp', batch: 2, steps: 1, warmup: 0, capture: true })).rejects.toThrow(/capture needs at least 1 warm-up step/);
  });

  it('the CLI with --capture --json prints one JSON object with both runs', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerTrainStepBench(program.command('bench'));
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
    try {
      await program.parseAsync(['bench', 'train-step', '--model', 'mlp', '--batch', '2', '--steps', '2', '--warmup', '1', '--capture', '--json'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const text = out.join('');
    expect(text.trim().split('\n')).toHaveLength(1);
    const v: unknown = JSON.parse(text);
    expect(v).toMatchObject({ uncaptured: { model: 'mlp', captured: false, submitsPerStep: 1 }, captured: { model: 'mlp', captured: true, submitsPerStep: 1 }, sameLoss: true });
    expect(typeof Reflect.get(Object(v), 'encodeSpeedup')).toBe('number');
  });
});
