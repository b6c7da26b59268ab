// Load / save BERT in the Hugging Face folder layout: config.json + model.safetensors (or sharded index) + tokenizer files.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../runtime/runtime.js';
import { CheckpointError, GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../autograd/random.js';
import { CheckpointReader } from '../io/sharded.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { WordPieceTokenizer } from '../text/wordpiece.js';
import { bertConfigJson, readBertConfig, type BertConfig } from './bert-config.js';
import { BertForSequenceClassification, BertModel, initBertWeights } from './bert.js';

export interface LoadBertOptions {
  /** Throw on checkpoint keys the model does not use (default true; known heads and position_ids are always ignored). */
  strict?: boolean;
  /** Also load the tokenizer from tokenizer.json or vocab.txt (default true). */
  tokenizer?: boolean;
  /** Dropout seeds / initial values of tensors the checkpoint lacks (e.g. a new classifier). */
  rng?: Rng;
  exactAttentionDropout?: boolean;
  /** BertForSequenceClassification only: classifier outputs (default config.num_labels). */
  numLabels?: number;
}

export interface LoadedBert<M> {
  model: M;
  config: BertConfig;
  tokenizer: WordPieceTokenizer | null;
  dir: string;
  /** Model keys the checkpoint lacks (kept at their initial values; only ever the classifier). */
  missingKeys: string[];
  /** Checkpoint keys not used and not known to be safe to drop (only when strict is false). */
  unexpectedKeys: string[];
  /** Checkpoint keys dropped on purpose: other task heads (cls.*, qa_outputs.*, ...) and position_ids buffers. */
  ignoredKeys: string[];
}

/** Buffers HF keeps in some checkpoints that graft computes on the fly. */
const BUFFER_RE = /^(bert\.)?embeddings\.(position_ids|token_type_ids)$/;
/** Heads of other BERT tasks (MLM / NSP / QA / token classification) or of the classifier when loading the base model. */
const HEAD_RE = /^(cls|qa_outputs|classifier)\./;
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** The weights file of a model folder: model.safetensors, else the shard index. */
export function bertWeightsPath(dir: string): string {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return single;
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) return index;
  const bin = existsSync(join(dir, 'pytorch_model.bin')) ? ' (pytorch_model.bin is not supported: convert it to safetensors)' : '';
  throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json${bin}`);
}

/** The tokenizer of a model folder: tokenizer.json, else vocab.txt with tokenizer_config.json's casing; null if neither. */
export async function loadBertTokenizer(dir: string): Promise<WordPieceTokenizer | null> {
  const tj = join(dir, 'tokenizer.json');
  if (existsSync(tj)) return WordPieceTokenizer.fromTokenizerJson(tj);
  const vocab = join(dir, 'vocab.txt');
  if (!existsSync(vocab)) return null;
  let tc: { do_lower_case?: unknown; strip_accents?: unknown; tokenize_chinese_chars?: unknown } = {};
  const tcPath = join(dir, 'tokenizer_config.json');
  if (existsSync(tcPath)) {
    try {
      tc = JSON.parse(await readFile(tcPath, 'utf8')) as typeof tc;
    } catch (e) {
      throw new GraftError(`${tcPath}: invalid JSON (${(e as Error).message})`);
    }
  }
  return WordPieceTokenizer.fromVocabFile(vocab, {
    lowercase: tc.do_lower_case === undefined ? true : tc.do_lower_case === true,
    stripAccents: typeof tc.strip_accents === 'boolean' ? tc.strip_accents : null,
    handleChineseChars: tc.tokenize_chinese_chars === undefined ? true : tc.tokenize_chinese_chars === true,
  });
}

/** Where each checkpoint key goes in a model whose keys are `modelKeys` (null: ignored on purpose). */
function mapKey(name: string, target: 'base' | 'classifier'): string | null {
  if (BUFFER_RE.test(name)) return null;
  // TF-converted checkpoints name LayerNorm parameters gamma / beta (HF renames them on load too).
  const k = name.replace(/\.LayerNorm\.gamma$/, '.LayerNorm.weight').replace(/\.LayerNorm\.beta$/, '.LayerNorm.bias');
  const core = k.startsWith('bert.') ? k.slice(5) : k;
  if (target === 'base') return HEAD_RE.test(core) ? null : core;
  if (core.startsWith('classifier.')) return core;
  if (HEAD_RE.test(core)) return null;
  return `bert.${core}`;
}

const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Copy a checkpoint into `model`, tensor by tensor (peak host memory ≈ the largest tensor). Every
 * shape is checked first: one CheckpointError lists each mismatch with both shapes. Keys the model
 * needs and the checkpoint lacks throw unless `allowMissing` matches them.
 */
async function loadInto(
  model: BertModel | BertForSequenceClassification,
  reader: CheckpointReader,
  where: string,
  target: 'base' | 'classifier',
  strict: boolean,
  allowMissing: (key: string) => boolean,
): Promise<{ missingKeys: string[]; unexpectedKeys: string[]; ignoredKeys: string[] }> {
  const own = model.stateDict();
  const src = new Map<string, string>(); // model key -> checkpoint name
  const ignoredKeys: string[] = [];
  const unexpectedKeys: string[] = [];
  for (const name of reader.names) {
    const key = mapKey(name, target);
    if (key === null) ignoredKeys.push(name);
    else if (!own.has(key)) unexpectedKeys.push(name);
    else if (src.has(key)) throw new CheckpointError(`${where}: both '${src.get(key)}' and '${name}' map to '${key}'`);
    else src.set(key, name);
  }
  const problems: string[] = [];
  for (const [key, name] of src) {
    const info = reader.info(name);
    const dst = own.get(key)!;
    const same = info.shape.length === dst.rank && info.shape.every((d, i) => d === dst.shape[i]);
    if (!same) problems.push(`  ${name}: checkpoint ${shapeStr(info.shape)}, model ${shapeStr(dst.shape)}`);
    else if (!FLOAT_DTYPES.has(info.dtype)) problems.push(`  ${name}: dtype ${info.dtype} is not a float type`);
  }
  if (problems.length) {
    throw new CheckpointError(`${where}: ${problems.length} tensor(s) do not fit the model built from config.json:\n${problems.join('\n')}`);
  }
  const missingKeys = [...own.keys()].filter((k) => !src.has(k));
  const fatalMissing = missingKeys.filter((k) => !allowMissing(k));
  const list = (ks: string[]) => (ks.length > 12 ? `${ks.slice(0, 12).join(', ')}, … (${ks.length} in all)` : ks.join(', '));
  if (fatalMissing.length) throw new CheckpointError(`${where}: missing ${fatalMissing.length} tensor(s): ${list(fatalMissing)}`);
  if (strict && unexpectedKeys.length) {
    throw new CheckpointError(`${where}: ${unexpectedKeys.length} unexpected tensor(s) (pass strict: false to ignore them): ${list(unexpectedKeys)}`);
  }
  for (const [key, name] of src) {
    const dst: Tensor = own.get(key)!;
    const { data } = await reader.read(name);
    dst.write(data);
  }
  return { missingKeys, unexpectedKeys, ignoredKeys };
}

async function openFolder(dir: string): Promise<{ config: BertConfig; reader: CheckpointReader; where: string }> {
  if (!existsSync(dir)) throw new CheckpointError(`model folder ${dir} does not exist`);
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) throw new CheckpointError(`${dir}: no config.json`);
  const config = await readBertConfig(cfgPath);
  const where = bertWeightsPath(dir);
  return { config, reader: await CheckpointReader.open(where), where };
}

/**
 * A BertModel from a Hugging Face folder. Keys may carry the `bert.` prefix (checkpoints of
 * BertFor* models); other heads and position_ids buffers are ignored; a checkpoint without
 * pooler.* gives a model without pooler (poolerOutput null).
 */
export async function loadBert(rt: Runtime, dir: string, opts: LoadBertOptions = {}): Promise<LoadedBert<BertModel>> {
  const { config, reader, where } = await openFolder(dir);
  let model: BertModel | null = null;
  try {
    const hasPooler = reader.names.some((n) => /^(bert\.)?pooler\.dense\./.test(n));
    model = new BertModel(rt, config, { addPoolingLayer: hasPooler, init: 'none', rng: opts.rng, exactAttentionDropout: opts.exactAttentionDropout });
    const r = await loadInto(model, reader, where, 'base', opts.strict ?? true, () => false);
    model.eval();
    const tokenizer = opts.tokenizer === false ? null : await loadBertTokenizer(dir);
    return { model, config, tokenizer, dir, ...r };
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}

/**
 * A BertForSequenceClassification from a Hugging Face folder: a fine-tuned checkpoint (bert.* +
 * classifier.*) or a bare BertModel one, in which case the classifier keeps HF's initial values and is
 * listed in missingKeys. The model is returned in eval mode.
 */
export async function loadBertForSequenceClassification(
  rt: Runtime,
  dir: string,
  opts: LoadBertOptions = {},
): Promise<LoadedBert<BertForSequenceClassification>> {
  const { config, reader, where } = await openFolder(dir);
  let model: BertForSequenceClassification | null = null;
  try {
    model = new BertForSequenceClassification(rt, config, { numLabels: opts.numLabels, init: 'none', rng: opts.rng, exactAttentionDropout: opts.exactAttentionDropout });
    const r = await loadInto(model, reader, where, 'classifier', opts.strict ?? true, (k) => k.startsWith('classifier.') || k.startsWith('bert.pooler.'));
    // HF initialises what the checkpoint lacks (a new classifier; a pooler absent from a bare encoder checkpoint).
    if (r.missingKeys.some((k) => k.startsWith('classifier.'))) initBertWeights(model.classifier, config.initializerRange, opts.rng);
    if (r.missingKeys.some((k) => k.startsWith('bert.pooler.')) && model.bert.pooler) initBertWeights(model.bert.pooler, config.initializerRange, opts.rng);
    model.eval();
    const tokenizer = opts.tokenizer === false ? null : await loadBertTokenizer(dir);
    return { model, config: model.config, tokenizer, dir, ...r };
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}

/**
 * Write `model` as a Hugging Face folder: config.json (+ architectures) and model.safetensors with
 * HF keys (a classifier model's encoder under `bert.`), readable by transformers' from_pretrained.
 */
export async function saveBert(model: BertModel | BertForSequenceClassification, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const isCls = model instanceof BertForSequenceClassification;
  const cfg = isCls ? { ...model.config, numLabels: model.numLabels } : model.config;
  const tensors: [string, TensorToWrite][] = [];
  for (const [k, t] of model.stateDict()) tensors.push([k, { shape: t.shape, data: await t.read() }]);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const json = bertConfigJson(cfg, [isCls ? 'BertForSequenceClassification' : 'BertModel']);
  await writeFile(join(dir, 'config.json'), JSON.stringify(json, null, 2) + '\n');
}
