// Adapter-only files for Houlsby adapters and prompt tuning: the trained tensors (+ pooler, classifier) in safetensors + a small JSON config, written atomically; loading validates every name and shape.
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { CheckpointError, GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import type { BertForSequenceClassification } from '../models/bert.js';
import { addAdapters, BottleneckAdapter, removeAdapters } from './adapters.js';
import { SoftPrompt } from './prompt.js';

export const TUNED_WEIGHTS = 'graft_adapter.safetensors';
export const TUNED_CONFIG = 'graft_adapter_config.json';
/** Key of the soft prompt [n, H] in the weights file. */
export const PROMPT_KEY = 'prompt.weight';

export type TunedKind = 'houlsby' | 'prompt';

/** graft_adapter_config.json. */
export interface TunedConfig {
  format: 'graft-adapter';
  version: 1;
  kind: TunedKind;
  hidden_size: number;
  num_hidden_layers: number;
  num_labels: number;
  /** houlsby: bottleneck width and activation. */
  adapter_size?: number;
  adapter_activation?: 'gelu' | 'relu';
  /** prompt: number of soft-prompt vectors. */
  prompt_length?: number;
  base_model_name_or_path: string | null;
  /** The tensor names in the weights file, sorted. */
  tensors: string[];
}

export interface TunedMeta {
  baseModelNameOrPath?: string | null;
}

/** True when `dir` holds a graft adapter / prompt file pair (by its config file). */
export function isTunedAdapterDir(dir: string): boolean {
  return existsSync(join(dir, TUNED_CONFIG));
}

const isHead = (name: string): boolean => name.startsWith('classifier.') || name.startsWith('bert.pooler.');

/** The tensors saved for `model`: its adapters (houlsby), every parameter that requires grad, and the pooler + classifier; plus the prompt. */
function tunedTensors(model: BertForSequenceClassification, kind: TunedKind, prompt: SoftPrompt | null): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of model.namedParameters()) {
    if ((kind === 'houlsby' && name.includes('.adapter.')) || t.requiresGrad || isHead(name)) out.set(name, t);
  }
  if (prompt) out.set(PROMPT_KEY, prompt.weight);
  return out;
}

function firstAdapter(model: BertForSequenceClassification): BottleneckAdapter | null {
  for (const layer of model.bert.encoder.layer) {
    for (const site of [layer.attention.output, layer.output]) if (site.adapter instanceof BottleneckAdapter) return site.adapter;
  }
  return null;
}

async function writeTuned(dir: string, tensors: Map<string, Tensor>, config: TunedConfig): Promise<void> {
  const entries: [string, TensorToWrite][] = [];
  for (const k of config.tensors) {
    const t = tensors.get(k)!;
    entries.push([k, { shape: t.shape, data: await t.read() }]);
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, TUNED_WEIGHTS), entries, { format: 'pt' });
  await writeFileAtomic(join(dir, TUNED_CONFIG), JSON.stringify(config, null, 2) + '\n');
}

function baseConfig(model: BertForSequenceClassification, kind: TunedKind, tensors: Map<string, Tensor>, meta: TunedMeta): TunedConfig {
  return {
    format: 'graft-adapter',
    version: 1,
    kind,
    hidden_size: model.config.hiddenSize,
    num_hidden_layers: model.config.numHiddenLayers,
    num_labels: model.numLabels,
    base_model_name_or_path: meta.baseModelNameOrPath ?? null,
    tensors: [...tensors.keys()].sort(),
  };
}

/**
 * Save the Houlsby adapters of `model` (addAdapters) with every other trained tensor (requiresGrad, e.g. the
 * LayerNorms) and the pooler + classifier: `dir/graft_adapter.safetensors` (model parameter names) and
 * `dir/graft_adapter_config.json`, each written atomically. Returns the saved names.
 */
export async function saveHoulsbyAdapter(model: BertForSequenceClassification, dir: string, meta: TunedMeta = {}): Promise<string[]> {
  const a = firstAdapter(model);
  if (!a) throw new GraftError('saveHoulsbyAdapter: the model has no bottleneck adapters (call addAdapters first)');
  const tensors = tunedTensors(model, 'houlsby', null);
  const config = { ...baseConfig(model, 'houlsby', tensors, meta), adapter_size: a.size, adapter_activation: a.activation };
  await writeTuned(dir, tensors, config);
  return config.tensors;
}

/** Save a soft prompt (key 'prompt.weight' [n, H]) with the model's trained tensors (pooler + classifier), as saveHoulsbyAdapter. */
export async function savePromptTuning(model: BertForSequenceClassification, prompt: SoftPrompt, dir: string, meta: TunedMeta = {}): Promise<string[]> {
  const tensors = tunedTensors(model, 'prompt', prompt);
  const config = { ...baseConfig(model, 'prompt', tensors, meta), prompt_length: prompt.length };
  await writeTuned(dir, tensors, config);
  return config.tensors;
}

