// The 'lora' image strategy: LoRA adapters on the chosen convs (default: the last residual stage), a fully trained new head, BN frozen, and optionally the activations entering the first adapted stage cached once per image.
import { GraftError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, scope } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { noGrad } from '../autograd/grad-mode.js';
import { Rng } from '../autograd/random.js';
import { Conv2d } from '../nn/layers.js';
import { AdamW } from '../optim/adamw.js';
import type { ParamGroup } from '../optim/groups.js';
import type { AdamWHyper } from '../optim/adamw.js';
import { linearWarmupDecay } from '../optim/schedulers.js';
import { ArrayDataset, type Dataset, type ImageExample } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { imagePipeline, type ImagePipeline } from '../data/image-transforms.js';
import { toBatch } from '../data/image-batch.js';
import { applyLora, loraLayers, type LoraApplied } from '../peft/index.js';
import { ResNet } from '../models/resnet.js';
import { KerasResNet } from '../models/keras-resnet50.js';
import { MetricAccumulator, type EvalMetrics } from './metrics.js';
import { evaluateImages, headName, headOf, type ImageClassifier, type PreparedTraining, type StrategyOptions, type XBatch } from './strategies.js';

/** LoRA settings of the image strategy (PEFT names in comments). */
export interface ImageLoraOptions {
  /** Rank r (default 8). */
  r?: number;
  /** lora_alpha (default 16). */
  alpha?: number;
  /** lora_dropout (default 0). */
  dropout?: number;
  /** target_modules: a list of names (PEFT suffix match) or a regular expression over whole module names; default defaultLoraTargets(model). */
  targets?: readonly string[] | string;
  /** use_rslora: scaling alpha/√r. */
  rslora?: boolean;
  /** Cache the activation entering the first adapted stage once per image and train from it (default true; needs no stem target). */
  cacheStage?: boolean;
}

/** A classifier that can be run in two halves around a residual stage (ResNet, KerasResNet). */
export type StagedClassifier = ImageClassifier & {
  readonly numStages: number;
  stageOf(name: string): number;
  forwardTo(x: Tensor, stage: number): Tensor;
  forwardFrom(h: Tensor, stage: number): Tensor;
};

export function isStaged(m: ImageClassifier): m is StagedClassifier {
  return m instanceof ResNet || m instanceof KerasResNet;
}

/** The convs of the last residual stage: torchvision `layer4\.\d+\.(conv\d|downsample\.0)`, Keras `res5[a-z]+_branch\w+` (else their names as a list). */
export function defaultLoraTargets(m: ImageClassifier): readonly string[] | string {
  if (m instanceof ResNet) return `layer${m.numStages}\\.\\d+\\.(conv\\d|downsample\\.0)`;
  if (m instanceof KerasResNet) {
    const convs = m.namedModules().filter(([n, c]) => c instanceof Conv2d && m.stageOf(n) === m.numStages).map(([n]) => n);
    const pattern = `res${m.numStages + 1}[a-z]+_branch\\w+`;
    const re = new RegExp(`^(?:${pattern})$`);
    const all = m.namedModules().filter(([n, c]) => c instanceof Conv2d && re.test(n)).map(([n]) => n);
    return all.length === convs.length && all.every((n) => convs.includes(n)) ? pattern : convs;
  }
  throw new GraftError(`lora: ${m.constructor.name} has no default targets; give --lora-targets`);
}

/** Activations entering `stage` [N, C, H, W] for every example (eval mode, no gradients), on the CPU. */
export async function cacheStageInputs(
  rt: Runtime,
  model: StagedClassifier,
  ds: Dataset<ImageExample>,
  preprocess: ImagePipeline,
  stage: number,
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ acts: Float32Array; labels: Int32Array; shape: number[] }> {
  model.eval();
  const tf = imagePipeline(preprocess);
  const labels = new Int32Array(ds.length);
  const loader = new DataLoader(ds, { batchSize, transform: (e, r) => tf(e, r), collate: (ex) => toBatch(ex) });
  let acts = new Float32Array(0);
  let shape: number[] = [];
  let per = 0;
  let at = 0;
  for (const b of loader) {
    const h = noGrad(() => scope(rt, () => model.forwardTo(Tensor.from(rt, b.x, b.shape), stage)));
    if (!per) {
      shape = h.shape.slice(1);
      per = shape.reduce((a, c) => a * c, 1);
      acts = new Float32Array(ds.length * per);
    }
    acts.set(await h.read(), at * per);
    h.dispose();
    labels.set(b.y, at);
    at += b.y.length;
    onProgress?.(at, ds.length);
  }
  return { acts, labels, shape };
}

/** LoRA layers in training mode (dropout), everything else in eval mode (frozen BN statistics). */
function loraTrainMode(model: ImageClassifier, on: boolean): void {
  for (const [, l] of loraLayers(model)) l.train(on);
}

