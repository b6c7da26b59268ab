// Fine-tune benchmark peers: tfjs models really train and match graft's parameter counts; the torch peer runs or says why it cannot.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { useRuntime } from './helpers/gpu.js';
import { finetuneSpec, type FinetuneBenchSpec } from '../src/bench/finetune-spec.js';
import { BERT_SIZES, runPeers, runTorchScript, tfjsFinetuneStep, torchPython } from '../src/bench/peers/index.js';
import { loadTfjs } from '../src/bench/tfjs.js';
import { registerTfjsGradients } from '../src/bench/peers/tfjs-grads.js';
import type * as TF from '@tensorflow/tfjs-core';
import { GraftError } from '../src/runtime/errors.js';
import { bertConfig } from '../src/models/bert-config.js';
import { BertForSequenceClassification } from '../src/models/bert.js';
import { ResNet, torchvisionResnetShapes } from '../src/models/resnet.js';
import { applyLora } from '../src/peft/inject.js';
import type { Module } from '../src/nn/module.js';
import { Rng } from '../src/autograd/random.js';

const rt = useRuntime();
/** Elements of the parameters in a state-dict shape map (BN running stats and counters are buffers, not parameters). */
const numel = (m: Map<string, number[]>): number =>
  [...m.entries()].filter(([k]) => !/running_|num_batches/.test(k)).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);

/** Losses of `n` steps of the tfjs model on its fixed batch (no dropout, lr 1e-3), with its parameter counts. */
async function tfjsLosses(spec: FinetuneBenchSpec, n: number): Promise<{ losses: number[]; trainable: number; total: number }> {
  const p = await loadTfjs();
  const s = tfjsFinetuneStep(p, spec, { lr: 1e-3, dropout: 0 });
  try {
    const losses: number[] = [];
    for (let i = 0; i < n; i++) losses.push(await s.step());
    return { losses, trainable: s.trainableParams, total: s.totalParams };
  } finally {
    s.dispose();
  }
}

/** Trainable / total parameter elements of graft's own model for the spec (LoRA applied by graft's applyLora). */
function graftCounts(spec: FinetuneBenchSpec): { trainable: number; total: number } {
  const rng = new Rng(0);
  let model: Module;
  let head: Module;
  let targets: string | string[];
  if (spec.model.startsWith('bert-')) {
    const z = BERT_SIZES[spec.model]!;
    const cfg = bertConfig({ hiddenSize: z.hidden, numHiddenLayers: z.layers, numAttentionHeads: z.heads, intermediateSize: z.intermediate, numLabels: spec.numClasses });
    const m = new BertForSequenceClassification(rt(), cfg, { rng });
    [model, head, targets] = [m, m.classifier, ['query', 'value']];
  } else {
    const m = new ResNet(rt(), spec.model === 'resnet50' ? 50 : 18, { numClasses: spec.numClasses, rng });
    [model, head, targets] = [m, m.fc, String.raw`layer4\.\d+\.(conv\d|downsample\.0)`];
  }
  try {
    if (spec.strategy === 'lora') {
      const a = applyLora(model, { r: spec.loraRank, alpha: spec.loraAlpha, targetModules: targets, modulesToSave: [spec.model.startsWith('bert-') ? 'classifier' : 'fc'], rng });
      return { trainable: a.trainableParams, total: a.totalParams };
    }
    const total = model.parameters().reduce((n, t) => n + t.size, 0);
    const trainable = spec.strategy === 'full' ? total : head.parameters().reduce((n, t) => n + t.size, 0);
    return { trainable, total };
  } finally {
    model.dispose();
  }
}

