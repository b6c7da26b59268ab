// Masked-language-model inputs: BERT's 80/10/10 masking of eligible tokens, labels -100 where not predicted.
import { GraftError } from '../runtime/errors.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import type { TextExample } from './dataset.js';
import type { BatchContext } from './loader.js';
import { Rng } from './rng.js';
import { encodeBatch, type TextBatchOptions } from './text-batch.js';

/** Label of positions the loss ignores (PyTorch's CrossEntropyLoss ignore_index). */
export const IGNORE_INDEX = -100;

export interface MaskOptions {
  /** Chance that an eligible token is selected for prediction (default 0.15). */
  prob?: number;
  /** Of the selected tokens: this share becomes [MASK] (default 0.8) ... */
  maskShare?: number;
  /** ... this share a uniformly random vocabulary id (default 0.1); the rest stay unchanged. */
  randomShare?: number;
  /** Generator to draw from (or seed to make one). */
  rng?: Rng;
  seed?: number;
  vocabSize: number;
  maskId: number;
  /** Ids never selected ([CLS], [SEP], [PAD], ...). */
  specialIds: Iterable<number>;
}

export interface MaskedTokens {
  /** Input ids with the selected tokens replaced. */
  inputIds: Int32Array;
  /** Original id at selected positions, IGNORE_INDEX elsewhere. */
  labels: Int32Array;
}

/**
 * BERT masking (as Hugging Face's DataCollatorForLanguageModeling): every eligible position — attention mask
 * non-zero and id not special — is selected with probability `prob`; a selected token becomes [MASK] with
 * probability 0.8, a random id in [0, vocabSize) with 0.1, and stays with 0.1. Draws per eligible position,
 * in order: select; if selected: kind; if random: the id.
 */
export function maskTokens(ids: ArrayLike<number>, attentionMask: ArrayLike<number>, o: MaskOptions): MaskedTokens {
  const prob = o.prob ?? 0.15;
  const maskShare = o.maskShare ?? 0.8;
  const randomShare = o.randomShare ?? 0.1;
  if (!(prob >= 0 && prob <= 1)) throw new GraftError(`maskTokens: prob must be in [0, 1], got ${prob}`);
  if (!(maskShare >= 0 && randomShare >= 0 && maskShare + randomShare <= 1)) throw new GraftError(`maskTokens: maskShare ${maskShare} + randomShare ${randomShare} must be shares summing to ≤ 1`);
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < 1) throw new GraftError(`maskTokens: vocabSize must be a positive integer, got ${o.vocabSize}`);
  if (ids.length !== attentionMask.length) throw new GraftError(`maskTokens: ${ids.length} ids but ${attentionMask.length} mask entries`);
  if (!o.rng && o.seed === undefined) throw new GraftError('maskTokens: give rng or seed');
  const rng = o.rng ?? new Rng(o.seed!);
  const special = new Set(o.specialIds);
  const inputIds = Int32Array.from(ids);
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  for (let i = 0; i < ids.length; i++) {
    const id = inputIds[i]!;
    if (attentionMask[i] === 0 || special.has(id)) continue;
    if (rng.float() >= prob) continue;
    labels[i] = id;
    const r = rng.float();
    if (r < maskShare) inputIds[i] = o.maskId;
    else if (r < maskShare + randomShare) inputIds[i] = rng.int(o.vocabSize);
  }
  return { inputIds, labels };
}

/** The tokenizer's special ids that masking must skip: [PAD] [UNK] [CLS] [SEP] [MASK] (those it has). */
export function specialTokenIds(tok: WordPieceTokenizer): number[] {
  return ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].flatMap((t) => (tok.vocab.has(t) ? [tok.vocab.get(t)!] : []));
}

export interface MlmBatch {
  /** [B, T] masked input ids */
  inputIds: Int32Array;
  /** [B, T] */
  attentionMask: Float32Array;
  /** [B, T] */
  tokenTypeIds: Int32Array;
  /** [B, T] original ids at masked positions, IGNORE_INDEX elsewhere */
  labels: Int32Array;
  shape: [number, number];
}

/** Tokenise, pad and mask a batch of texts (labels ignored) with the batch's rng. */
export function mlmBatch(tok: WordPieceTokenizer, examples: readonly TextExample[], rng: Rng, o: TextBatchOptions & { prob?: number }): MlmBatch {
  const b = encodeBatch(tok, examples, o);
  if (!tok.vocab.has('[MASK]')) throw new GraftError("mlmBatch: the vocabulary has no '[MASK]' token");
  const m = maskTokens(b.inputIds, b.attentionMask, { prob: o.prob, rng, vocabSize: tok.size, maskId: tok.id('[MASK]'), specialIds: specialTokenIds(tok) });
  return { inputIds: m.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, labels: m.labels, shape: b.shape };
}

/** A DataLoader collate for MLM: masking is drawn from the batch's rng, so it is reproducible and resumable. */
export function mlmCollate(tok: WordPieceTokenizer, o: TextBatchOptions & { prob?: number }): (examples: TextExample[], ctx: BatchContext) => MlmBatch {
  return (examples, ctx) => mlmBatch(tok, examples, ctx.rng, o);
}
