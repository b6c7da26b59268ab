// BertForMaskedLM with Hugging Face names (cls.predictions.*), the decoder tied to the word embeddings; MLM loss, load/save.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.js';
import { CheckpointError, ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import type { Rng } from '../autograd/random.js';
import { Module } from '../nn/module.js';
import { LayerNorm, Linear } from '../nn/layers.js';
import { CheckpointReader } from '../io/sharded.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import { bertConfig, bertConfigJson, readBertConfig, type BertConfig } from './bert-config.js';
import { BertModel, initBertWeights, type BertInputs } from './bert.js';
import { ZeroRng, free, linearAct } from './bert-layers.js';
import { bertWeightsPath, loadBertTokenizer } from './bert-load.js';

/** dense → act → LayerNorm. Keys cls.predictions.transform.{dense,LayerNorm}. */
export class BertPredictionHeadTransform extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;

  constructor(rt: Runtime, readonly config: BertConfig) {
    super();
    this.dense = new Linear(rt, config.hiddenSize, config.hiddenSize, { rng: new ZeroRng() });
    this.LayerNorm = new LayerNorm(rt, config.hiddenSize, config.layerNormEps);
  }

  /** h [..., H] -> [..., H]. */
  forward(h: Tensor): Tensor {
    const a = linearAct(h, this.dense, this.config.hiddenAct);
    const y = this.LayerNorm.forward(a);
    a.dispose();
    return y;
  }
}

/**
 * transform → decoder (the word-embedding table [V, H], tied: the same tensor, not a copy) + bias [V].
 * Keys cls.predictions.transform.*, cls.predictions.bias. The decoder weight is not registered here,
 * so it is one parameter (bert.embeddings.word_embeddings.weight) whose gradient sums both uses.
 */
export class BertLMPredictionHead extends Module {
  transform: BertPredictionHeadTransform;
  bias: Tensor;

  constructor(rt: Runtime, config: BertConfig, private readonly tied: () => Tensor) {
    super();
    this.transform = new BertPredictionHeadTransform(rt, config);
    this.bias = this.registerParameter('bias', Tensor.zeros(rt, [config.vocabSize]));
  }

  /** The decoder weight [V, H] (bert.embeddings.word_embeddings.weight). */
  get decoderWeight(): Tensor {
    return this.tied();
  }

  /** h [..., H] -> logits [..., V]. */
  forward(h: Tensor): Tensor {
    const t = this.transform.forward(h);
    const y = F.linear(t, this.decoderWeight, this.bias);
    t.dispose();
    return y;
  }
}

/** cls.predictions (HF BertOnlyMLMHead). */
export class BertOnlyMLMHead extends Module {
  predictions: BertLMPredictionHead;

  constructor(rt: Runtime, config: BertConfig, tied: () => Tensor) {
    super();
    this.predictions = new BertLMPredictionHead(rt, config, tied);
  }
}

export interface MaskedLMOptions {
  rng?: Rng;
  exactAttentionDropout?: boolean;
  /** 'hf' (default): HF's initial values; 'none': zeros, to be loaded. */
  init?: 'hf' | 'none';
}

/** BertModel without pooler + cls.predictions. Keys bert.*, cls.predictions.* (HF BertForMaskedLM). */
export class BertForMaskedLM extends Module {
  bert: BertModel;
  cls: BertOnlyMLMHead;

  constructor(rt: Runtime, config: Partial<BertConfig> | BertConfig, opts: MaskedLMOptions = {}) {
    super();
    const cfg = bertConfig(config);
    this.bert = new BertModel(rt, cfg, { addPoolingLayer: false, init: 'none', rng: opts.rng, exactAttentionDropout: opts.exactAttentionDropout });
    this.cls = new BertOnlyMLMHead(rt, cfg, () => this.bert.embeddings.word_embeddings.weight);
    if ((opts.init ?? 'hf') === 'hf') initBertWeights(this, cfg.initializerRange, opts.rng);
  }

  get config(): BertConfig {
    return this.bert.config;
  }

  /** Logits over the vocabulary at every position: [B, T, V] (large: use `loss` for training). */
  forward(inputs: BertInputs): Tensor {
    const out = this.bert.forward(inputs);
    const y = this.cls.predictions.forward(out.lastHiddenState);
    out.lastHiddenState.dispose();
    return y;
  }

