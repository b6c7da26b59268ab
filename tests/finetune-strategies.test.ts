// Gradual unfreezing on real Fashion-MNIST (the other strategies' learning tests live in train-loop.test.ts and finetune-lora.test.ts): loss falls, accuracy well above chance, the backbone thaws after the first epoch.
import { describe, expect, it } from 'vitest';
import { useRuntime } from './helpers/gpu.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { Trainer } from '../src/train/trainer.js';
import { prepareImageTraining } from '../src/train/strategies.js';
import { TinyNet, SMALL_PREPROCESS } from './train-loop-helpers.js';

describe('gradual unfreezing on Fashion-MNIST', () => {
  const gpu = useRuntime();

  it('head first, then the backbone: loss falls, test accuracy well above chance', async () => {
    const rt = gpu();
    const train = await loadFashionMnist({ split: 'train', limit: 512 });
    const test = await loadFashionMnist({ split: 'test', limit: 256 });
    const model = new TinyNet(rt, 10, 9);
    const prep = await prepareImageTraining(rt, model, train, test, {
      strategy: 'gradual', numClasses: 10, lr: 0.02, backboneLrDiv: 1, batchSize: 32, epochs: 4, seed: 6, preprocess: SMALL_PREPROCESS, resetHead: false,
    });
    const onEpochStart = prep.trainer.onEpochStart;
    if (!onEpochStart) throw new Error('gradual must set onEpochStart');
    const frozenAt: boolean[] = [];
    const trainer = new Trainer({
      rt, epochs: 4, logEvery: 4, ...prep.trainer,
      onEpochStart: (e) => {
        onEpochStart(e);
        frozenAt.push(!model.conv1.weight.requiresGrad);
      },
    });
    const before = await model.conv1.weight.read();
    const r = await trainer.fit();
    expect(frozenAt).toEqual([true, false, false, false]);
    expect(model.fc.weight.requiresGrad).toBe(true);
    const after = await model.conv1.weight.read();
    expect(after.some((v, i) => v !== before[i])).toBe(true);
    const first = r.losses[0]!.loss;
    const lastLoss = r.losses[r.losses.length - 1]!.loss;
    const acc = r.evals[r.evals.length - 1]!.accuracy;
    console.log(`gradual: loss ${first.toFixed(3)} -> ${lastLoss.toFixed(3)}, test acc ${acc.toFixed(3)}, ${r.samplesPerSec.toFixed(0)} samples/s`);
    expect(lastLoss).toBeLessThan(first * 0.8);
    expect(acc).toBeGreaterThan(0.35);
    prep.dispose();
    model.dispose();
  }, 60_000);
});