describe('tfjs gradients registered by the peer', () => {
  /** Analytic gradients of f at xs against central differences at a few elements of every input. */
  async function checkGrad(f: (tf: typeof TF, xs: TF.Tensor[]) => TF.Tensor, shapes: number[][], seed: number): Promise<void> {
    rt();
    const { tf } = await loadTfjs();
    registerTfjsGradients(tf);
    const rng = new Rng(seed);
    const host = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rng.normal()));
    const value = async (arrs: Float32Array[]): Promise<number> => {
      const y = tf.tidy(() => tf.sum(f(tf, arrs.map((a, i) => tf.tensor(a, shapes[i]!)))));
      const v = (await y.data())[0]!;
      y.dispose();
      return v;
    };
    const xs = host.map((a, i) => tf.tensor(a, shapes[i]!));
    const gs = tf.grads((...ts: TF.Tensor[]) => tf.sum(f(tf, ts)))(xs);
    const eps = 3e-3;
    for (let i = 0; i < host.length; i++) {
      const g = await gs[i]!.data();
      for (let k = 0; k < 5; k++) {
        const j = Math.floor(rng.next() * host[i]!.length);
        const plus = host.map((a) => a.slice());
        const minus = host.map((a) => a.slice());
        plus[i]![j]! += eps;
        minus[i]![j]! -= eps;
        const fd = ((await value(plus)) - (await value(minus))) / (2 * eps);
        expect(Math.abs(g[j]! - fd), `input ${i} element ${j}: analytic ${g[j]} vs finite difference ${fd}`).toBeLessThan(2e-2 + 5e-2 * Math.abs(fd));
      }
    }
    tf.dispose([...xs, ...gs]);
  }

  it('matMul (plain, transposed, batched), broadcast add / sub / mul / div', async () => {
    await checkGrad((tf, [a, b, c, d, e]) => {
      const m = tf.add(tf.matMul(a as TF.Tensor2D, b as TF.Tensor2D), tf.matMul(a as TF.Tensor2D, c as TF.Tensor2D, false, true)); // [3, 4]
      const t = tf.matMul(b as TF.Tensor2D, a as TF.Tensor2D, true, true); // [4, 3]
      const bt = tf.matMul(tf.reshape(d!, [2, 3, 2]), tf.reshape(d!, [2, 3, 2]), true, false); // [2, 2, 2]
      const q = tf.div(tf.mul(tf.sub(m, e!), e!), tf.add(tf.square(e!), 1));
      return tf.add(tf.add(tf.sum(tf.square(q)), tf.sum(tf.square(t))), tf.sum(tf.square(bt)));
    }, [[3, 5], [5, 4], [4, 5], [12], [4]], 1);
  });

  it('layer norm (moments, rsqrt), erf GELU, tanh, softmax, transpose, slice, gather', async () => {
    await checkGrad((tf, [x, emb, w]) => {
      const { mean, variance } = tf.moments(x!, -1, true);
      const ln = tf.mul(tf.sub(x!, mean), tf.rsqrt(tf.add(variance, 1e-5)));
      const gelu = tf.mul(tf.mul(ln, 0.5), tf.add(tf.erf(tf.mul(ln, Math.SQRT1_2)), 1));
      const sm = tf.softmax(tf.transpose(tf.reshape(gelu, [2, 3, 4]), [0, 2, 1])); // [2, 4, 3]
      const sl = tf.slice(sm, [0, 1, 0], [2, 2, 3]);
      const g = tf.gather(emb!, tf.tensor2d([[1, 3], [1, 0]], [2, 2], 'int32')); // [2, 2, 3], row 1 twice
      return tf.mul(tf.tanh(tf.add(tf.reshape(sl, [2, 2, 3]), g)), tf.reshape(w!, [2, 2, 3]));
    }, [[6, 4], [4, 3], [12]], 2);
  });

  it('conv2d (stride 2, padding), max pool, relu, mean', async () => {
    await checkGrad((tf, [x, w, w2]) => {
      const y = tf.relu(tf.conv2d(x as TF.Tensor4D, w as TF.Tensor4D, 2, 1)); // [1, 4, 4, 3]
      const p = tf.maxPool(tf.conv2d(y, w2 as TF.Tensor4D, 1, 1), 3, 2, 1); // [1, 2, 2, 2]
      return tf.add(tf.sum(tf.square(p)), tf.sum(tf.square(tf.mean(y, [1, 2]))));
    }, [[1, 7, 7, 2], [3, 3, 2, 3], [3, 3, 3, 2]], 3);
  });
});

describe('tfjs peer models train and match graft parameter counts', () => {
  // Trained for 3 steps: every BERT strategy, and ResNet-18 full (conv / BN / max-pool gradients). ResNet LoRA and
  // linear probe: counts only (a ResNet step costs seconds on a CPU adapter).
  const trained = [
    ...(['full', 'lora', 'linear-probe'] as const).map((strategy) => finetuneSpec({ model: 'bert-tiny', strategy, batch: 2, seq: 16, numClasses: 4, seed: 3 })),
    finetuneSpec({ model: 'resnet18', strategy: 'full', batch: 2, res: 32, numClasses: 4, seed: 5 }),
  ];
  for (const spec of trained) {
    it(`${spec.model} ${spec.strategy}: loss starts near ln(C) and decreases on a fixed batch; counts equal graft's`, async () => {
      const { losses, trainable, total } = await tfjsLosses(spec, 3);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(Math.abs(losses[0]! - Math.log(spec.numClasses))).toBeLessThan(spec.model === 'resnet18' ? 1 : 0.5);
      expect(losses[2]!).toBeLessThan(losses[0]!);
      expect({ trainable, total }).toEqual(graftCounts(spec));
    });
  }

  for (const strategy of ['lora', 'linear-probe'] as const) {
    it(`resnet18 ${strategy}: trainable / total counts equal graft's`, async () => {
      const spec = finetuneSpec({ model: 'resnet18', strategy, batch: 2, res: 32, numClasses: 4 });
      const s = tfjsFinetuneStep(await loadTfjs(), spec);
      const got = { trainable: s.trainableParams, total: s.totalParams };
      s.dispose();
      expect(got).toEqual(graftCounts(spec));
    });
  }

  it('resnet50 full: parameter counts equal torchvision resnet50 with a 7-class fc', async () => {
    const p = await loadTfjs();
    const spec = finetuneSpec({ model: 'resnet50', strategy: 'full', batch: 1, res: 32, numClasses: 7 });
    const s = tfjsFinetuneStep(p, spec);
    const total = numel(torchvisionResnetShapes(50, 7));
    expect({ trainable: s.trainableParams, total: s.totalParams }).toEqual({ trainable: total, total });
    s.dispose();
  });
});

