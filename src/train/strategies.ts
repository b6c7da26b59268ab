// Transfer-learning strategies for image classifiers: linear probe (optionally on cached features), full fine-tuning with discriminative lrs, gradual unfreezing, LoRA (lora-strategy.ts).
import { GraftError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, scope } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { noGrad } from '../autograd/grad-mode.js';
import type { Rng } from '../autograd/random.js';
import { Module, matcher } from '../nn/module.js';
import { BatchNorm2d, Linear } from '../nn/layers.js';
import { AdamW } from '../optim/adamw.js';
import type { ParamGroup } from '../optim/groups.js';
import type { AdamWHyper } from '../optim/adamw.js';
import { linearWarmupDecay, type LRScheduler } from '../optim/schedulers.js';
import { ArrayDataset, type Dataset, type ImageExample } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { imagePipeline, type ImagePipeline } from '../data/image-transforms.js';
import { toBatch } from '../data/image-batch.js';
import { ResNet } from '../models/resnet.js';
import { KerasResNet } from '../models/keras-resnet50.js';
import { MetricAccumulator, type EvalMetrics } from './metrics.js';
import type { TrainerOptions } from './trainer.js';

import { prepareLoraTraining, type ImageLoraOptions } from './lora-strategy.js';

export const STRATEGIES = ['linear-probe', 'full', 'gradual', 'lora'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** What the strategies need from a classifier: pooled features, logits, a Linear head. */
export type ImageClassifier = Module & {
  features(x: Tensor): Tensor;
  forward(x: Tensor): Tensor;
  readonly numFeatures: number;
};

/** The classifier layer: ResNet.fc, KerasResNet.classifier, or any model with an `fc: Linear`. */
export function headOf(m: ImageClassifier): Linear {
  if (m instanceof KerasResNet) return m.classifier;
  const fc: unknown = Reflect.get(m, 'fc');
  if (fc instanceof Linear) return fc;
  throw new GraftError(`${m.constructor.name}: no classifier head (expected an 'fc' Linear)`);
}

/** Parameter-name prefix of the head ('fc', 'fc1000', ...). */
export function headName(m: ImageClassifier): string {
  return m instanceof KerasResNet ? m.spec.dense.name : 'fc';
}

/**
 * Layer groups for gradual unfreezing, top (next to the head) first; each a RegExp over parameter names.
 * torchvision: layer4, layer3, layer2, layer1, stem (conv1/bn1). Keras: stage 5 (res5…, bn5…), 4, 3, 2, stem
 * (conv1/bn_conv1). Other models: every non-head parameter as one group.
 */
export function layerGroups(m: ImageClassifier): { name: string; test: (n: string) => boolean }[] {
  const head = headName(m);
  if (m instanceof ResNet) {
    return [
      ...['layer4', 'layer3', 'layer2', 'layer1'].map((l) => ({ name: l, test: matcher(l) })),
      { name: 'stem', test: (n: string) => /^(conv1|bn1)\./.test(n) },
    ];
  }
  if (m instanceof KerasResNet) {
    return [
      ...[5, 4, 3, 2].map((s) => ({ name: `stage${s}`, test: (n: string) => new RegExp(`^(res|bn)${s}[a-z]`).test(n) })),
      { name: 'stem', test: (n: string) => /^(conv1|bn_conv1)\./.test(n) },
    ];
  }
  return [{ name: 'backbone', test: (n: string) => !n.startsWith(`${head}.`) }];
}

export interface StrategyOptions {
  strategy: Strategy;
  numClasses: number;
  /** Head learning rate. */
  lr: number;
  /** Backbone lr = lr / backboneLrDiv (full, gradual; default 10). */
  backboneLrDiv?: number;
  weightDecay?: number;
  batchSize: number;
  epochs: number;
  /** Fraction of the steps used for linear warm-up (default 0.1; 0 for linear-probe). */
  warmup?: number;
  seed: number;
  /** Input preprocessing (resize, rgb, normalisation); augmentation (flip) is added for full/gradual when `augment`. */
  preprocess: ImagePipeline;
  augment?: boolean;
  /** Linear probe: compute backbone features once per image and train the head on the cache. */
  cacheFeatures?: boolean;
  /** Keep BatchNorm layers in eval mode (running statistics) while fine-tuning (small batches). */
  freezeBn?: boolean;
  /** Re-initialise the head for numClasses (default true). */
  resetHead?: boolean;
  headRng?: Rng;
  /** Called with (done, total) while caching features (or, for lora, stage inputs). */
  onCacheProgress?: (done: number, total: number) => void;
  /** The 'lora' strategy's settings. */
  lora?: ImageLoraOptions;
}

/** Everything the Trainer needs, plus a plain evaluate for `graft eval`. */
export interface PreparedTraining<B> {
  trainer: Omit<TrainerOptions<B, AdamWHyper>, 'epochs' | 'rt'> & { scheduler: LRScheduler };
  /** Trainable parameter count. */
  trainable: number;
  /** Seconds spent caching features (0 without caching). */
  cacheSeconds: number;
  dispose(): void;
}

/** A host batch: inputs x (images or cached activations) of `shape`, labels y. */
export interface XBatch {
  x: Float32Array;
  y: Int32Array;
  shape: number[];
}

/** Evaluate a classifier on a dataset (eval mode, no gradients); restores the previous mode. */
export async function evaluateImages(rt: Runtime, model: ImageClassifier, ds: Dataset<ImageExample>, preprocess: ImagePipeline, numClasses: number, batchSize: number): Promise<EvalMetrics> {
  const wasTraining = model.training;
  model.eval();
  const tf = imagePipeline(preprocess);
  const acc = new MetricAccumulator(numClasses);
  const loader = new DataLoader(ds, { batchSize, transform: (e, r) => tf(e, r), collate: (ex) => toBatch(ex) });
  try {
    for (const b of loader) {
      const out = scope(rt, () =>
        noGrad(() => {
          const l = model.forward(Tensor.from(rt, b.x, b.shape));
          return [l, F.crossEntropy(l, Tensor.from(rt, b.y, [b.y.length], 'i32'), { reduction: 'sum' })] as const;
        }),
      );
      const logits = await out[0].read();
      const loss = (await out[1].read())[0]!;
      out[0].dispose();
      out[1].dispose();
      acc.add(logits, b.y, loss);
    }
  } finally {
    if (wasTraining) model.train();
  }
  return acc.result();
}

/** Backbone features [N, numFeatures] of every example (eval mode, no augmentation), on the CPU. */
export async function cacheFeatures(
  rt: Runtime,
  model: ImageClassifier,
  ds: Dataset<ImageExample>,
  preprocess: ImagePipeline,
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ features: Float32Array; labels: Int32Array }> {
  model.eval();
  const tf = imagePipeline(preprocess);
  const nf = model.numFeatures;
  const features = new Float32Array(ds.length * nf);
  const labels = new Int32Array(ds.length);
  const loader = new DataLoader(ds, { batchSize, transform: (e, r) => tf(e, r), collate: (ex) => toBatch(ex) });
  let at = 0;
  for (const b of loader) {
    const f = noGrad(() => scope(rt, () => model.features(Tensor.from(rt, b.x, b.shape))));
    features.set(await f.read(), at * nf);
    f.dispose();
    labels.set(b.y, at);
    at += b.y.length;
    onProgress?.(at, ds.length);
  }
  return { features, labels };
}

function setTrainMode(model: ImageClassifier, freezeBn: boolean): void {
  model.train();
  if (freezeBn) for (const [, m] of model.namedModules()) if (m instanceof BatchNorm2d) m.training = false;
}

/**
 * Set up a strategy: freezes/unfreezes parameters, resets the head, builds AdamW (+ linear warm-up/decay), the
 * loader and the loss. Training data is `train`, evaluation data `test`.
 */
export async function prepareImageTraining(
  rt: Runtime,
  model: ImageClassifier,
  train: Dataset<ImageExample>,
  test: Dataset<ImageExample> | null,
  o: StrategyOptions,
): Promise<PreparedTraining<XBatch>> {
  if (!(STRATEGIES as readonly string[]).includes(o.strategy)) throw new GraftError(`unknown strategy '${o.strategy}' (known: ${STRATEGIES.join(', ')})`);
  if (o.resetHead ?? true) {
    if (model instanceof ResNet || model instanceof KerasResNet) model.resetClassifier(o.numClasses, { rng: o.headRng });
  }
  const head = headOf(model);
  if (head.outFeatures !== o.numClasses) throw new GraftError(`the head has ${head.outFeatures} classes, the data ${o.numClasses}`);
  if (o.strategy === 'lora') return prepareLoraTraining(rt, model, train, test, o);
  const hname = headName(model);
  const isHead = (n: string) => n.startsWith(`${hname}.`);
  const named = model.namedParameters();
  const div = o.backboneLrDiv ?? 10;
  const wd = o.weightDecay ?? 1e-2;
  const warmFrac = o.warmup ?? (o.strategy === 'linear-probe' ? 0 : 0.1);
  const headParams = named.filter(([n]) => isHead(n)).map(([, t]) => t);
  const backbone = named.filter(([n]) => !isHead(n));
  for (const [, t] of named) t.requiresGrad = true;
  let cacheSeconds = 0;

  const stepsFor = (batches: number) => Math.max(1, o.epochs * batches);
  const makeSched = (opt: AdamW, batches: number) => linearWarmupDecay(opt, Math.round(warmFrac * stepsFor(batches)), stepsFor(batches));
  const evalBatch = Math.max(o.batchSize, 32);

  if (o.strategy === 'linear-probe') {
    for (const [, t] of backbone) t.requiresGrad = false;
    model.eval();
    const opt = new AdamW([{ params: headParams, lr: o.lr, weightDecay: wd, name: 'head' }]);
    if (o.cacheFeatures) {
      const t0 = performance.now();
      const tr = await cacheFeatures(rt, model, train, o.preprocess, evalBatch, o.onCacheProgress);
      const te = test ? await cacheFeatures(rt, model, test, o.preprocess, evalBatch, o.onCacheProgress) : null;
      cacheSeconds = (performance.now() - t0) / 1000;
      const nf = model.numFeatures;
      const idx = new ArrayDataset(Array.from({ length: train.length }, (_, i) => i));
      const collate = (ids: number[]): XBatch => {
        const x = new Float32Array(ids.length * nf);
        const y = new Int32Array(ids.length);
        ids.forEach((id, j) => {
          x.set(tr.features.subarray(id * nf, (id + 1) * nf), j * nf);
          y[j] = tr.labels[id]!;
        });
        return { x, y, shape: [ids.length, nf] };
      };
      const loader = new DataLoader<number, XBatch>(idx, { batchSize: o.batchSize, shuffle: true, seed: o.seed, collate });
      const evaluate = te
        ? async (): Promise<EvalMetrics> => {
            const acc = new MetricAccumulator(o.numClasses);
            for (let s = 0; s < te.labels.length; s += evalBatch) {
              const n = Math.min(evalBatch, te.labels.length - s);
              const y = te.labels.subarray(s, s + n);
              const [l, ls] = noGrad(() => {
                const logits = head.forward(Tensor.from(rt, te.features.subarray(s * nf, (s + n) * nf), [n, nf]));
                return [logits, F.crossEntropy(logits, Tensor.from(rt, y, [n], 'i32'), { reduction: 'sum' })] as const;
              });
              acc.add(await l.read(), y, (await ls.read())[0]!);
              l.dispose();
              ls.dispose();
            }
            return acc.result();
          }
        : undefined;
      return {
        trainer: {
          model,
          optimizer: opt,
          scheduler: makeSched(opt, loader.length),
          loader,
          loss: (b) => F.crossEntropy(head.forward(Tensor.from(rt, b.x, b.shape)), Tensor.from(rt, b.y, [b.y.length], 'i32')),
          batchSize: (b) => b.y.length,
          evaluate,
        },
        trainable: headParams.reduce((s, t) => s + t.size, 0),
        cacheSeconds,
        dispose: () => opt.dispose(),
      };
    }
  }

  const tf = imagePipeline({ ...o.preprocess, flip: o.augment && o.strategy !== 'linear-probe' ? true : o.preprocess.flip });
  const loader = new DataLoader<ImageExample, XBatch>(train, { batchSize: o.batchSize, shuffle: true, seed: o.seed, transform: (e, r) => tf(e, r), collate: (ex) => toBatch(ex) });
  let opt: AdamW;
  let onEpochStart: ((epoch: number) => void) | undefined;
  let loss: (b: XBatch) => Tensor;
  const ce = (logits: Tensor, b: XBatch) => F.crossEntropy(logits, Tensor.from(rt, b.y, [b.y.length], 'i32'));
  if (o.strategy === 'linear-probe') {
    opt = new AdamW([{ params: headParams, lr: o.lr, weightDecay: wd, name: 'head' }]);
    loss = (b) => {
      const f = noGrad(() => model.features(Tensor.from(rt, b.x, b.shape)));
      return ce(head.forward(f), b);
    };
  } else {
    const groups: ParamGroup<AdamWHyper>[] = [
      { params: backbone.map(([, t]) => t), lr: o.lr / div, weightDecay: wd, name: 'backbone' },
      { params: headParams, lr: o.lr, weightDecay: wd, name: 'head' },
    ];
    if (o.strategy === 'gradual') {
      const lg = layerGroups(model);
      for (const [, t] of backbone) t.requiresGrad = false;
      opt = new AdamW(groups, { includeFrozen: true });
      onEpochStart = (epoch) => {
        // Epoch 0: head only; epoch e: the e top groups too (the rest of the backbone stays frozen).
        for (const [n, t] of backbone) {
          const g = lg.findIndex((x) => x.test(n));
          const gi = g < 0 ? lg.length - 1 : g;
          t.requiresGrad = gi < epoch;
        }
      };
    } else opt = new AdamW(groups);
    setTrainMode(model, !!o.freezeBn);
    loss = (b) => ce(model.forward(Tensor.from(rt, b.x, b.shape)), b);
  }
  const evaluate = test
    ? async () => {
        const m = await evaluateImages(rt, model, test, o.preprocess, o.numClasses, evalBatch);
        if (o.strategy === 'linear-probe') model.eval();
        else setTrainMode(model, !!o.freezeBn);
        return m;
      }
    : undefined;
  const trainable = (o.strategy === 'linear-probe' ? headParams : named.map(([, t]) => t)).reduce((s, t) => s + t.size, 0);
  return {
    trainer: { model, optimizer: opt, scheduler: makeSched(opt, loader.length), loader, loss, batchSize: (b) => b.y.length, evaluate, onEpochStart },
    trainable,
    cacheSeconds,
    dispose: () => opt.dispose(),
  };
}
