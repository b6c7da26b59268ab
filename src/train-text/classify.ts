// Text-classification fine-tuning of a BertForSequenceClassification: full, LoRA, adapter, prompt-tuning or linear-probe strategies.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { Tensor, scope } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { backward } from '../autograd/engine.js';
import { noGrad } from '../autograd/grad-mode.js';
import { clipGradNorm } from '../optim/index.js';
import { Rng } from '../data/rng.js';
import type { TextExample } from '../data/dataset.js';
import { encodeBatch, type TextBatch } from '../data/text-batch.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import { Module } from '../nn/module.js';
import type { BertForSequenceClassification, BertInputs } from '../models/bert.js';
import { addAdapters, trainAdaptersOnly } from '../peft/adapters.js';
import { createSoftPrompt, freezeForPromptTuning, promptForward, type SoftPrompt } from '../peft/prompt.js';
import { applyLora } from '../peft/inject.js';
import { Rng as ParamRng } from '../autograd/random.js';
import { textOptimizer } from './optim.js';

export type TextStrategy = 'full' | 'lora' | 'adapter' | 'prompt' | 'linear-probe';
export const TEXT_STRATEGIES: readonly TextStrategy[] = ['full', 'lora', 'adapter', 'prompt', 'linear-probe'];

/** Default peak learning rates per strategy (small models; frozen backbones take larger steps). */
export const DEFAULT_LR: Record<TextStrategy, number> = { full: 1e-4, lora: 1e-3, adapter: 1e-3, prompt: 3e-3, 'linear-probe': 3e-3 };

/** LoRA settings of the 'lora' text strategy (PEFT names; see LoraOptions). */
export interface TextLoraOptions {
  /** Rank (default 8). */
  r?: number;
  /** lora_alpha (default 16: scaling 2). */
  alpha?: number;
  /** lora_dropout (default 0.1). */
  dropout?: number;
  /** Default ['query', 'value'] (PEFT's BERT default). */
  targetModules?: readonly string[] | string;
  useRslora?: boolean;
  /** Trained in full and saved with the adapter (default ['classifier', 'pooler']: the head is new). */
  modulesToSave?: readonly string[];
}

/** The LoRA defaults of the text strategy. */
export const TEXT_LORA_DEFAULTS = { r: 8, alpha: 16, dropout: 0.1, targetModules: ['query', 'value'], modulesToSave: ['classifier', 'pooler'] } as const;

export interface FinetuneTextOptions {
  model: BertForSequenceClassification;
  tokenizer: WordPieceTokenizer;
  train: readonly TextExample[];
  test: readonly TextExample[];
  /**
   * full: every parameter. lora: LoRA on the target linears (default query, value) + the modules to save
   * (default pooler, classifier; PEFT's modules_to_save). adapter: Houlsby adapters (+ LayerNorms, pooler, classifier). prompt: soft prompt
   * (+ pooler, classifier). linear-probe: pooler + classifier only. The pooler trains in the frozen strategies
   * because MLM pretraining leaves it at its initial values.
   */
  strategy: TextStrategy;
  epochs?: number;
  /** Default DEFAULT_LR[strategy]. */
  lr?: number;
  /** Learning rate of the pooler + classifier (fresh after MLM pretraining; default: lr). */
  headLr?: number;
  batch?: number;
  /** Tokens per text, [CLS]/[SEP] included (default 128). */
  seq?: number;
  weightDecay?: number;
  /** Warm-up share of the steps (default 0.1). */
  warmupRatio?: number;
  seed?: number;
  /** Adapter bottleneck width (default 32). */
  adapterSize?: number;
  /** Soft-prompt length (default 8). */
  promptLength?: number;
  /** LoRA settings (strategy 'lora'). */
  lora?: TextLoraOptions;
  onStep?: (step: number, total: number, loss: number) => void;
}

export interface TextMetrics {
  accuracy: number;
  macroF1: number;
  /** confusion[true][pred]. */
  confusion: number[][];
}

export interface FinetuneTextResult extends TextMetrics {
  strategy: TextStrategy;
  steps: number;
  losses: number[];
  trainableParams: number;
  totalParams: number;
  seconds: number;
  /** The soft prompt (strategy 'prompt'), owned by the caller. */
  prompt: SoftPrompt | null;
}

