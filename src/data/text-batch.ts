// Tokenise text examples into padded [B, T] batches (fixed or dynamic length) for BERT-style models.
import { GraftError } from '../runtime/errors.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import type { TextExample } from './dataset.js';

export interface TextBatchOptions {
  /** Longest sequence kept, [CLS]/[SEP] included (longer texts are truncated). */
  maxLength: number;
  /** 'max' (default): every row has maxLength tokens; 'longest': the batch's longest row, rounded up to multipleOf. */
  padding?: 'max' | 'longest';
  /** Round dynamic lengths up to a multiple of this (default 8; as HF's pad_to_multiple_of it may exceed maxLength). */
  multipleOf?: number;
}

export interface TextBatch {
  /** [B, T] token ids, [PAD] after the text */
  inputIds: Int32Array;
  /** [B, T] 1 for tokens, 0 for padding */
  attentionMask: Float32Array;
  /** [B, T] segment ids (1 for the second text of a pair) */
  tokenTypeIds: Int32Array;
  /** [B] class ids (-1 for unlabelled examples) */
  labels: Int32Array;
  shape: [number, number];
}

/** Tokenise and pad a batch. */
export function encodeBatch(tok: WordPieceTokenizer, examples: readonly TextExample[], o: TextBatchOptions): TextBatch {
  if (!Number.isInteger(o.maxLength) || o.maxLength < 2) throw new GraftError(`encodeBatch: maxLength must be an integer ≥ 2, got ${o.maxLength}`);
  const m = o.multipleOf ?? 8;
  if (!Number.isInteger(m) || m < 1) throw new GraftError(`encodeBatch: multipleOf must be a positive integer, got ${m}`);
  const encs = examples.map((ex) => tok.encode(ex.text, { pair: ex.pair, maxLength: o.maxLength }));
  const longest = encs.reduce((a, e) => Math.max(a, e.inputIds.length), 0);
  const T = (o.padding ?? 'max') === 'max' ? o.maxLength : Math.ceil(longest / m) * m;
  const B = examples.length;
  const pad = tok.id('[PAD]');
  const inputIds = new Int32Array(B * T).fill(pad);
  const attentionMask = new Float32Array(B * T);
  const tokenTypeIds = new Int32Array(B * T);
  const labels = new Int32Array(B);
  encs.forEach((e, b) => {
    inputIds.set(e.inputIds, b * T);
    tokenTypeIds.set(e.tokenTypeIds, b * T);
    attentionMask.fill(1, b * T, b * T + e.inputIds.length);
    labels[b] = examples[b]!.label;
  });
  return { inputIds, attentionMask, tokenTypeIds, labels, shape: [B, T] };
}

/** A DataLoader collate for classification batches. */
export function textCollate(tok: WordPieceTokenizer, o: TextBatchOptions): (examples: TextExample[]) => TextBatch {
  return (examples) => encodeBatch(tok, examples, o);
}
