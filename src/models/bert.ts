// BertModel and BertForSequenceClassification with Hugging Face's exact state-dict keys (see bert-layers.ts).
import type { Runtime } from '../runtime/runtime.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { Rng, defaultRng } from '../autograd/random.js';
import { Module } from '../nn/module.js';
import { Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { Dropout } from '../nn/simple.js';
import { bertConfig, type BertConfig } from './bert-config.js';
import { BertEmbeddings, BertEncoder, BertPooler, ZeroRng, free, type BertBuildOptions } from './bert-layers.js';

export interface BertModelOptions extends BertBuildOptions {
  /** Build pooler.dense (HF add_pooling_layer; default true). */
  addPoolingLayer?: boolean;
  /** 'hf' (default): HF's _init_weights (normal(0, initializer_range), zero biases, LayerNorm 1/0); 'none': zeros, to be loaded. */
  init?: 'hf' | 'none';
}

export interface BertInputs {
  /** i32 [B, T]. */
  inputIds: Tensor;
  /** f32 [B, T]: 1 = token, 0 = padding (default: all ones). */
  attentionMask?: Tensor | null;
  /** i32 [B, T]: segment A = 0, B = 1 (default: all zeros). */
  tokenTypeIds?: Tensor | null;
}

export interface BertModelOutput {
  /** [B, T, H]. */
  lastHiddenState: Tensor;
  /** tanh(dense(h[:, 0])) [B, H]; null when the model has no pooler. */
  poolerOutput: Tensor | null;
}

const fmt = (t: Tensor): string => `${t.dtype} [${t.shape.join(', ')}]`;

function checkMask(ids: Tensor, mask: Tensor | null | undefined): void {
  if (!mask) return;
  if (mask.dtype !== 'f32' || mask.rank !== 2 || mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
    throw new ShapeError(`BertModel: attentionMask must be f32 [${ids.shape.join(', ')}] like inputIds, got ${fmt(mask)}`);
  }
}

/** The bare encoder: embeddings → encoder.layer.* → (pooler). HF BertModel. */
export class BertModel extends Module {
  embeddings: BertEmbeddings;
  encoder: BertEncoder;
  pooler: BertPooler | null;
  readonly config: BertConfig;

  constructor(rt: Runtime, config: Partial<BertConfig> | BertConfig, opts: BertModelOptions = {}) {
    super();
    this.config = bertConfig(config);
    const o = { rng: opts.rng, exactAttentionDropout: opts.exactAttentionDropout };
    this.embeddings = new BertEmbeddings(rt, this.config, o);
    this.encoder = new BertEncoder(rt, this.config, o);
    this.pooler = opts.addPoolingLayer === false ? null : new BertPooler(rt, this.config);
    if ((opts.init ?? 'hf') === 'hf') initBertWeights(this, this.config.initializerRange, opts.rng);
  }

  forward(inputs: BertInputs): BertModelOutput {
    const { inputIds, attentionMask, tokenTypeIds } = inputs;
    checkMask(inputIds, attentionMask);
    const e = this.embeddings.forward(inputIds, tokenTypeIds ?? null);
    const h = this.encoder.forward(e, attentionMask ?? null);
    e.dispose();
    return { lastHiddenState: h, poolerOutput: this.pooler ? this.pooler.forward(h) : null };
  }
}

export interface SequenceClassificationOptions extends BertModelOptions {
  /** Classifier outputs (default config.numLabels). */
  numLabels?: number;
}

/** BertModel + dropout + classifier over the pooled output. Keys bert.*, classifier.{weight,bias}. */
export class BertForSequenceClassification extends Module {
  bert: BertModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(rt: Runtime, config: Partial<BertConfig> | BertConfig, opts: SequenceClassificationOptions = {}) {
    super();
    if (opts.addPoolingLayer === false) throw new GraftError('BertForSequenceClassification needs the pooler (addPoolingLayer: false given)');
    const cfg = bertConfig({ ...config, ...(opts.numLabels !== undefined ? { numLabels: opts.numLabels } : {}) });
    this.numLabels = cfg.numLabels;
    this.bert = new BertModel(rt, cfg, { ...opts, init: 'none' });
    this.dropout = new Dropout(cfg.classifierDropout ?? cfg.hiddenDropoutProb, { rng: opts.rng });
    this.classifier = new Linear(rt, cfg.hiddenSize, cfg.numLabels, { rng: new ZeroRng() });
    if ((opts.init ?? 'hf') === 'hf') initBertWeights(this, cfg.initializerRange, opts.rng);
  }

  get config(): BertConfig {
    return this.bert.config;
  }

  /** -> logits [B, numLabels]. */
  forward(inputs: BertInputs): Tensor {
    const out = this.bert.forward(inputs);
    out.lastHiddenState.dispose();
    const pooled = out.poolerOutput!;
    const d = this.dropout.forward(pooled);
    if (d !== pooled) pooled.dispose();
    const logits = this.classifier.forward(d);
    d.dispose();
    return logits;
  }

  /** Mean cross-entropy of logits [B, numLabels] against i32 labels [B]. */
  loss(logits: Tensor, labels: Tensor): Tensor {
    return F.crossEntropy(logits, labels);
  }
}

/**
 * HF's BertPreTrainedModel._init_weights on every submodule: Linear / Embedding weights
 * ~ normal(0, std), biases 0, the embedding padding row 0, LayerNorm weight 1 and bias 0.
 */
export function initBertWeights(root: Module, std = 0.02, rng: Rng = defaultRng()): void {
  const normal = (t: Tensor, zeroRow?: number) => {
    const d = new Float32Array(t.size);
    for (let i = 0; i < d.length; i++) d[i] = rng.normal(0, std);
    if (zeroRow !== undefined) d.fill(0, zeroRow * t.shape[1]!, (zeroRow + 1) * t.shape[1]!);
    t.write(d);
  };
  const constant = (t: Tensor | null, v: number) => t?.write(new Float32Array(t.size).fill(v));
  for (const [, m] of root.namedModules()) {
    if (m instanceof Linear) {
      normal(m.weight);
      constant(m.bias, 0);
    } else if (m instanceof Embedding) normal(m.weight, m.paddingIdx);
    else if (m instanceof LayerNorm) {
      constant(m.weight, 1);
      constant(m.bias, 0);
    }
  }
}

/** Release every tensor of a BertModelOutput. */
export function disposeBertOutput(o: BertModelOutput): void {
  free(o.lastHiddenState, o.poolerOutput);
}