  /**
   * Mean cross-entropy over the masked positions only (labels ≠ -100, host i32 [B·T] row-major). The
   * hidden states of those positions are gathered first, so the vocabulary projection runs on the
   * masked rows alone (same loss as HF's full-logits CrossEntropyLoss(ignore_index=-100)).
   * Returns null when no position is masked.
   */
  loss(inputs: BertInputs, labels: ArrayLike<number>): Tensor | null {
    const [B, T] = inputs.inputIds.shape as [number, number];
    if (labels.length !== B * T) throw new ShapeError(`BertForMaskedLM.loss: labels have ${labels.length} entries, inputIds [${B}, ${T}] need ${B * T}`);
    const pos: number[] = [];
    const tgt: number[] = [];
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] === -100) continue;
      pos.push(i);
      tgt.push(labels[i]!);
    }
    if (!pos.length) return null;
    const rt = inputs.inputIds.rt;
    const out = this.bert.forward(inputs);
    const H = this.config.hiddenSize;
    const flat = F.reshape(out.lastHiddenState, [B * T, H]);
    const idx = Tensor.from(rt, pos, [pos.length], 'i32');
    const picked = F.embedding(idx, flat); // [M, H]: rows of the masked positions
    const logits = this.cls.predictions.forward(picked); // [M, V]
    const targets = Tensor.from(rt, tgt, [tgt.length], 'i32');
    const loss = F.crossEntropy(logits, targets);
    free(out.lastHiddenState, flat, idx, picked, logits, targets);
    return loss;
  }
}

/** Every tensor of the HF checkpoint: bert.* (no pooler), cls.predictions.{transform.*, bias, decoder.weight (tied), decoder.bias}. */
async function checkpointTensors(model: BertForMaskedLM): Promise<[string, TensorToWrite][]> {
  const out: [string, TensorToWrite][] = [];
  for (const [k, t] of model.stateDict()) out.push([k, { shape: t.shape, data: await t.read() }]);
  const w = model.cls.predictions.decoderWeight;
  out.push(['cls.predictions.decoder.weight', { shape: w.shape, data: await w.read() }]);
  const b = model.cls.predictions.bias;
  out.push(['cls.predictions.decoder.bias', { shape: b.shape, data: await b.read() }]);
  return out;
}

/**
 * Write a Hugging Face folder: config.json (BertForMaskedLM), model.safetensors, and, with a tokenizer,
 * vocab.txt (copied from `vocabPath` when given, else written from the tokenizer) + tokenizer_config.json.
 * loadBert / loadBertForSequenceClassification read it (cls.* is ignored there).
 */
export async function saveBertForMaskedLM(model: BertForMaskedLM, dir: string, opts: { tokenizer?: WordPieceTokenizer; vocabPath?: string; lowercase?: boolean } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), await checkpointTensors(model), { format: 'pt' });
  const json = { ...bertConfigJson(model.config, ['BertForMaskedLM']), tie_word_embeddings: true };
  await writeFile(join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
  if (opts.vocabPath) await copyFile(opts.vocabPath, join(dir, 'vocab.txt'));
  else if (opts.tokenizer) await writeFile(join(dir, 'vocab.txt'), opts.tokenizer.idToToken.join('\n') + '\n');
  if (opts.vocabPath || opts.tokenizer) {
    const tc = { tokenizer_class: 'BertTokenizer', do_lower_case: opts.lowercase ?? true, model_max_length: model.config.maxPositionEmbeddings };
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tc, null, 2) + '\n');
  }
}

/**
 * A BertForMaskedLM from a Hugging Face folder (keys with or without `bert.`; a checkpoint without cls.*
 * gets HF's initial head). Every model tensor's shape is checked; pooler / classifier / position_ids keys are ignored.
 */
export async function loadBertForMaskedLM(rt: Runtime, dir: string, opts: { rng?: Rng } = {}): Promise<{ model: BertForMaskedLM; config: BertConfig; tokenizer: WordPieceTokenizer | null; missingKeys: string[] }> {
  if (!existsSync(join(dir, 'config.json'))) throw new CheckpointError(`${dir}: no config.json`);
  const config = await readBertConfig(join(dir, 'config.json'));
  const where = bertWeightsPath(dir);
  const reader = await CheckpointReader.open(where);
  const model = new BertForMaskedLM(rt, config, { rng: opts.rng });
  try {
    const own = model.stateDict();
    const found = new Set<string>();
    for (const name of reader.names) {
      let k = name.replace(/\.LayerNorm\.gamma$/, '.LayerNorm.weight').replace(/\.LayerNorm\.beta$/, '.LayerNorm.bias');
      if (!k.startsWith('cls.') && !k.startsWith('bert.')) k = `bert.${k}`;
      const dst = own.get(k);
      if (!dst) continue;
      const info = reader.info(name);
      if (info.shape.length !== dst.rank || info.shape.some((d, i) => d !== dst.shape[i])) {
        throw new CheckpointError(`${where}: ${name} is [${info.shape.join(', ')}], the model built from config.json needs [${dst.shape.join(', ')}]`);
      }
      dst.write((await reader.read(name)).data);
      found.add(k);
    }
    const missingKeys = [...own.keys()].filter((k) => !found.has(k));
    const fatal = missingKeys.filter((k) => !k.startsWith('cls.'));
    if (fatal.length) throw new CheckpointError(`${where}: missing ${fatal.length} tensor(s): ${fatal.slice(0, 12).join(', ')}`);
    model.eval();
    return { model, config, tokenizer: await loadBertTokenizer(dir), missingKeys };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}
