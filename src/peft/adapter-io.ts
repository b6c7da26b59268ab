// PEFT adapter files: adapter_model.safetensors (keys base_model.model.<module>.lora_A.weight, …) + adapter_config.json, written atomically; loading validates config, keys and shapes.
import { writeFileAtomic } from '../io/atomic.js';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, GraftError, ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import type { Module } from '../nn/module.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { applyLora, loraConfigOf, loraLayers, modulesToSaveOf } from './inject.js';
import { resolveLoraConfig, type LoraConfig, type LoraOptions } from './config.js';

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';
/** PEFT's prefix: LoraModel (base_model) wraps the user's model (model). */
export const PEFT_PREFIX = 'base_model.model.';

/** Fields of adapter_config.json that are not LoRA hyper-parameters. */
export interface AdapterMeta {
  /** The base checkpoint (hub id or path); null when unknown. */
  baseModelNameOrPath?: string | null;
  /** PEFT task type, e.g. 'SEQ_CLS', 'FEATURE_EXTRACTION'; null when unset. */
  taskType?: string | null;
  /** Saved for inference (PEFT sets true when saving). Default true. */
  inferenceMode?: boolean;
  revision?: string | null;
}

/** A parsed adapter_config.json. */
export interface AdapterConfigFile extends AdapterMeta {
  config: LoraConfig;
  /** The JSON as read. */
  raw: Record<string, unknown>;
}

/** adapter_config.json as PEFT's LoraConfig.to_dict() writes it (keys sorted, like PEFT's save). */
export function adapterConfigJson(c: LoraConfig, meta: AdapterMeta = {}): Record<string, unknown> {
  const d: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: meta.baseModelNameOrPath ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: meta.inferenceMode ?? true,
    init_lora_weights: c.initLoraWeights,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    modules_to_save: c.modulesToSave,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: {},
    revision: meta.revision ?? null,
    target_modules: c.targetModules,
    task_type: meta.taskType ?? null,
    use_dora: false,
    use_rslora: c.useRslora,
  };
  return Object.fromEntries(Object.keys(d).sort().map((k) => [k, d[k]]));
}

const isEmpty = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'object' && Object.keys(v as object).length === 0);

/** Validate a parsed adapter_config.json (what graft can honour) and turn it into a LoraConfig. */
export function parseAdapterConfig(raw: unknown, where = ADAPTER_CONFIG): AdapterConfigFile {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(`${where}: not a JSON object`);
  const j = raw as Record<string, unknown>;
  const bad = (msg: string): never => {
    throw new CheckpointError(`${where}: ${msg}`);
  };
  if (j.peft_type !== 'LORA') bad(`peft_type is ${JSON.stringify(j.peft_type)}, only "LORA" is supported`);
  if (typeof j.r !== 'number') bad(`r is ${JSON.stringify(j.r)}, expected a positive integer`);
  if (typeof j.lora_alpha !== 'number') bad(`lora_alpha is ${JSON.stringify(j.lora_alpha)}, expected a number`);
  if (j.bias !== undefined && j.bias !== 'none') bad(`bias is ${JSON.stringify(j.bias)}; only "none" is supported (trained biases are not saved by graft)`);
  if (j.fan_in_fan_out === true) bad('fan_in_fan_out true (Conv1D / GPT-2 layout) is not supported');
  if (j.use_dora === true) bad('use_dora true (DoRA) is not supported');
  if (!isEmpty(j.rank_pattern)) bad(`rank_pattern ${JSON.stringify(j.rank_pattern)} (per-module ranks) is not supported`);
  if (!isEmpty(j.alpha_pattern)) bad(`alpha_pattern ${JSON.stringify(j.alpha_pattern)} (per-module alphas) is not supported`);
  if (!isEmpty(j.layers_to_transform)) bad(`layers_to_transform ${JSON.stringify(j.layers_to_transform)} is not supported`);
  const tm = j.target_modules;
  if (typeof tm !== 'string' && !(Array.isArray(tm) && tm.every((s) => typeof s === 'string'))) bad(`target_modules is ${JSON.stringify(tm)}, expected a list of names or a regular expression`);
  const init = j.init_lora_weights ?? true;
  if (init !== true && init !== false && init !== 'gaussian') bad(`init_lora_weights ${JSON.stringify(init)} is not supported (true, false or "gaussian")`);
  const mts = j.modules_to_save ?? null;
  if (mts !== null && !(Array.isArray(mts) && mts.every((s) => typeof s === 'string'))) bad(`modules_to_save is ${JSON.stringify(mts)}, expected a list of names or null`);
  const dropout = j.lora_dropout ?? 0;
  if (typeof dropout !== 'number') bad(`lora_dropout is ${JSON.stringify(dropout)}, expected a number`);
  const opts: LoraOptions = {
    r: j.r as number,
    alpha: j.lora_alpha as number,
    dropout: dropout as number,
    targetModules: tm as string[] | string,
    useRslora: j.use_rslora === true,
    initLoraWeights: init as boolean | 'gaussian',
    modulesToSave: mts as string[] | null,
  };
  let config: LoraConfig;
  try {
    config = resolveLoraConfig(opts);
  } catch (e) {
    throw new CheckpointError(`${where}: ${(e as Error).message}`);
  }
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    config,
    raw: j,
    baseModelNameOrPath: str(j.base_model_name_or_path),
    taskType: str(j.task_type),
    inferenceMode: j.inference_mode !== false,
    revision: str(j.revision),
  };
}