/** Accuracy, macro-F1 (mean over classes of 2PR/(P+R), 0 for a class never predicted nor present) and the confusion matrix. */
export function classificationMetrics(truth: ArrayLike<number>, pred: ArrayLike<number>, numClasses: number): TextMetrics {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    confusion[truth[i]!]![pred[i]!]!++;
    if (truth[i] === pred[i]) correct++;
  }
  let f1 = 0;
  for (let c = 0; c < numClasses; c++) {
    const tp = confusion[c]![c]!;
    const predicted = confusion.reduce((s, row) => s + row[c]!, 0);
    const actual = confusion[c]!.reduce((s, x) => s + x, 0);
    f1 += predicted + actual === 0 ? 0 : (2 * tp) / (predicted + actual);
  }
  return { accuracy: truth.length ? correct / truth.length : NaN, macroF1: f1 / numClasses, confusion };
}

function inputsOf(rt: Runtime, b: TextBatch): BertInputs & { labels: Tensor } {
  const [B, T] = b.shape;
  return {
    inputIds: Tensor.from(rt, b.inputIds, [B, T], 'i32'),
    attentionMask: Tensor.from(rt, b.attentionMask, [B, T]),
    tokenTypeIds: Tensor.from(rt, b.tokenTypeIds, [B, T], 'i32'),
    labels: Tensor.from(rt, b.labels, [B], 'i32'),
  };
}

/** Predicted class per example (eval mode, no gradient), `prompt` prepended when given. */
export async function predictText(
  model: BertForSequenceClassification,
  tokenizer: WordPieceTokenizer,
  examples: readonly TextExample[],
  o: { seq?: number; batch?: number; prompt?: SoftPrompt | null } = {},
): Promise<Int32Array> {
  const rt = model.bert.embeddings.word_embeddings.weight.rt;
  const bs = o.batch ?? 32;
  const out = new Int32Array(examples.length);
  const C = model.numLabels;
  model.eval();
  for (let at = 0; at < examples.length; at += bs) {
    const b = encodeBatch(tokenizer, examples.slice(at, at + bs), { maxLength: o.seq ?? 128, padding: 'longest' });
    const logits = noGrad(() =>
      scope(rt, () => {
        const x = inputsOf(rt, b);
        return o.prompt ? promptForward(model, o.prompt, x) : model.forward(x);
      }),
    );
    const v = await logits.read();
    logits.dispose();
    for (let i = 0; i < b.shape[0]; i++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (v[i * C + c]! > v[i * C + best]!) best = c;
      out[at + i] = best;
    }
  }
  return out;
}

/** Set up `strategy` on `model` (adds adapters / makes a prompt, freezes); returns the prompt if any. */
export async function applyStrategy(
  model: BertForSequenceClassification,
  strategy: TextStrategy,
  o: { adapterSize?: number; promptLength?: number; seed?: number; lora?: TextLoraOptions } = {},
): Promise<SoftPrompt | null> {
  for (const [, t] of model.namedParameters()) t.requiresGrad = true;
  switch (strategy) {
    case 'full':
      return null;
    case 'lora': {
      const l = o.lora ?? {};
      applyLora(model, {
        r: l.r ?? TEXT_LORA_DEFAULTS.r,
        alpha: l.alpha ?? TEXT_LORA_DEFAULTS.alpha,
        dropout: l.dropout ?? TEXT_LORA_DEFAULTS.dropout,
        targetModules: l.targetModules ?? TEXT_LORA_DEFAULTS.targetModules,
        useRslora: l.useRslora,
        modulesToSave: l.modulesToSave ?? TEXT_LORA_DEFAULTS.modulesToSave,
        rng: new ParamRng(o.seed ?? 0),
      });
      return null;
    }
    case 'linear-probe':
      freezeForPromptTuning(model);
      return null;
    case 'adapter':
      addAdapters(model.bert, { size: o.adapterSize ?? 32, rng: o.seed ?? 0 });
      trainAdaptersOnly(model, { also: ['classifier', 'bert.pooler'] });
      return null;
    case 'prompt':
      freezeForPromptTuning(model);
      return createSoftPrompt(model, { length: o.promptLength ?? 8, rng: o.seed ?? 0 });
    default:
      throw new GraftError(`unknown strategy '${String(strategy)}' (known: ${TEXT_STRATEGIES.join(', ')})`);
  }
}