/** Set up the 'lora' strategy (prepareImageTraining calls this after resetting the head). */
export async function prepareLoraTraining(
  rt: Runtime,
  model: ImageClassifier,
  train: Dataset<ImageExample>,
  test: Dataset<ImageExample> | null,
  o: StrategyOptions,
): Promise<PreparedTraining<XBatch> & { applied: LoraApplied; cachedStage: number | null }> {
  const lo = o.lora ?? {};
  const hname = headName(model);
  const applied = applyLora(model, {
    r: lo.r ?? 8,
    alpha: lo.alpha ?? 16,
    dropout: lo.dropout ?? 0,
    targetModules: lo.targets ?? defaultLoraTargets(model),
    useRslora: !!lo.rslora,
    modulesToSave: [hname],
    rng: new Rng(o.seed + 0x10ba),
  });
  const head = headOf(model);
  model.eval();
  const stages = isStaged(model) ? applied.targets.map((t) => model.stageOf(t)) : [];
  const first = stages.length && stages.every((s) => s >= 1) ? Math.min(...stages) : null;
  if (lo.cacheStage === true && first === null) {
    throw new GraftError(`lora: cannot cache stage inputs: a target (${applied.targets.join(', ')}) is in the stem or outside the residual stages`);
  }
  const cacheAt = (lo.cacheStage ?? true) && isStaged(model) ? first : null;
  const loraParams = loraLayers(model).flatMap(([, l]) => [l.lora_A.weight, l.lora_B.weight]);
  const headParams = head.parameters();
  const wd = o.weightDecay ?? 1e-2;
  const groups: ParamGroup<AdamWHyper>[] = [
    { params: loraParams, lr: o.lr, weightDecay: wd, name: 'lora' },
    { params: headParams, lr: o.lr, weightDecay: wd, name: 'head' },
  ];
  const opt = new AdamW(groups);
  const warmFrac = o.warmup ?? 0.1;
  const evalBatch = Math.max(o.batchSize, 32);
  const ce = (logits: Tensor, y: Int32Array) => F.crossEntropy(logits, Tensor.from(rt, y, [y.length], 'i32'));
  const sched = (batches: number) => {
    const total = Math.max(1, o.epochs * batches);
    return linearWarmupDecay(opt, Math.round(warmFrac * total), total);
  };
  const base = { trainable: applied.trainableParams, dispose: () => opt.dispose(), applied };

  if (cacheAt !== null && isStaged(model)) {
    const t0 = performance.now();
    const tr = await cacheStageInputs(rt, model, train, o.preprocess, cacheAt, evalBatch, o.onCacheProgress);
    const te = test ? await cacheStageInputs(rt, model, test, o.preprocess, cacheAt, evalBatch, o.onCacheProgress) : null;
    const cacheSeconds = (performance.now() - t0) / 1000;
    const per = tr.shape.reduce((a, c) => a * c, 1);
    const idx = new ArrayDataset(Array.from({ length: train.length }, (_, i) => i));
    const collate = (ids: number[]): XBatch => {
      const x = new Float32Array(ids.length * per);
      const y = new Int32Array(ids.length);
      ids.forEach((id, j) => {
        x.set(tr.acts.subarray(id * per, (id + 1) * per), j * per);
        y[j] = tr.labels[id]!;
      });
      return { x, y, shape: [ids.length, ...tr.shape] };
    };
    const loader = new DataLoader<number, XBatch>(idx, { batchSize: o.batchSize, shuffle: true, seed: o.seed, collate });
    loraTrainMode(model, true);
    const evaluate = te
      ? async (): Promise<EvalMetrics> => {
          loraTrainMode(model, false);
          const acc = new MetricAccumulator(o.numClasses);
          for (let s = 0; s < te.labels.length; s += evalBatch) {
            const n = Math.min(evalBatch, te.labels.length - s);
            const y = te.labels.subarray(s, s + n);
            const [l, ls] = scope(rt, () =>
              noGrad(() => {
                const logits = model.forwardFrom(Tensor.from(rt, te.acts.subarray(s * per, (s + n) * per), [n, ...te.shape]), cacheAt);
                return [logits, F.crossEntropy(logits, Tensor.from(rt, y, [n], 'i32'), { reduction: 'sum' })] as const;
              }),
            );
            acc.add(await l.read(), y, (await ls.read())[0]!);
            l.dispose();
            ls.dispose();
          }
          loraTrainMode(model, true);
          return acc.result();
        }
      : undefined;
    return {
      ...base,
      cachedStage: cacheAt,
      cacheSeconds,
      trainer: {
        model,
        optimizer: opt,
        scheduler: sched(loader.length),
        loader,
        loss: (b) => ce(model.forwardFrom(Tensor.from(rt, b.x, b.shape), cacheAt), b.y),
        batchSize: (b) => b.y.length,
        evaluate,
      },
    };
  }

  const tf = imagePipeline({ ...o.preprocess, flip: o.augment ? true : o.preprocess.flip });
  const loader = new DataLoader<ImageExample, XBatch>(train, { batchSize: o.batchSize, shuffle: true, seed: o.seed, transform: (e, r) => tf(e, r), collate: (ex) => toBatch(ex) });
  loraTrainMode(model, true);
  const evaluate = test
    ? async (): Promise<EvalMetrics> => {
        const m = await evaluateImages(rt, model, test, o.preprocess, o.numClasses, evalBatch);
        loraTrainMode(model, true);
        return m;
      }
    : undefined;
  return {
    ...base,
    cachedStage: null,
    cacheSeconds: 0,
    trainer: {
      model,
      optimizer: opt,
      scheduler: sched(loader.length),
      loader,
      loss: (b) => ce(model.forward(Tensor.from(rt, b.x, b.shape)), b.y),
      batchSize: (b) => b.y.length,
      evaluate,
    },
  };
}