/** Read and validate `dir/adapter_config.json`. */
export async function readAdapterConfig(dir: string): Promise<AdapterConfigFile> {
  const path = join(dir, ADAPTER_CONFIG);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseAdapterConfig(raw, path);
}

/** Every tensor the adapter file holds for `model`, by PEFT key: lora_A / lora_B weights, then the modules to save (parameters and buffers). */
export function adapterTensors(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, l] of loraLayers(model)) {
    out.set(`${PEFT_PREFIX}${name}.lora_A.weight`, l.lora_A.weight);
    out.set(`${PEFT_PREFIX}${name}.lora_B.weight`, l.lora_B.weight);
  }
  const modules = new Map(model.namedModules());
  for (const s of modulesToSaveOf(model)) {
    for (const [k, t] of modules.get(s)!.stateDict()) out.set(`${PEFT_PREFIX}${s}.${k}`, t);
  }
  return out;
}

/**
 * Save the adapter of `model` (applyLora) in PEFT's format: `dir/adapter_model.safetensors` (F32, keys
 * `base_model.model.<module>.lora_A.weight` / `.lora_B.weight` and the modules to save, adapter name
 * dropped as PEFT does) and `dir/adapter_config.json`, each written atomically. Creates `dir`.
 */
export async function saveLoraAdapter(model: Module, dir: string, meta: AdapterMeta = {}): Promise<void> {
  const config = loraConfigOf(model);
  if (!config) throw new GraftError('saveLoraAdapter: the model has no LoRA adapter (call applyLora first)');
  const tensors = adapterTensors(model);
  const entries: [string, TensorToWrite][] = [];
  for (const k of [...tensors.keys()].sort()) {
    const t = tensors.get(k)!;
    if (t.dtype === 'i32') throw new GraftError(`saveLoraAdapter: ${k} is an i32 tensor`);
    entries.push([k, { shape: t.shape, data: await t.read() }]);
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS), entries, { format: 'pt' });
  await writeFileAtomic(join(dir, ADAPTER_CONFIG), JSON.stringify(adapterConfigJson(config, meta), null, 2) + '\n');
}

export interface LoadedAdapter extends AdapterConfigFile {
  /** Keys read from the safetensors file. */
  keys: string[];
  /** True when this call applied LoRA to the model (it had no adapter). */
  applied: boolean;
}