/**
 * Fine-tune `model` on `train` with `strategy`, then evaluate on `test`. Seeded shuffling per epoch,
 * AdamW (no decay on biases / LayerNorm), linear warm-up + decay, clipping at 1. The model is left in eval mode.
 */
export async function finetuneText(o: FinetuneTextOptions): Promise<FinetuneTextResult> {
  const { model, tokenizer, strategy } = o;
  if (!TEXT_STRATEGIES.includes(strategy)) throw new GraftError(`unknown strategy '${String(strategy)}' (known: ${TEXT_STRATEGIES.join(', ')})`);
  if (!o.train.length) throw new GraftError('finetuneText: no training examples');
  const C = model.numLabels;
  for (const ex of [...o.train, ...o.test]) {
    if (!Number.isInteger(ex.label) || ex.label < 0 || ex.label >= C) throw new GraftError(`finetuneText: label ${ex.label} is not a class id in [0, ${C})`);
  }
  const rt = model.bert.embeddings.word_embeddings.weight.rt;
  const seed = o.seed ?? 0;
  const batch = o.batch ?? 16;
  const seq = Math.min(o.seq ?? 128, model.config.maxPositionEmbeddings);
  const epochs = o.epochs ?? 3;
  const prompt = await applyStrategy(model, strategy, { adapterSize: o.adapterSize, promptLength: o.promptLength, seed, lora: o.lora });
  const stepsPerEpoch = Math.ceil(o.train.length / batch);
  const total = stepsPerEpoch * epochs;
  const trainRoot = prompt ? [model, prompt] : [model];
  const { opt, sched } = textOptimizer(trainRoot.length === 1 ? model : new ParamBag(trainRoot), {
    lr: o.lr ?? DEFAULT_LR[strategy],
    weightDecay: o.weightDecay,
    warmup: Math.round((o.warmupRatio ?? 0.1) * total),
    total,
    head: o.headLr !== undefined ? { pattern: /(^|\.)(classifier|bert\.pooler)\./, lr: o.headLr } : undefined,
  });
  const all = trainRoot.flatMap((m) => m.parameters());
  const trainableParams = all.filter((t) => t.requiresGrad).reduce((s, t) => s + t.size, 0);
  const totalParams = all.reduce((s, t) => s + t.size, 0);
  const rng = new Rng(seed);
  const losses: number[] = [];
  const t0 = performance.now();
  let step = 0;
  try {
    for (let ep = 0; ep < epochs; ep++) {
      model.train();
      const order = rng.permutation(o.train.length);
      for (let at = 0; at < order.length; at += batch) {
        const ex = Array.from(order.subarray(at, at + batch), (i) => o.train[i]!);
        const b = encodeBatch(tokenizer, ex, { maxLength: seq, padding: 'longest' });
        opt.zeroGrad();
        const loss = scope(rt, () => {
          const x = inputsOf(rt, b);
          const logits = prompt ? promptForward(model, prompt, x) : model.forward(x);
          return F.crossEntropy(logits, x.labels);
        });
        backward(loss);
        clipGradNorm(opt, 1).dispose();
        opt.step();
        sched.step();
        const v = (await loss.read())[0]!;
        loss.dispose();
        losses.push(v);
        step++;
        o.onStep?.(step, total, v);
      }
    }
  } finally {
    opt.dispose();
    model.eval();
  }
  const pred = await predictText(model, tokenizer, o.test, { seq, prompt });
  const m = classificationMetrics(Int32Array.from(o.test, (e) => e.label), pred, C);
  return { ...m, strategy, steps: step, losses, trainableParams, totalParams, seconds: (performance.now() - t0) / 1000, prompt };
}

/** Several modules seen as one for the optimizer set-up (children m0, m1, ...). */
class ParamBag extends Module {
  readonly parts: Module[];
  constructor(parts: Module[]) {
    super();
    this.parts = parts;
  }
}
