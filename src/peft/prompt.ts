// Prompt tuning (Lester et al.): n learned soft-prompt vectors prepended to BERT's embedded input; the backbone stays frozen.
//
// Where the prompts go: AFTER BertEmbeddings (word + position + token type → LayerNorm → dropout) of the real
// tokens, so the real tokens keep positions 0..T-1 as in pretraining and the prompts carry no position or
// type embedding of their own. The attention mask gets n ones in front: [B, n + T].
// What the classifier reads: the [CLS] token, which sits at position n after the prompts; it goes through
// the model's pooler (tanh(dense)), dropout and classifier as in BertForSequenceClassification.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { Rng, toRng } from '../autograd/random.js';
import { Module } from '../nn/module.js';
import type { BertForSequenceClassification, BertInputs } from '../models/bert.js';
import { free } from '../models/bert-layers.js';

export interface SoftPromptOptions {
  /** Number of prompt vectors (default 8). */
  length?: number;
  /**
   * 'vocab' (default): copies of the word embeddings of random vocabulary ids ≥ 1000 (past the special /
   * unused / single-character rows of BERT vocabularies when the vocabulary is that large); 'normal': N(0, 0.02).
   */
  init?: 'vocab' | 'normal';
  rng?: Rng | number;
}

/** The learned prompt: weight [n, H]. Key `weight`. */
export class SoftPrompt extends Module {
  weight: Tensor;

  constructor(rt: Runtime, readonly length: number, readonly hidden: number, init?: Float32Array) {
    super();
    if (!Number.isInteger(length) || length < 1) throw new GraftError(`SoftPrompt: length must be a positive integer, got ${length}`);
    this.weight = this.registerParameter('weight', init ? Tensor.from(rt, init, [length, hidden]) : Tensor.zeros(rt, [length, hidden]));
  }
}

/** A SoftPrompt sized for `model`, initialised per `opts.init`. */
export async function createSoftPrompt(model: BertForSequenceClassification, opts: SoftPromptOptions = {}): Promise<SoftPrompt> {
  const n = opts.length ?? 8;
  const cfg = model.config;
  const H = cfg.hiddenSize;
  const rng = toRng(opts.rng ?? 0);
  const data = new Float32Array(n * H);
  const table = model.bert.embeddings.word_embeddings.weight;
  if ((opts.init ?? 'vocab') === 'vocab') {
    const all = await table.read();
    const lo = cfg.vocabSize > 2000 ? 1000 : 0;
    for (let i = 0; i < n; i++) {
      const id = lo + Math.floor(rng.uniform(0, 1) * (cfg.vocabSize - lo));
      data.set(all.subarray(id * H, (id + 1) * H), i * H);
    }
  } else for (let i = 0; i < data.length; i++) data[i] = rng.normal(0, 0.02);
  return new SoftPrompt(table.rt, n, H, data);
}

/**
 * Logits [B, numLabels] of `model` with `prompt` prepended (see the file header). The model must have a pooler.
 * Freeze the model (e.g. `freezeForPromptTuning`) so only the prompt (and the head) train.
 */
export function promptForward(model: BertForSequenceClassification, prompt: SoftPrompt, inputs: BertInputs): Tensor {
  const { inputIds, attentionMask, tokenTypeIds } = inputs;
  const bert = model.bert;
  if (!bert.pooler) throw new GraftError('promptForward: the model has no pooler');
  if (prompt.hidden !== bert.config.hiddenSize) throw new ShapeError(`promptForward: prompt [${prompt.length}, ${prompt.hidden}] does not fit hidden size ${bert.config.hiddenSize}`);
  const [B, T] = inputIds.shape as [number, number];
  const n = prompt.length;
  const H = prompt.hidden;
  const rt = inputIds.rt;
  const e = bert.embeddings.forward(inputIds, tokenTypeIds ?? null); // [B, T, H]
  const zeros = Tensor.zeros(rt, [B, n, H]);
  const p = F.add(zeros, prompt.weight); // [B, n, H], broadcast (gradient sums over B)
  const x = F.concat([p, e], 1); // [B, n + T, H]
  const ones = Tensor.from(rt, new Float32Array(B * n).fill(1), [B, n]);
  const m = attentionMask ?? Tensor.from(rt, new Float32Array(B * T).fill(1), [B, T]);
  const mask = F.concat([ones, m], 1); // [B, n + T]
  const h = bert.encoder.forward(x, mask);
  const cls = F.slice(h, [0, n, 0], [B, n + 1, H]); // [B, 1, H]: [CLS] after the prompts
  const pooled = bert.pooler.forward(cls); // [B, H]
  const d = model.dropout.forward(pooled);
  const logits = model.classifier.forward(d);
  free(e, zeros, p, x, ones, m === attentionMask ? null : m, mask, h, cls, pooled, d === pooled ? null : d);
  return logits;
}

/**
 * Freeze every parameter of `model` except those matching `also` (default: the classifier and the pooler,
 * which an MLM-only checkpoint leaves untrained). Returns the trainable names.
 */
export function freezeForPromptTuning(model: BertForSequenceClassification, also: readonly string[] = ['classifier', 'bert.pooler']): string[] {
  for (const [, t] of model.namedParameters()) t.requiresGrad = false;
  for (const p of also) model.unfreeze(p);
  return model.namedParameters().filter(([, t]) => t.requiresGrad).map(([n]) => n);
}
