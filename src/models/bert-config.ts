// BERT configuration: Hugging Face config.json (snake_case) parsed and validated into a typed BertConfig.
import { readFile } from 'node:fs/promises';
import { CheckpointError } from '../runtime/errors.js';
import { ATTENTION_MAX_HEAD_DIM } from '../kernels/attention.js';

/** Activations HF BERT configs name: 'gelu' is exact (erf); 'gelu_new' / 'gelu_pytorch_tanh' the tanh form. */
export type BertActivation = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'relu';

export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: BertActivation;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  initializerRange: number;
  padTokenId: number;
  /** Classifier outputs (num_labels, or the size of id2label; HF default 2). */
  numLabels: number;
  /** Dropout before the classifier (null: hiddenDropoutProb, as HF). */
  classifierDropout: number | null;
  /** label names by index when config.json has id2label. */
  id2label: string[] | null;
}

/** bert-base-uncased's values: the defaults for keys a config.json leaves out. */
export const BERT_BASE: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  initializerRange: 0.02,
  padTokenId: 0,
  numLabels: 2,
  classifierDropout: null,
  id2label: null,
};

const ACTS: readonly string[] = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'];

/** A full config from a partial one (bert-base defaults), validated. */
export function bertConfig(c: Partial<BertConfig> = {}, where = 'BERT config'): BertConfig {
  const cfg: BertConfig = { ...BERT_BASE, ...c };
  validate(cfg, where);
  return cfg;
}

function validate(c: BertConfig, where: string): void {
  const bad = (msg: string) => new CheckpointError(`${where}: ${msg}`);
  const ints: (keyof BertConfig)[] = ['vocabSize', 'hiddenSize', 'numHiddenLayers', 'numAttentionHeads', 'intermediateSize', 'maxPositionEmbeddings', 'typeVocabSize', 'numLabels'];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(`${snake(k)} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (c.hiddenSize % c.numAttentionHeads) throw bad(`hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numAttentionHeads}`);
  const dh = c.hiddenSize / c.numAttentionHeads;
  if (dh > ATTENTION_MAX_HEAD_DIM) throw bad(`head size ${dh} (hidden_size / num_attention_heads) is over the attention kernel's limit ${ATTENTION_MAX_HEAD_DIM}`);
  if (!ACTS.includes(c.hiddenAct)) throw bad(`hidden_act '${String(c.hiddenAct)}' is not supported (known: ${ACTS.join(', ')})`);
  for (const k of ['hiddenDropoutProb', 'attentionProbsDropoutProb'] as const) {
    if (!(c[k] >= 0 && c[k] < 1)) throw bad(`${snake(k)} must be in [0, 1), got ${c[k]}`);
  }
  if (c.classifierDropout !== null && !(c.classifierDropout >= 0 && c.classifierDropout < 1)) throw bad(`classifier_dropout must be in [0, 1) or null, got ${c.classifierDropout}`);
  if (!(c.layerNormEps > 0)) throw bad(`layer_norm_eps must be > 0, got ${c.layerNormEps}`);
  if (!Number.isInteger(c.padTokenId) || c.padTokenId < 0 || c.padTokenId >= c.vocabSize) throw bad(`pad_token_id ${c.padTokenId} is outside the vocabulary [0, ${c.vocabSize})`);
}

const snake = (k: string): string => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

