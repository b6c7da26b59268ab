// The 'lora' image strategy: split forward, LoRA not bypassed by the folded path, merged == unmerged, stage cache == uncached on real Fashion-MNIST.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { Tensor } from '../src/tensor.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { backward } from '../src/autograd/engine.js';
import { Rng } from '../src/autograd/random.js';
import { ResNet } from '../src/models/resnet.js';
import { KerasResNet } from '../src/models/keras-resnet50.js';
import { parseKerasResNet } from '../src/models/keras-resnet-spec.js';
import type { KerasLayer } from '../src/io/tfjs-layers.js';
import { applyLora, loraLayers, mergeLora, unmergeLora } from '../src/peft/index.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { prepareImageTraining } from '../src/train/strategies.js';
import { defaultLoraTargets } from '../src/train/lora-strategy.js';
import type { ImagePipeline } from '../src/data/image-transforms.js';

const fx = JSON.parse(readFileSync(new URL('./fixtures/resnet-keras-mini.json', import.meta.url), 'utf8')) as {
  modelJson: { modelTopology: { model_config: { config: { layers: KerasLayer[] } } } };
};
const kerasMini = (rt: Runtime, seed: number) => new KerasResNet(rt, parseKerasResNet(fx.modelJson.modelTopology.model_config.config.layers), { rng: new Rng(seed) });

function randomInput(rt: Runtime, shape: number[], seed: number): Tensor {
  const r = new Rng(seed);
  const d = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < d.length; i++) d[i] = r.normal(0, 1);
  return Tensor.from(rt, d, shape);
}

/** Give every lora_B non-zero values (they start at zero, which would make the adapter an identity). */
function perturbLoraB(model: ResNet | KerasResNet, seed: number, std = 0.05): void {
  const r = new Rng(seed);
  for (const [, l] of loraLayers(model)) {
    const d = new Float32Array(l.lora_B.weight.size);
    for (let i = 0; i < d.length; i++) d[i] = r.normal(0, std);
    l.lora_B.weight.write(d);
  }
}

async function logits(model: ResNet | KerasResNet, x: Tensor): Promise<Float32Array> {
  const y = noGrad(() => model.forward(x));
  const v = await y.read();
  y.dispose();
  return v;
}

const PRE: ImagePipeline = { rgb: true, resize: 32, normalize: 'torchvision' };

