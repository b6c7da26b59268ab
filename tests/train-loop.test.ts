// Trainer on real Fashion-MNIST subsets: linear probe on cached features and full fine-tuning learn (loss falls, accuracy well above chance); logging cadence, stop hook, NaN stop.
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import * as F from '../src/autograd/functional.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { Trainer, DivergenceError, type LogRecord } from '../src/train/trainer.js';
import { prepareImageTraining } from '../src/train/strategies.js';
import { readCheckpoint, readPointer } from '../src/train/checkpoint.js';
import { TinyNet, SMALL_PREPROCESS } from './train-loop-helpers.js';

describe('trainer on Fashion-MNIST', () => {
  const gpu = useRuntime();

  it('linear probe on cached features: loss falls, test accuracy well above chance, one submit per step', async () => {
    const rt = gpu();
    const train = await loadFashionMnist({ split: 'train', limit: 600 });
    const test = await loadFashionMnist({ split: 'test', limit: 300 });
    const model = new TinyNet(rt, 10, 1);
    const prep = await prepareImageTraining(rt, model, train, test, {
      strategy: 'linear-probe', numClasses: 10, lr: 0.05, batchSize: 32, epochs: 8, seed: 3, preprocess: SMALL_PREPROCESS, cacheFeatures: true, resetHead: false,
    });
    expect(prep.trainable).toBe(32 * 10 + 10);
    const logs: LogRecord[] = [];
    const before = rt.stats.submits;
    const trainer = new Trainer({ rt, epochs: 8, logEvery: 5, ...prep.trainer, onLog: (r) => logs.push(r) });
    const r = await trainer.fit();
    const steps = 8 * Math.ceil(600 / 32);
    expect(r.steps).toBe(steps);
    expect(r.reason).toBe('completed');
    const train0 = r.losses[0]!.loss;
    const trainN = r.losses[r.losses.length - 1]!.loss;
    const last = r.evals[r.evals.length - 1]!;
    console.log(`linear probe (cached): loss ${train0.toFixed(3)} -> ${trainN.toFixed(3)}, test acc ${last.accuracy.toFixed(3)}, F1 ${last.macroF1.toFixed(3)}, ${r.samplesPerSec.toFixed(0)} samples/s`);
    expect(trainN).toBeLessThan(train0 * 0.8);
    expect(last.accuracy).toBeGreaterThan(0.35);
    expect(r.evals.length).toBe(8); // once per epoch
    // Loss read back every 5 steps (+ the last step and before each epoch-end evaluation), not every step.
    expect(r.losses.length).toBeLessThan(steps / 2);
    // Submits: one per step plus readbacks/evaluations, far below a submit per kernel.
    expect(rt.stats.submits - before).toBeLessThan(steps * 2 + 8 * 40);
    for (const l of logs) expect(JSON.parse(JSON.stringify(l))).toEqual(l);
    prep.dispose();
    model.dispose();
  }, 60_000);

  it('full fine-tuning (discriminative lrs, warm-up) of a small CNN learns Fashion-MNIST', async () => {
    const rt = gpu();
    const train = await loadFashionMnist({ split: 'train', limit: 512 });
    const test = await loadFashionMnist({ split: 'test', limit: 256 });
    const model = new TinyNet(rt, 10, 7);
    const prep = await prepareImageTraining(rt, model, train, test, {
      strategy: 'full', numClasses: 10, lr: 0.02, backboneLrDiv: 1, batchSize: 32, epochs: 4, seed: 5, preprocess: SMALL_PREPROCESS, resetHead: false,
    });
    expect(prep.trainer.optimizer.paramGroups.map((g) => g.name)).toEqual(['backbone', 'head']);
    const trainer = new Trainer({ rt, epochs: 4, logEvery: 4, ...prep.trainer });
    const r = await trainer.fit();
    const first = r.losses[0]!.loss;
    const lastLoss = r.losses[r.losses.length - 1]!.loss;
    const acc = r.evals[r.evals.length - 1]!.accuracy;
    console.log(`full fine-tune: loss ${first.toFixed(3)} -> ${lastLoss.toFixed(3)}, test acc ${acc.toFixed(3)}, ${r.samplesPerSec.toFixed(0)} samples/s`);
    expect(lastLoss).toBeLessThan(first * 0.8);
    expect(acc).toBeGreaterThan(0.35);
    prep.dispose();
    model.dispose();
  }, 60_000);

  it('requestStop (the SIGINT hook) finishes the step, saves a checkpoint and returns interrupted', async () => {
    const rt = gpu();
    const train = await loadFashionMnist({ split: 'train', limit: 128 });
    const out = await mkdtemp(join(tmpdir(), 'graft-stop-'));
    const model = new TinyNet(rt, 10, 2);
    const prep = await prepareImageTraining(rt, model, train, null, {
      strategy: 'full', numClasses: 10, lr: 0.01, batchSize: 16, epochs: 3, seed: 1, preprocess: SMALL_PREPROCESS, resetHead: false,
    });
    const hook: { stop?: () => void } = {};
    const trainer = new Trainer({
      rt, epochs: 3, logEvery: 1, outDir: out, ...prep.trainer,
      onLog: (l) => { if (l.type === 'train' && l.step === 3) hook.stop?.(); },
    });
    hook.stop = () => trainer.requestStop();
    const r = await trainer.fit();
    expect(r.reason).toBe('interrupted');
    expect(r.steps).toBe(3);
    const last = await readPointer(out, 'last');
    expect(last).toBe(join(out, 'step-000003'));
    expect((await readCheckpoint(last!)).trainer.step).toBe(3);
    prep.dispose();
    model.dispose();
  }, 60_000);

  it('a NaN loss stops training with a message naming the step; the last good checkpoint is kept', async () => {
    const rt = gpu();
    const train = await loadFashionMnist({ split: 'train', limit: 128 });
    const test = await loadFashionMnist({ split: 'test', limit: 32 });
    const out = await mkdtemp(join(tmpdir(), 'graft-nan-'));
    const model = new TinyNet(rt, 10, 4);
    const prep = await prepareImageTraining(rt, model, train, test, {
      strategy: 'full', numClasses: 10, lr: 0.01, batchSize: 16, epochs: 2, seed: 1, preprocess: SMALL_PREPROCESS, resetHead: false,
    });
    let calls = 0;
    const base = prep.trainer.loss;
    const trainer = new Trainer({
      rt, epochs: 2, logEvery: 1, evalEvery: 2, outDir: out, ...prep.trainer,
      // Poison the 5th batch: its loss (and, through backward, the weights) become NaN.
      loss: (b) => (++calls === 5 ? F.mul(base(b), Number.NaN) : base(b)),
    });
    let err: unknown;
    try {
      await trainer.fit();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DivergenceError);
    expect((err as Error).message).toMatch(/loss is NaN at step 5/);
    expect((err as Error).message).toContain('step-000004');
    const last = await readPointer(out, 'last');
    expect(last).toBe(join(out, 'step-000004'));
    const ck = await readCheckpoint(last!);
    for (const [k, v] of ck.model) expect(v.data.every(Number.isFinite), `${k} finite`).toBe(true);
    expect(existsSync(join(out, 'step-000005'))).toBe(false);
    expect(JSON.parse(await readFile(join(out, 'last.json'), 'utf8')).step).toBe(4);
    prep.dispose();
    model.dispose();
  }, 60_000);
});