/** Parse a config.json object (HF keys). Unknown keys are ignored; wrong types and unsupported variants throw. */
export function parseBertConfig(json: unknown, where = 'config.json'): BertConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new CheckpointError(`${where}: not a JSON object`);
  const j = json as Record<string, unknown>;
  const modelType = j.model_type;
  if (modelType !== undefined && modelType !== 'bert') {
    throw new CheckpointError(`${where}: model_type '${String(modelType)}' is not 'bert' (RoBERTa / DistilBERT / ALBERT layouts differ)`);
  }
  const pet = j.position_embedding_type;
  if (pet !== undefined && pet !== null && pet !== 'absolute') throw new CheckpointError(`${where}: position_embedding_type '${String(pet)}' is not supported (only 'absolute')`);
  const num = (k: string, dflt: number): number => {
    const v = j[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`${where}: ${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const act = j.hidden_act ?? 'gelu';
  if (typeof act !== 'string') throw new CheckpointError(`${where}: hidden_act must be a string, got ${JSON.stringify(act)}`);
  let id2label: string[] | null = null;
  if (j.id2label && typeof j.id2label === 'object') {
    const m = j.id2label as Record<string, unknown>;
    id2label = Object.keys(m)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => String(m[k]));
  }
  const numLabels = j.num_labels !== undefined ? num('num_labels', 2) : (id2label?.length ?? 2);
  const cd = j.classifier_dropout;
  return bertConfig(
    {
      vocabSize: num('vocab_size', BERT_BASE.vocabSize),
      hiddenSize: num('hidden_size', BERT_BASE.hiddenSize),
      numHiddenLayers: num('num_hidden_layers', BERT_BASE.numHiddenLayers),
      numAttentionHeads: num('num_attention_heads', BERT_BASE.numAttentionHeads),
      intermediateSize: num('intermediate_size', BERT_BASE.intermediateSize),
      hiddenAct: act as BertActivation,
      maxPositionEmbeddings: num('max_position_embeddings', BERT_BASE.maxPositionEmbeddings),
      typeVocabSize: num('type_vocab_size', BERT_BASE.typeVocabSize),
      layerNormEps: num('layer_norm_eps', BERT_BASE.layerNormEps),
      hiddenDropoutProb: num('hidden_dropout_prob', BERT_BASE.hiddenDropoutProb),
      attentionProbsDropoutProb: num('attention_probs_dropout_prob', BERT_BASE.attentionProbsDropoutProb),
      initializerRange: num('initializer_range', BERT_BASE.initializerRange),
      padTokenId: num('pad_token_id', BERT_BASE.padTokenId),
      numLabels,
      classifierDropout: cd === undefined || cd === null ? null : num('classifier_dropout', 0),
      id2label,
    },
    where,
  );
}

/** Read and parse `path` (a config.json). */
export async function readBertConfig(path: string): Promise<BertConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  return parseBertConfig(json, path);
}

/** The config as HF config.json keys (what `saveBert` writes). */
export function bertConfigJson(c: BertConfig, architectures: string[] = ['BertModel']): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures,
    model_type: 'bert',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    max_position_embeddings: c.maxPositionEmbeddings,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    hidden_dropout_prob: c.hiddenDropoutProb,
    attention_probs_dropout_prob: c.attentionProbsDropoutProb,
    initializer_range: c.initializerRange,
    pad_token_id: c.padTokenId,
    position_embedding_type: 'absolute',
    classifier_dropout: c.classifierDropout,
    num_labels: c.numLabels,
  };
  if (c.id2label) out.id2label = Object.fromEntries(c.id2label.map((l, i) => [String(i), l]));
  return out;
}

/**
 * Every BertModel state-dict key with its shape, in HF's order (no position_ids buffer), computed
 * without a GPU. `pooler: false` leaves out pooler.dense.*; `prefix` is prepended (e.g. 'bert.').
 */
export function bertParameterShapes(c: BertConfig, opts: { pooler?: boolean; prefix?: string } = {}): Map<string, number[]> {
  const p = opts.prefix ?? '';
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const m = new Map<string, number[]>();
  const dense = (k: string, out: number, inp: number) => {
    m.set(`${p}${k}.weight`, [out, inp]);
    m.set(`${p}${k}.bias`, [out]);
  };
  const ln = (k: string) => {
    m.set(`${p}${k}.weight`, [H]);
    m.set(`${p}${k}.bias`, [H]);
  };
  m.set(`${p}embeddings.word_embeddings.weight`, [c.vocabSize, H]);
  m.set(`${p}embeddings.position_embeddings.weight`, [c.maxPositionEmbeddings, H]);
  m.set(`${p}embeddings.token_type_embeddings.weight`, [c.typeVocabSize, H]);
  ln('embeddings.LayerNorm');
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const L = `encoder.layer.${l}`;
    dense(`${L}.attention.self.query`, H, H);
    dense(`${L}.attention.self.key`, H, H);
    dense(`${L}.attention.self.value`, H, H);
    dense(`${L}.attention.output.dense`, H, H);
    ln(`${L}.attention.output.LayerNorm`);
    dense(`${L}.intermediate.dense`, I, H);
    dense(`${L}.output.dense`, H, I);
    ln(`${L}.output.LayerNorm`);
  }
  if (opts.pooler ?? true) dense('pooler.dense', H, H);
  return m;
}