/** Read and validate `dir/graft_adapter_config.json`. */
export async function readTunedConfig(dir: string): Promise<TunedConfig> {
  const path = join(dir, TUNED_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const bad = (msg: string): never => {
    throw new CheckpointError(`${path}: ${msg}`);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return bad('not a JSON object');
  const j = raw as Record<string, unknown>;
  if (j.format !== 'graft-adapter' || j.version !== 1) bad(`format ${JSON.stringify(j.format)} version ${JSON.stringify(j.version)}; expected "graft-adapter" version 1`);
  if (j.kind !== 'houlsby' && j.kind !== 'prompt') bad(`kind ${JSON.stringify(j.kind)}; expected "houlsby" or "prompt"`);
  const posInt = (k: string): void => {
    if (!Number.isInteger(j[k]) || (j[k] as number) < 1) bad(`${k} is ${JSON.stringify(j[k])}, expected a positive integer`);
  };
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_labels']) posInt(k);
  if (j.kind === 'houlsby') {
    posInt('adapter_size');
    if (j.adapter_activation !== 'gelu' && j.adapter_activation !== 'relu') bad(`adapter_activation ${JSON.stringify(j.adapter_activation)}; expected "gelu" or "relu"`);
  } else posInt('prompt_length');
  if (!Array.isArray(j.tensors) || !j.tensors.every((s) => typeof s === 'string')) bad('tensors must be a list of names');
  const base = j.base_model_name_or_path;
  return {
    format: 'graft-adapter',
    version: 1,
    kind: j.kind as TunedKind,
    hidden_size: j.hidden_size as number,
    num_hidden_layers: j.num_hidden_layers as number,
    num_labels: j.num_labels as number,
    adapter_size: j.adapter_size as number | undefined,
    adapter_activation: j.adapter_activation as 'gelu' | 'relu' | undefined,
    prompt_length: j.prompt_length as number | undefined,
    base_model_name_or_path: typeof base === 'string' ? base : null,
    tensors: j.tensors as string[],
  };
}

export interface LoadedTuned {
  config: TunedConfig;
  /** The soft prompt (kind 'prompt'), owned by the caller; null for adapters. */
  prompt: SoftPrompt | null;
  keys: string[];
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Load a file pair written by saveHoulsbyAdapter / savePromptTuning onto a base `model`: adds adapters of the
 * saved size (houlsby; any present are replaced) or makes a SoftPrompt (prompt), then checks that every
 * tensor of the file is a tensor of the model (or the prompt) with the same shape (a mismatch is a
 * CheckpointError naming the tensor and both shapes) and that no adapter tensor is missing, and only then
 * copies. On any error nothing is copied and adapters this call added are removed again. The model is left
 * in eval mode with its requiresGrad flags untouched.
 */
export async function loadTunedAdapter(model: BertForSequenceClassification, dir: string): Promise<LoadedTuned> {
  const config = await readTunedConfig(dir);
  const rt = model.bert.embeddings.word_embeddings.weight.rt;
  const st = await SafetensorsFile.open(join(dir, TUNED_WEIGHTS));
  let prompt: SoftPrompt | null = null;
  let added = false;
  try {
    const names = st.names;
    const listed = new Set(config.tensors);
    if (names.length !== listed.size || names.some((n) => !listed.has(n))) {
      throw new CheckpointError(`${st.path}: its tensors do not match the list in ${TUNED_CONFIG}`);
    }
    if (config.kind === 'houlsby') {
      const keys = names.filter((n) => n.includes('.adapter.'));
      if (!keys.length) throw new CheckpointError(`${st.path}: kind houlsby but no adapter tensors`);
      addAdapters(model.bert, { size: config.adapter_size, activation: config.adapter_activation });
      added = true;
    } else {
      if (!names.includes(PROMPT_KEY)) throw new CheckpointError(`${st.path}: kind prompt but no '${PROMPT_KEY}' tensor`);
      const s = st.info(PROMPT_KEY).shape;
      if (s.length !== 2 || s[1] !== model.config.hiddenSize) {
        throw new CheckpointError(`${st.path}: '${PROMPT_KEY}' has shape ${fmt(s)}, the model needs [${config.prompt_length}, ${model.config.hiddenSize}]`);
      }
      prompt = new SoftPrompt(rt, s[0]!, s[1]!);
    }
    const targets = new Map(model.namedParameters());
    if (prompt) targets.set(PROMPT_KEY, prompt.weight);
    const problems: string[] = [];
    for (const n of names) {
      const t = targets.get(n);
      const s = st.info(n).shape;
      if (!t) problems.push(`  ${n}: in the file ${fmt(s)}, not a tensor of the model`);
      else if (s.length !== t.rank || s.some((d, i) => d !== t.shape[i])) problems.push(`  ${n}: file has ${fmt(s)}, model has ${fmt(t.shape)}`);
    }
    if (config.kind === 'houlsby') {
      for (const n of targets.keys()) if (n.includes('.adapter.') && !listed.has(n)) problems.push(`  ${n}: missing from the file`);
    }
    if (problems.length) throw new CheckpointError(`${st.path} does not fit the model (${problems.length} problem(s)):\n${problems.join('\n')}`);
    for (const n of names) {
      const { data, dtype } = await st.read(n);
      if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16' && dtype !== 'F64') throw new CheckpointError(`${st.path}: ${n} is ${dtype}, expected a float tensor`);
      targets.get(n)!.write(data);
    }
    model.eval();
    return { config, prompt, keys: names };
  } catch (e) {
    prompt?.dispose();
    if (added) removeAdapters(model.bert);
    throw e;
  } finally {
    await st.close();
  }
}