describe('lora image strategy', () => {
  const gpu = useRuntime();

  it('split forward: forwardFrom(forwardTo(x, s), s) == forward(x) for every stage (torchvision and Keras); stageOf', async () => {
    const rt = gpu();
    const models: [ResNet | KerasResNet, number[]][] = [
      [new ResNet(rt, 18, { rng: new Rng(1), numClasses: 7 }), [2, 3, 32, 32]],
      [kerasMini(rt, 2), [2, 3, 32, 32]],
    ];
    for (const [m, shape] of models) {
      m.eval();
      const x = randomInput(rt, shape, 3);
      const ref = await logits(m, x);
      expect(m.numStages).toBe(4);
      for (let s = 1; s <= 4; s++) {
        const y = noGrad(() => {
          const h = m.forwardTo(x, s);
          const o = m.forwardFrom(h, s);
          h.dispose();
          return o;
        });
        expectClose(await y.read(), ref, { atol: 1e-5, rtol: 1e-5 }, `${m.constructor.name} stage ${s}`);
        y.dispose();
      }
      expect(() => m.forwardTo(x, 5)).toThrow(/stage must be 1\.\.4/);
      x.dispose();
      m.dispose();
    }
    const tv = new ResNet(rt, 18, { rng: new Rng(1) });
    expect([tv.stageOf('layer4.1.conv2.lora_A'), tv.stageOf('layer1.0.downsample.0'), tv.stageOf('bn1.weight'), tv.stageOf('fc.weight')]).toEqual([4, 1, 0, -1]);
    tv.dispose();
    const k = kerasMini(rt, 2);
    expect([k.stageOf('res5a_branch2a'), k.stageOf('bn3a_branch1.weight'), k.stageOf('res2a_branch2c.lora_B'), k.stageOf('conv1'), k.stageOf('fc1000.bias')]).toEqual([4, 2, 1, 0, -1]);
    k.dispose();
  }, 120_000);

  it('LoRA on the last stage changes eval logits (not bypassed by BN folding); merged == unmerged; default targets are exactly the last stage convs', async () => {
    const rt = gpu();
    for (const m of [new ResNet(rt, 18, { rng: new Rng(4), numClasses: 5 }), kerasMini(rt, 5)]) {
      m.eval();
      const x = randomInput(rt, [2, 3, 32, 32], 6);
      const base = await logits(m, x);
      const targets = defaultLoraTargets(m);
      const applied = applyLora(m, { r: 4, alpha: 8, targetModules: targets, rng: new Rng(7) });
      const convsOfLast = m.namedModules().filter(([n, c]) => c.constructor.name === 'Conv2d' && !n.includes('.lora_') && m.stageOf(n) === 4).map(([n]) => n);
      expect(applied.targets.length).toBeGreaterThan(0);
      expect(convsOfLast).toEqual([]); // every last-stage conv is now wrapped
      expect(applied.targets.every((t) => m.stageOf(t) === 4)).toBe(true);
      // B = 0 at init: identical output
      expectClose(await logits(m, x), base, { atol: 1e-5, rtol: 1e-5 }, `${m.constructor.name} identity adapter`);
      perturbLoraB(m, 8);
      const unmerged = await logits(m, x);
      expect(maxAbsDiff(unmerged, base)).toBeGreaterThan(1e-3);
      mergeLora(m);
      expectClose(await logits(m, x), unmerged, { atol: 1e-4, rtol: 1e-4 }, `${m.constructor.name} merged`);
      unmergeLora(m);
      expectClose(await logits(m, x), unmerged, { atol: 1e-5, rtol: 1e-5 }, `${m.constructor.name} unmerged again`);
      x.dispose();
      m.dispose();
    }
  }, 120_000);

  it('stage cache == uncached: same batch, same loss and the same LoRA gradients', async () => {
    const rt = gpu();
    const train = await loadFashionMnist({ split: 'train', limit: 8 });
    const run = async (cacheStage: boolean) => {
      const m = new ResNet(rt, 18, { rng: new Rng(11) });
      const prep = await prepareImageTraining(rt, m, train, null, {
        strategy: 'lora', numClasses: 10, lr: 1e-3, batchSize: 8, epochs: 1, seed: 3, preprocess: PRE, headRng: new Rng(12),
        lora: { r: 4, alpha: 8, cacheStage },
      });
      perturbLoraB(m, 13);
      const batch = prep.trainer.loader.next();
      const loss = prep.trainer.loss(batch);
      backward(loss);
      const lv = (await loss.read())[0]!;
      const [name, l] = loraLayers(m)[0]!;
      const g = l.lora_A.weight.grad;
      if (!g) throw new Error(`${name}: no gradient`);
      const grad = await g.read();
      const hg = m.fc.weight.grad;
      if (!hg) throw new Error('fc: no gradient');
      const headGrad = await hg.read();
      loss.dispose();
      const out = { loss: lv, y: Array.from(batch.y), shape: batch.shape, grad, headGrad, cacheSeconds: prep.cacheSeconds };
      prep.dispose();
      m.dispose();
      return out;
    };
    const cached = await run(true);
    const plain = await run(false);
    expect(cached.shape).toEqual([8, 256, 2, 2]); // layer4 input at 32 px
    expect(plain.shape).toEqual([8, 3, 32, 32]);
    expect(cached.cacheSeconds).toBeGreaterThan(0);
    expect(plain.cacheSeconds).toBe(0);
    expect(cached.y).toEqual(plain.y);
    expect(Math.abs(cached.loss - plain.loss)).toBeLessThan(1e-4 * Math.max(1, plain.loss));
    expectClose(cached.grad, plain.grad, { atol: 1e-5, rtol: 1e-3 }, 'lora_A grad');
    expectClose(cached.headGrad, plain.headGrad, { atol: 1e-5, rtol: 1e-3 }, 'head grad');
    expect(maxAbsDiff(cached.grad, new Float32Array(cached.grad.length))).toBeGreaterThan(0);
  }, 600_000);
});
