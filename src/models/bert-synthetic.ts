// Deterministic counter-based BERT "weights" in HF layout for parity tests, reproduced bit-for-bit by
// scripts/fixtures/bert_parity.py (same hash as resnet-synthetic.ts), so no weight file is committed.
import { numel } from '../tensor.js';
import type { TensorToWrite } from '../io/safetensors.js';
import { bertParameterShapes, type BertConfig } from './bert-config.js';
import { hashUniformArray, keySeed } from './resnet-synthetic.js';

/**
 * Value range of a BERT tensor by key, chosen so activations stay O(1): LayerNorm weight [0.8, 1.2],
 * biases [-0.1, 0.1], embedding tables [-1, 1], dense weights [out, in] ±sqrt(3 / in) (variance 1 / in,
 * so attention scores have unit variance).
 */
export function bertSynthRange(key: string, shape: readonly number[]): [number, number] {
  if (key.endsWith('LayerNorm.weight')) return [0.8, 1.2];
  if (key.endsWith('bias')) return [-0.1, 0.1];
  if (key.endsWith('_embeddings.weight')) return [-1, 1];
  const a = Math.sqrt(3 / shape[1]!);
  return [-a, a];
}

/** The tensor for `key` (hashed from the key without any `bert.` prefix, as the fixture script does). */
export function bertSynthTensor(key: string, shape: readonly number[]): Float32Array {
  const [lo, hi] = bertSynthRange(key, shape);
  return hashUniformArray(keySeed(key), numel(shape), lo, hi);
}

/**
 * Every tensor of a synthetic HF checkpoint: BertModel keys (with `prefix`, e.g. 'bert.') plus an
 * optional classifier `classifier.{weight,bias}` of numLabels outputs. Values depend on the unprefixed key.
 */
export function bertSynthCheckpoint(c: BertConfig, opts: { prefix?: string; pooler?: boolean; numLabels?: number } = {}): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  const prefix = opts.prefix ?? '';
  for (const [key, shape] of bertParameterShapes(c, { pooler: opts.pooler })) out.set(prefix + key, { shape, data: bertSynthTensor(key, shape) });
  if (opts.numLabels) {
    const w = [opts.numLabels, c.hiddenSize];
    out.set('classifier.weight', { shape: w, data: bertSynthTensor('classifier.weight', w) });
    out.set('classifier.bias', { shape: [opts.numLabels], data: bertSynthTensor('classifier.bias', [opts.numLabels]) });
  }
  return out;
}
