// The finetune benchmark's model, strategy, synthetic batch and training step (forward, cross-entropy, backward, AdamW) for one FinetuneBenchSpec.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { Tensor, keep, scope } from '../tensor.js';
import { backward } from '../autograd/engine.js';
import * as F from '../autograd/functional.js';
import { noGrad } from '../autograd/grad-mode.js';
import { Rng, manualSeed } from '../autograd/random.js';
import type { Module } from '../nn/module.js';
import { AdamW } from '../optim/adamw.js';
import type { BatchInput } from '../optim/captured-step.js';
import { ResNet } from '../models/resnet.js';
import { BertForSequenceClassification } from '../models/bert.js';
import { bertConfig } from '../models/bert-config.js';
import { applyLora, loraLayers } from '../peft/inject.js';
import { FINETUNE_MODELS, FINETUNE_STRATEGIES, isBert, type FinetuneBenchSpec } from './finetune-spec.js';
import { BERT_SIZES } from './finetune-flops.js';

/** AdamW hyper-parameters of every benchmark step (no clipping, no schedule). */
export const FINETUNE_ADAMW = { lr: 1e-4, weightDecay: 0.01 } as const;

/** ResNet LoRA targets: every conv of layer4 (conv1..3 and downsample.0), as a whole-name regular expression. */
export const RESNET_LORA_TARGETS = String.raw`layer4\.\d+\.(conv\d|downsample\.0)`;
/** BERT LoRA targets (PEFT suffix match): query and value of every layer. */
export const BERT_LORA_TARGETS = ['query', 'value'] as const;

/** A built model with its optimizer, batch and step. */
export interface FinetuneSetup {
  readonly model: Module;
  /** e.g. 'ResNet-50 (torchvision layout, random init) on 3×64×64'. */
  readonly label: string;
  /** What is trained and how, e.g. 'LoRA r 8 α 16 on 16 convs of layer4 + fc'. */
  readonly strategyLabel: string;
  readonly totalParams: number;
  readonly trainableParams: number;
  /** Modules wrapped by LoRA (0 otherwise). */
  readonly loraTargets: number;
  /** The synthetic batch on the host: [input (f32 images or i32 ids), i32 labels]. */
  readonly batch: readonly BatchInput[];
  /**
   * The step on batch tensors [input, labels] (same shapes as `batch`), recorded only, no scope,
   * no submit: zero grads, loss, backward, AdamW step. Returns the loss [1]. For captureTrainingStep.
   */
  stepOn(inputs: readonly Tensor[]): Tensor;
  /** Record one step on the setup's own batch tensors and submit it (exactly one queue.submit). Returns the loss [1]; the caller disposes it. */
  step(): Tensor;
  /** Record one step without submitting (for timeGpu). */
  record(): Tensor;
  dispose(): void;
}

export function validateSpec(spec: FinetuneBenchSpec): void {
  if (!FINETUNE_MODELS.includes(spec.model)) throw new GraftError(`unknown model '${String(spec.model)}' (known: ${FINETUNE_MODELS.join(', ')})`);
  if (!FINETUNE_STRATEGIES.includes(spec.strategy)) throw new GraftError(`unknown strategy '${String(spec.strategy)}' (known: ${FINETUNE_STRATEGIES.join(', ')})`);
  const pos = (k: 'batch' | 'res' | 'seq' | 'steps' | 'numClasses' | 'loraRank') => {
    const v = spec[k];
    if (!Number.isInteger(v) || v < 1) throw new GraftError(`${k} must be a positive integer, got ${v}`);
  };
  for (const k of ['batch', 'steps', 'numClasses', 'loraRank'] as const) pos(k);
  if (!Number.isInteger(spec.warmup) || spec.warmup < 0) throw new GraftError(`warmup must be a non-negative integer, got ${spec.warmup}`);
  if (!Number.isFinite(spec.loraAlpha)) throw new GraftError(`loraAlpha must be a finite number, got ${spec.loraAlpha}`);
  if (isBert(spec.model)) {
    pos('seq');
    if (spec.seq > 512) throw new GraftError(`seq ${spec.seq} is over BERT's 512 positions`);
  } else {
    pos('res');
    if (spec.res < 32) throw new GraftError(`res ${spec.res} is too small for ResNet (needs ≥ 32: five stride-2 stages)`);
  }
}

