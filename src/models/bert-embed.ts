// Sentence embeddings with a BERT encoder: tokenised batches, pooling / normalisation settings of sentence-transformers folders.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { noGrad } from '../autograd/grad-mode.js';
import type { Encoding, WordPieceTokenizer } from '../text/wordpiece.js';
import type { BertModel } from './bert.js';
import { clsPool, l2Normalize, meanPool } from './bert-pooling.js';

export type SentencePooling = 'mean' | 'cls';

export interface SentenceEmbeddingConfig {
  pooling: SentencePooling;
  /** The folder's modules.json ends with a Normalize module. */
  normalize: boolean;
  /** sentence_bert_config.json max_seq_length (tokens, special ones included), or null. */
  maxSeqLength: number | null;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (!v || typeof v !== 'object') throw new Error('not a JSON object or array');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new GraftError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * Pooling, normalisation and max length of a sentence-transformers folder (modules.json,
 * 1_Pooling/config.json, sentence_bert_config.json); plain HF folders give mean pooling, no normalisation.
 */
export async function readSentenceConfig(dir: string): Promise<SentenceEmbeddingConfig> {
  const out: SentenceEmbeddingConfig = { pooling: 'mean', normalize: false, maxSeqLength: null };
  let poolingDir = '1_Pooling';
  const modulesPath = join(dir, 'modules.json');
  if (existsSync(modulesPath)) {
    const mods = await readJson(modulesPath);
    const list = Array.isArray(mods) ? (mods as { type?: unknown; path?: unknown }[]) : [];
    out.normalize = list.some((m) => typeof m.type === 'string' && m.type.endsWith('.Normalize'));
    const p = list.find((m) => typeof m.type === 'string' && m.type.endsWith('.Pooling'));
    if (p && typeof p.path === 'string' && p.path) poolingDir = p.path;
  }
  const poolPath = join(dir, poolingDir, 'config.json');
  if (existsSync(poolPath)) {
    const c = await readJson(poolPath);
    if (c.pooling_mode_mean_tokens === true) out.pooling = 'mean';
    else if (c.pooling_mode_cls_token === true) out.pooling = 'cls';
    else {
      const on = Object.entries(c).filter(([k, v]) => k.startsWith('pooling_mode_') && v === true).map(([k]) => k);
      throw new GraftError(`${poolPath}: pooling ${on.join(', ') || '(none)'} is not supported (mean or cls only)`);
    }
  }
  const sbPath = join(dir, 'sentence_bert_config.json');
  if (existsSync(sbPath)) {
    const v = (await readJson(sbPath)).max_seq_length;
    if (typeof v === 'number' && Number.isInteger(v) && v > 2) out.maxSeqLength = v;
  }
  return out;
}

export interface BertBatch {
  /** i32 [B, T]. */
  inputIds: Tensor;
  /** i32 [B, T]. */
  tokenTypeIds: Tensor;
  /** f32 [B, T]. */
  attentionMask: Tensor;
  dispose(): void;
}

type Encoded = Pick<Encoding, 'inputIds'> & Partial<Pick<Encoding, 'tokenTypeIds' | 'attentionMask'>>;

/** Upload encodings padded to the longest (pad id, type 0, mask 0); ids are checked against vocabSize. */
export function bertBatch(rt: Runtime, encs: readonly Encoded[], opts: { padId?: number; vocabSize?: number } = {}): BertBatch {
  if (!encs.length) throw new ShapeError('bertBatch: no sequences');
  const B = encs.length;
  const T = Math.max(...encs.map((e) => e.inputIds.length));
  if (T === 0) throw new ShapeError('bertBatch: every sequence is empty');
  const ids = new Int32Array(B * T).fill(opts.padId ?? 0);
  const types = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  encs.forEach((e, b) => {
    e.inputIds.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || (opts.vocabSize !== undefined && id >= opts.vocabSize)) {
        throw new ShapeError(`bertBatch: token id ${id} (sequence ${b}, position ${t}) is outside the vocabulary [0, ${opts.vocabSize})`);
      }
      ids[b * T + t] = id;
      types[b * T + t] = e.tokenTypeIds?.[t] ?? 0;
      mask[b * T + t] = e.attentionMask?.[t] ?? 1;
    });
  });
  const inputIds = Tensor.from(rt, ids, [B, T], 'i32');
  const tokenTypeIds = Tensor.from(rt, types, [B, T], 'i32');
  const attentionMask = Tensor.from(rt, mask, [B, T], 'f32');
  return {
    inputIds,
    tokenTypeIds,
    attentionMask,
    dispose() {
      inputIds.dispose();
      tokenTypeIds.dispose();
      attentionMask.dispose();
    },
  };
}

export interface EmbedOptions {
  pooling?: SentencePooling;
  normalize?: boolean;
  /** Truncate each text to this many tokens (default: max_position_embeddings). */
  maxLength?: number;
  /** Texts per forward pass (default 32). */
  batchSize?: number;
}

/** Sentence embeddings [texts.length][H] (no gradient; the model should be in eval mode). */
export async function embedTexts(model: BertModel, tokenizer: WordPieceTokenizer, texts: readonly string[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
  const cfg = model.config;
  const maxLength = Math.min(opts.maxLength ?? cfg.maxPositionEmbeddings, cfg.maxPositionEmbeddings);
  const bs = opts.batchSize ?? 32;
  const rt = model.embeddings.word_embeddings.weight.rt;
  const out: Float32Array[] = [];
  for (let at = 0; at < texts.length; at += bs) {
    const encs = texts.slice(at, at + bs).map((t) => tokenizer.encode(t, { maxLength }));
    const batch = bertBatch(rt, encs, { padId: cfg.padTokenId, vocabSize: cfg.vocabSize });
    let emb: Tensor;
    try {
      emb = noGrad(() => {
        const o = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, tokenTypeIds: batch.tokenTypeIds });
        o.poolerOutput?.dispose();
        const pooled = opts.pooling === 'cls' ? clsPool(o.lastHiddenState) : meanPool(o.lastHiddenState, batch.attentionMask);
        o.lastHiddenState.dispose();
        if (!opts.normalize) return pooled;
        const n = l2Normalize(pooled);
        pooled.dispose();
        return n;
      });
    } finally {
      batch.dispose();
    }
    const H = emb.shape[1]!;
    const data = await emb.read();
    emb.dispose();
    for (let b = 0; b < encs.length; b++) out.push(data.slice(b * H, (b + 1) * H));
  }
  return out;
}