describe('runPeers', () => {
  it('rejects an unknown peer name with a GraftError', async () => {
    const spec = finetuneSpec({ model: 'bert-tiny', strategy: 'full', batch: 2, seq: 16, steps: 1, warmup: 0 });
    await expect(runPeers(rt(), spec, ['tfjs', 'jax'])).rejects.toThrow(GraftError);
  });

  it('times tfjs: finite samples/s, progress for warm-up + timed steps', async () => {
    for (const spec of [finetuneSpec({ model: 'bert-tiny', strategy: 'lora', batch: 2, seq: 16, steps: 2, warmup: 1 })]) {
      const seen: number[] = [];
      const [r] = await runPeers(rt(), spec, ['tfjs'], (peer, done, total) => {
        expect(peer).toBe('tfjs');
        expect(total).toBe(3);
        seen.push(done);
      });
      expect(r!.skipped).toBeUndefined();
      expect(r!.peer).toBe('tfjs');
      expect(r!.steps).toBe(2);
      expect(Number.isFinite(r!.samplesPerSec) && r!.samplesPerSec > 0).toBe(true);
      expect(r!.samplesPerSec).toBeCloseTo((2 * 1000) / r!.medianStepMs, 6);
      expect(seen).toEqual([1, 2, 3]);
    }
  });
});

describe('torch peer', () => {
  const hasTorch = spawnSync(torchPython(), ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
  const bertSpec = finetuneSpec({ model: 'bert-tiny', strategy: 'lora', batch: 2, seq: 16, numClasses: 4, steps: 2, warmup: 1 });
  const resnetSpec = finetuneSpec({ model: 'resnet18', strategy: 'lora', batch: 2, res: 32, numClasses: 4, steps: 1, warmup: 0 });

  it(hasTorch ? 'runPeers: bert-tiny LoRA runs on the CPU with finite samples/s' : 'runPeers: skipped, python3-torch not installed', async () => {
    const seen: number[] = [];
    const [r] = await runPeers(rt(), bertSpec, ['torch'], (_p, done) => seen.push(done));
    expect(r!.peer).toBe('torch');
    if (hasTorch) {
      expect(r!.skipped).toBeUndefined();
      expect(r!.steps).toBe(2);
      expect(Number.isFinite(r!.samplesPerSec) && r!.samplesPerSec > 0).toBe(true);
      expect(r!.samplesPerSec).toBeCloseTo((2 * 1000) / r!.medianStepMs, 6);
      expect(r!.description).toMatch(/^pytorch .* cpu \(\d+ threads\)$/);
      expect(seen).toEqual([1, 2, 3]);
    } else {
      expect(r!.skipped).toMatch(/^python3-torch not installed/);
      expect(Number.isNaN(r!.samplesPerSec)).toBe(true);
      expect(seen).toEqual([]);
    }
  });

  it(hasTorch ? "resnet18 LoRA in torch: counts equal graft's, first loss near ln(C)" : 'resnet18: skipped, python3-torch not installed', async () => {
    const r = await runTorchScript(resnetSpec);
    if (hasTorch) {
      expect(r.skipped).toBeUndefined();
      expect({ trainable: r.trainableParams, total: r.totalParams }).toEqual(graftCounts(resnetSpec));
      expect(Math.abs(r.losses[0]! - Math.log(resnetSpec.numClasses))).toBeLessThan(1);
    } else {
      expect(r.skipped).toMatch(/^python3-torch not installed/);
      expect(Number.isNaN(r.trainableParams)).toBe(true);
    }
  });

  it('a failing script run comes back skipped with the error line, not a throw', async () => {
    const r = await runTorchScript({ ...bertSpec, seq: 600, steps: 1, warmup: 0 }); // past BERT's 512 positions
    expect(r.skipped).toMatch(hasTorch ? /^torch_finetune\.py failed: IndexError: index out of range/ : /^python3-torch not installed/);
  });
});