const numelSum = (ts: readonly Tensor[]): number => ts.reduce((s, t) => s + t.size, 0);

/** Build the model, apply the strategy, make the seeded batch and the optimizer. */
export function makeFinetuneSetup(rt: Runtime, spec: FinetuneBenchSpec): FinetuneSetup {
  validateSpec(spec);
  return isBert(spec.model) ? bertSetup(rt, spec) : resnetSetup(rt, spec);
}

function randomFloats(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function randomLabels(rng: Rng, n: number, classes: number): number[] {
  return Array.from({ length: n }, () => Math.floor(rng.next() * classes));
}

/**
 * One submit per step: zero grads, loss = CE(logits(input), labels), backward, AdamW step, all in a
 * scope whose temporaries are freed; the loss survives.
 */
function stepper(
  rt: Runtime,
  opt: AdamW,
  lossFn: (input: Tensor, labels: Tensor) => Tensor,
  own: readonly [Tensor, Tensor],
): Pick<FinetuneSetup, 'step' | 'record' | 'stepOn'> {
  const stepOn = ([input, labels]: readonly Tensor[]): Tensor => {
    if (!input || !labels) throw new GraftError('finetune step: expected batch tensors [input, labels]');
    opt.zeroGrad();
    const l = lossFn(input, labels);
    backward(l);
    opt.step();
    return l;
  };
  const record = (): Tensor => scope(rt, () => stepOn(own));
  return {
    stepOn,
    record,
    step() {
      const l = record();
      rt.submit();
      return l;
    },
  };
}

function resnetSetup(rt: Runtime, spec: FinetuneBenchSpec): FinetuneSetup {
  const rng = new Rng(spec.seed);
  const depth = spec.model === 'resnet50' ? 50 : 18;
  const model = new ResNet(rt, depth, { numClasses: spec.numClasses, rng });
  const shape = [spec.batch, 3, spec.res, spec.res];
  const batch: BatchInput[] = [
    { data: randomFloats(rng, shape.reduce((a, b) => a * b, 1)), shape },
    { data: Int32Array.from(randomLabels(rng, spec.batch, spec.numClasses)), shape: [spec.batch], dtype: 'i32' },
  ];
  const x = keep(Tensor.from(rt, batch[0]!.data, shape));
  const y = keep(Tensor.from(rt, batch[1]!.data, [spec.batch], 'i32'));
  let strategyLabel: string;
  let loraTargets = 0;
  let lossFn: (x: Tensor, y: Tensor) => Tensor;
  if (spec.strategy === 'linear-probe') {
    for (const t of model.parameters()) t.requiresGrad = false;
    for (const t of model.fc.parameters()) t.requiresGrad = true;
    model.eval();
    // Eval-mode BN folds are computed on first use and cached: fill the cache here, outside the timed steps and
    // outside any step capture (a recording would include the folding and every replay would repeat it).
    scope(rt, () => noGrad(() => model.features(x)).dispose());
    strategyLabel = 'linear probe: backbone frozen (eval-mode BN, forward under noGrad), fc trained';
    lossFn = (xs, ys) => {
      const f = noGrad(() => model.features(xs));
      return F.crossEntropy(model.fc.forward(f), ys);
    };
  } else {
    if (spec.strategy === 'lora') {
      const a = applyLora(model, { r: spec.loraRank, alpha: spec.loraAlpha, targetModules: RESNET_LORA_TARGETS, modulesToSave: ['fc'], rng });
      loraTargets = a.targets.length;
      strategyLabel = `LoRA r ${spec.loraRank} α ${spec.loraAlpha} on the ${loraTargets} convs of layer4, fc trained; BN in train mode (batch statistics)`;
    } else {
      for (const t of model.parameters()) t.requiresGrad = true;
      strategyLabel = 'full fine-tuning: every parameter trained, BN in train mode (batch statistics)';
    }
    model.train();
    lossFn = (xs, ys) => F.crossEntropy(model.forward(xs), ys);
  }
  const trainable = model.parameters().filter((t) => t.requiresGrad);
  const opt = new AdamW(trainable, { ...FINETUNE_ADAMW });
  const name = depth === 50 ? 'ResNet-50' : 'ResNet-18';
  return {
    model,
    label: `${name} (torchvision layout, random init, ${spec.numClasses}-class fc) on [${shape.join(', ')}]`,
    strategyLabel,
    totalParams: numelSum(model.parameters()),
    trainableParams: numelSum(trainable),
    loraTargets,
    batch,
    ...stepper(rt, opt, lossFn, [x, y]),
    dispose() {
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

function bertSetup(rt: Runtime, spec: FinetuneBenchSpec): FinetuneSetup {
  const rng = new Rng(spec.seed);
  const size = BERT_SIZES[spec.model as keyof typeof BERT_SIZES];
  const cfg = bertConfig({ ...size, numLabels: spec.numClasses });
  // weights and dropout seeds from the default generator, reset here: a captured step's replays draw
  // their dropout seeds from it too (autograd/ops/misc.ts), so captured and uncaptured runs match
  manualSeed(spec.seed);
  const model = new BertForSequenceClassification(rt, cfg);
  const n = spec.batch * spec.seq;
  // token ids in [1000, vocab): past BERT's special / unused tokens
  const ids = Int32Array.from({ length: n }, () => 1000 + Math.floor(rng.next() * (cfg.vocabSize - 1000)));
  const batch: BatchInput[] = [
    { data: ids, shape: [spec.batch, spec.seq], dtype: 'i32' },
    { data: Int32Array.from(randomLabels(rng, spec.batch, spec.numClasses)), shape: [spec.batch], dtype: 'i32' },
  ];
  const inputIds = keep(Tensor.from(rt, ids, [spec.batch, spec.seq], 'i32'));
  const y = keep(Tensor.from(rt, batch[1]!.data, [spec.batch], 'i32'));
  let strategyLabel: string;
  let loraTargets = 0;
  let lossFn: (ids: Tensor, y: Tensor) => Tensor;
  if (spec.strategy === 'linear-probe') {
    for (const t of model.parameters()) t.requiresGrad = false;
    for (const t of model.classifier.parameters()) t.requiresGrad = true;
    model.eval();
    strategyLabel = 'linear probe: encoder + pooler frozen (eval mode, forward under noGrad), classifier trained';
    lossFn = (idt, ys) => {
      const pooled = noGrad(() => {
        const o = model.bert.forward({ inputIds: idt });
        o.lastHiddenState.dispose();
        return o.poolerOutput!;
      });
      return F.crossEntropy(model.classifier.forward(pooled), ys);
    };
  } else {
    if (spec.strategy === 'lora') {
      const a = applyLora(model, { r: spec.loraRank, alpha: spec.loraAlpha, targetModules: [...BERT_LORA_TARGETS], modulesToSave: ['classifier'], rng });
      loraTargets = a.targets.length;
      strategyLabel = `LoRA r ${spec.loraRank} α ${spec.loraAlpha} on query/value of every layer (${loraTargets} Linears), classifier trained; train mode (dropout 0.1)`;
    } else {
      for (const t of model.parameters()) t.requiresGrad = true;
      strategyLabel = 'full fine-tuning: every parameter trained (embeddings included); train mode (dropout 0.1)';
    }
    model.train();
    lossFn = (idt, ys) => F.crossEntropy(model.forward({ inputIds: idt }), ys);
  }
  const trainable = model.parameters().filter((t) => t.requiresGrad);
  const opt = new AdamW(trainable, { ...FINETUNE_ADAMW });
  return {
    model,
    label: `${spec.model} (L${size.numHiddenLayers} H${size.hiddenSize} A${size.numAttentionHeads} I${size.intermediateSize}, random init, ${spec.numClasses} labels) on ids [${spec.batch}, ${spec.seq}]`,
    strategyLabel,
    totalParams: numelSum(model.parameters()),
    trainableParams: numelSum(trainable),
    loraTargets,
    batch,
    ...stepper(rt, opt, lossFn, [inputIds, y]),
    dispose() {
      opt.dispose();
      model.dispose();
      inputIds.dispose();
      y.dispose();
    },
  };
}

/** LoRA layers of a setup's model (for tests: adapters present and trained). */
export function loraLayerCount(s: FinetuneSetup): number {
  return loraLayers(s.model).length;
}
