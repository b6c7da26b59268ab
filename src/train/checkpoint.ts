// Training checkpoints: one directory (model.safetensors, optimizer.safetensors, trainer.json) written atomically, validated on load.
//
// Layout under an output folder OUT:
//   OUT/step-000120/{model.safetensors, optimizer.safetensors, trainer.json}
//   OUT/last.json  {"dir": "step-000120"}     (pointers, each replaced by rename)
//   OUT/best.json  {"dir": "step-000080", ...}
// A checkpoint is built in `OUT/step-000120.tmp-<pid>`, every file fsynced, then the directory is renamed
// into place and the folder fsynced, so an interruption leaves either the old state or the new one, never a
// half-written checkpoint under a final name; older checkpoints are only removed after the pointers moved.
import { writeFileAtomic } from '../io/atomic.js';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CheckpointError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, OptimizerStateDict, SavedGroup } from '../optim/optimizer.js';
import type { BaseHyper } from '../optim/groups.js';
import type { SchedulerState } from '../optim/schedulers.js';
import type { LoaderState } from '../data/loader.js';

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_FILE = 'trainer.json';
const FORMAT = 'graft-checkpoint-1';

/** The best monitored value so far and where it was reached. */
export interface BestRecord {
  metric: string;
  value: number;
  step: number;
  dir: string;
}

/** trainer.json: everything except tensors. */
export interface TrainerState {
  format: string;
  /** Optimizer steps done. */
  step: number;
  epoch: number;
  loader: LoaderState;
  scheduler: SchedulerState | null;
  optimizer: { kind: string; stepCount: number; paramSteps: number[]; paramGroups: SavedGroup<BaseHyper>[] };
  best: BestRecord | null;
  /** Evaluations since the best one (early-stopping patience counter). */
  evalsSinceBest: number;
  /** Run configuration (model, data, strategy, hyper-parameters, seeds): what `graft eval` and resume rebuild from. */
  config: Record<string, unknown>;
}