const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** The settings that change the adapter's output: they must agree between the model and the file. */
function sameAdapter(a: LoraConfig, b: LoraConfig): string | null {
  const diffs: string[] = [];
  if (a.r !== b.r) diffs.push(`r ${a.r} vs ${b.r}`);
  if (a.alpha !== b.alpha) diffs.push(`lora_alpha ${a.alpha} vs ${b.alpha}`);
  if (a.useRslora !== b.useRslora) diffs.push(`use_rslora ${a.useRslora} vs ${b.useRslora}`);
  if (JSON.stringify(a.targetModules) !== JSON.stringify(b.targetModules)) diffs.push(`target_modules ${JSON.stringify(a.targetModules)} vs ${JSON.stringify(b.targetModules)}`);
  if (JSON.stringify(a.modulesToSave) !== JSON.stringify(b.modulesToSave)) diffs.push(`modules_to_save ${JSON.stringify(a.modulesToSave)} vs ${JSON.stringify(b.modulesToSave)}`);
  return diffs.length ? diffs.join(', ') : null;
}

/**
 * Load a PEFT LoRA adapter from `dir` into `model`: reads and validates adapter_config.json, applies LoRA
 * with that config when the model has no adapter yet (else checks that r, alpha, rsLoRA, targets and
 * modules to save agree), then copies every tensor after checking that the file holds exactly the expected
 * keys (missing and unexpected keys are listed) with the expected shapes (each mismatch names the key and
 * both shapes). Nothing is copied when any check fails. Layers must not be merged.
 */
export async function loadLoraAdapter(model: Module, dir: string, opts: Pick<LoraOptions, 'fused' | 'rng'> = {}): Promise<LoadedAdapter> {
  const file = await readAdapterConfig(dir);
  const current = loraConfigOf(model);
  let applied = false;
  if (current) {
    const diff = sameAdapter(current, file.config);
    if (diff) throw new GraftError(`loadLoraAdapter: ${join(dir, ADAPTER_CONFIG)} does not match the model's adapter (model vs file): ${diff}`);
  } else {
    if (loraLayers(model).length) throw new GraftError('loadLoraAdapter: the model has LoRA layers not made by applyLora');
    applyLora(model, { ...file.config, fused: opts.fused, rng: opts.rng });
    applied = true;
  }
  const merged = loraLayers(model).find(([, l]) => l.merged);
  if (merged) throw new GraftError(`loadLoraAdapter: layer '${merged[0]}' is merged; unmerge before loading new adapter weights`);
  const expected = adapterTensors(model);
  const st = await SafetensorsFile.open(join(dir, ADAPTER_WEIGHTS));
  try {
    const names = st.names;
    const inFile = new Set(names);
    const missing = [...expected.keys()].filter((k) => !inFile.has(k));
    // BatchNorm's num_batches_tracked (in a module to save) is PyTorch bookkeeping graft does not keep
    const unexpected = names.filter((k) => !expected.has(k) && !k.endsWith('.num_batches_tracked'));
    if (missing.length || unexpected.length) {
      const list = (title: string, ks: string[]) => (ks.length ? `\n  ${title} (${ks.length}): ${ks.join(', ')}` : '');
      throw new CheckpointError(`loadLoraAdapter: ${st.path} does not hold the model's adapter keys${list('missing', missing)}${list('unexpected', unexpected)}`);
    }
    const problems: string[] = [];
    for (const [k, t] of expected) {
      const s = st.info(k).shape;
      if (s.length !== t.rank || s.some((d, i) => d !== t.shape[i])) problems.push(`  ${k}: adapter file has ${fmtShape(s)}, model has ${fmtShape(t.shape)}`);
    }
    if (problems.length) throw new ShapeError(`loadLoraAdapter: shape mismatch for ${problems.length} tensor(s):\n${problems.join('\n')}`);
    for (const [k, t] of expected) {
      const { data, dtype } = await st.read(k);
      if ((t.dtype === 'i32') !== (dtype === 'I32' || dtype === 'I64')) throw new CheckpointError(`loadLoraAdapter: ${k} is ${dtype} in the file but ${t.dtype} in the model`);
      t.write(data);
    }
    return { ...file, keys: names, applied };
  } finally {
    await st.close();
  }
}