/** A checkpoint read into host memory and validated (nothing touched on the GPU yet). */
export interface LoadedCheckpoint {
  dir: string;
  trainer: TrainerState;
  model: Map<string, { shape: number[]; data: Float32Array }>;
  optimizer: Map<string, { shape: number[]; data: Float32Array }>;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export { writeFileAtomic };

async function tensorsToHost(entries: Iterable<[string, Tensor]>): Promise<[string, TensorToWrite][]> {
  const out: [string, TensorToWrite][] = [];
  for (const [k, t] of entries) out.push([k, { shape: [...t.shape], data: await t.read() }]);
  return out;
}

export interface SaveParts {
  model: Module;
  optimizer: { stateDict(): OptimizerStateDict<BaseHyper> } | null;
  trainer: Omit<TrainerState, 'format' | 'optimizer'>;
}

/**
 * Save a checkpoint as directory `dir` (replacing one already there only after the new one is complete).
 * Reads tensors back from the GPU; call between steps.
 */
export async function saveCheckpoint(dir: string, parts: SaveParts): Promise<void> {
  const final = resolve(dir);
  const tmp = `${final}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const sd = parts.optimizer?.stateDict();
    const optState: TrainerState['optimizer'] = sd
      ? { kind: sd.kind, stepCount: sd.stepCount, paramSteps: sd.paramSteps, paramGroups: sd.paramGroups.map((g) => ({ ...g })) }
      : { kind: 'none', stepCount: 0, paramSteps: [], paramGroups: [] };
    await writeSafetensors(join(tmp, MODEL_FILE), await tensorsToHost(parts.model.stateDict()), { format: FORMAT });
    const optTensors = sd ? Object.entries(sd.state) : [];
    const host = await tensorsToHost(optTensors);
    for (const [, t] of optTensors) t.dispose();
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), host, { format: FORMAT });
    const state: TrainerState = { format: FORMAT, ...parts.trainer, optimizer: optState };
    await writeFileAtomic(join(tmp, TRAINER_FILE), JSON.stringify(state, null, 1));
    await fsyncPath(tmp);
    if (existsSync(final)) {
      const old = `${final}.old-${process.pid}`;
      await rename(final, old);
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
    } else await rename(tmp, final);
    await fsyncPath(dirname(final));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

/** Point OUT/<name>.json (name 'last' or 'best') at checkpoint folder `dir` (a child of OUT), by rename. */
export async function setPointer(out: string, name: 'last' | 'best', dir: string, extra: Record<string, unknown> = {}): Promise<void> {
  await writeFileAtomic(join(out, `${name}.json`), JSON.stringify({ dir: basename(dir), ...extra }) + '\n');
}

/** The checkpoint folder a pointer names, or null when there is no pointer. */
export async function readPointer(out: string, name: 'last' | 'best'): Promise<string | null> {
  const p = join(out, `${name}.json`);
  if (!existsSync(p)) return null;
  let v: unknown;
  try {
    v = JSON.parse(await readFile(p, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  const d = (v as { dir?: unknown }).dir;
  if (typeof d !== 'string' || d.includes('/') || d.includes('..')) throw new CheckpointError(`${p}: 'dir' must be a folder name`);
  return join(out, d);
}

/**
 * A path given to --resume / --checkpoint: a checkpoint folder itself (holds trainer.json), or an output folder
 * whose last.json (or `which`.json) names one.
 */
export async function resolveCheckpointDir(path: string, which: 'last' | 'best' = 'last'): Promise<string> {
  const p = resolve(path);
  let st;
  try {
    st = await stat(p);
  } catch {
    throw new CheckpointError(`checkpoint ${path} does not exist`);
  }
  if (!st.isDirectory()) throw new CheckpointError(`checkpoint ${path} is not a directory`);
  if (existsSync(join(p, TRAINER_FILE))) return p;
  const ptr = (await readPointer(p, which)) ?? (which === 'best' ? await readPointer(p, 'last') : null);
  if (!ptr) throw new CheckpointError(`${path} holds neither ${TRAINER_FILE} nor a ${which}.json pointer`);
  return ptr;
}

/** Checkpoint folders (step-*) in OUT, oldest first. */
export async function listCheckpoints(out: string): Promise<string[]> {
  if (!existsSync(out)) return [];
  return (await readdir(out)).filter((n) => /^step-\d+$/.test(n)).sort().map((n) => join(out, n));
}

/** Remove checkpoint folders other than the `keepLast` newest and those in `protect`. */
export async function pruneCheckpoints(out: string, keepLast: number, protect: readonly string[]): Promise<void> {
  const all = await listCheckpoints(out);
  const keep = new Set([...all.slice(Math.max(0, all.length - keepLast)), ...protect.map((p) => resolve(p))]);
  for (const d of all) if (!keep.has(resolve(d))) await rm(d, { recursive: true, force: true });
}

async function readAll(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of f.names) {
      const t = await f.read(name);
      out.set(name, { shape: t.shape, data: t.data });
    }
    return out;
  } finally {
    await f.close();
  }
}

function checkTrainerJson(v: unknown, file: string): TrainerState {
  const s = v as Partial<TrainerState>;
  const bad = (what: string): never => {
    throw new CheckpointError(`${file}: ${what}`);
  };
  if (!s || typeof s !== 'object') bad('not a JSON object');
  if (s.format !== FORMAT) bad(`format is ${JSON.stringify(s.format)}, expected '${FORMAT}'`);
  if (!Number.isInteger(s.step) || s.step! < 0) bad(`'step' must be a non-negative integer`);
  if (!Number.isInteger(s.epoch) || s.epoch! < 0) bad(`'epoch' must be a non-negative integer`);
  const l = s.loader;
  if (!l || !Number.isInteger(l.epoch) || !Number.isInteger(l.index) || !Number.isInteger(l.seed)) bad(`'loader' must be {epoch, index, seed}`);
  const o = s.optimizer;
  if (!o || typeof o.kind !== 'string' || !Array.isArray(o.paramSteps) || !Array.isArray(o.paramGroups)) bad(`'optimizer' is malformed`);
  if (!s.config || typeof s.config !== 'object') bad(`'config' must be an object`);
  return s as TrainerState;
}

/** Read and validate a checkpoint folder (throws CheckpointError naming the file). */
export async function readCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const d = resolve(dir);
  const tf = join(d, TRAINER_FILE);
  let text: string;
  try {
    text = await readFile(tf, 'utf8');
  } catch {
    throw new CheckpointError(`${tf} is missing: not a checkpoint folder (or an incomplete one)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${tf}: not valid JSON (${(e as Error).message})`);
  }
  const trainer = checkTrainerJson(json, tf);
  const model = await readAll(join(d, MODEL_FILE));
  const optimizer = await readAll(join(d, OPTIMIZER_FILE));
  return { dir: d, trainer, model, optimizer };
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Copy checkpoint weights into `model`; every key and shape is checked before anything is written. */
export function restoreModel(rt: Runtime, model: Module, ck: LoadedCheckpoint): void {
  const file = join(ck.dir, MODEL_FILE);
  const own = model.stateDict();
  for (const [k, t] of own) {
    const s = ck.model.get(k);
    if (!s) throw new CheckpointError(`${file}: tensor '${k}' is missing (model has ${shapeStr(t.shape)})`);
    if (s.shape.length !== t.shape.length || s.shape.some((v, i) => v !== t.shape[i])) {
      throw new CheckpointError(`${file}: tensor '${k}' has shape ${shapeStr(s.shape)}, model has ${shapeStr(t.shape)}`);
    }
  }
  for (const k of ck.model.keys()) if (!own.has(k)) throw new CheckpointError(`${file}: unexpected tensor '${k}' (not in the model)`);
  const dict = new Map<string, Tensor>();
  for (const [k, t] of own) dict.set(k, Tensor.from(rt, ck.model.get(k)!.data, t.shape, t.dtype === 'i32' ? 'i32' : 'f32'));
  try {
    model.loadStateDict(dict);
  } finally {
    for (const t of dict.values()) t.dispose();
  }
}

/** Restore optimizer state (hyper-parameters, step counts, state tensors) saved with the checkpoint. */
export function restoreOptimizer<H extends BaseHyper>(rt: Runtime, opt: Optimizer<H>, ck: LoadedCheckpoint): void {
  const file = join(ck.dir, OPTIMIZER_FILE);
  const o = ck.trainer.optimizer;
  if (o.kind !== opt.kind) throw new CheckpointError(`${join(ck.dir, TRAINER_FILE)}: optimizer is '${o.kind}', this run uses '${opt.kind}'`);
  const state: Record<string, Tensor> = {};
  for (const [k, v] of ck.optimizer) {
    const idx = Number(k.split('.')[0]);
    const p = opt.params[idx];
    if (!p) throw new CheckpointError(`${file}: state '${k}' refers to parameter ${idx}, the optimizer has ${opt.params.length}`);
    if (v.data.length !== p.size) throw new CheckpointError(`${file}: state '${k}' has shape ${shapeStr(v.shape)}, parameter is ${shapeStr(p.shape)}`);
    state[k] = Tensor.from(rt, v.data, p.shape);
  }
  const sd: OptimizerStateDict<H> = {
    kind: o.kind,
    stepCount: o.stepCount,
    paramSteps: o.paramSteps,
    paramGroups: o.paramGroups as SavedGroup<H>[],
    state,
  };
  try {
    opt.loadStateDict(sd);
  } catch (e) {
    throw new CheckpointError(`${file}: ${(e as Error).message}`);
  } finally {
    for (const t of Object.values(state)) t.dispose();
  }
}

/** Write `text` next to a checkpoint (e.g. a metrics summary), atomically. */
export async function writeJson(path: string, v: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp-${process.pid}`, JSON.stringify(v, null, 1));
  await rename(`${path}.tmp-${process.pid}`, path);
}
