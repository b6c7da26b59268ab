// applyLora: wrap the Linear / Conv2d modules named by PEFT-style patterns in place, freeze the rest; merge, unmerge, unload.
import { GraftError } from '../runtime/errors.js';
import { Module } from '../nn/module.js';
import { Conv2d, Linear } from '../nn/layers.js';
import { LoraLinear } from './lora-linear.js';
import { LoraConv2d } from './lora-conv.js';
import { moduleMatcher, resolveLoraConfig, type LoraConfig, type LoraOptions } from './config.js';

export type LoraLayer = LoraLinear | LoraConv2d;

/** What applyLora did. */
export interface LoraApplied {
  config: LoraConfig;
  /** Names of the wrapped modules. */
  targets: string[];
  /** Names of the modules trained in full (modulesToSave). */
  modulesToSave: string[];
  /** Elements that require grad after applying, and in the whole model. */
  trainableParams: number;
  totalParams: number;
}

interface LoraModelState {
  config: LoraConfig;
  modulesToSave: string[];
}

const states = new WeakMap<Module, LoraModelState>();

/** The configuration applyLora recorded on `model`, or null. */
export function loraConfigOf(model: Module): LoraConfig | null {
  return states.get(model)?.config ?? null;
}

/** Names of the modules saved in full with the adapter. */
export function modulesToSaveOf(model: Module): string[] {
  return [...(states.get(model)?.modulesToSave ?? [])];
}

/** Every LoRA-wrapped layer of `model` as [dotted name, layer]. */
export function loraLayers(model: Module): [string, LoraLayer][] {
  return model.namedModules().filter((e): e is [string, LoraLayer] => e[1] instanceof LoraLinear || e[1] instanceof LoraConv2d);
}

/** Replace every reference to `child` held by a module of `model` (attributes and module arrays) with `next`. */
function replaceChild(model: Module, child: Module, next: Module): number {
  let n = 0;
  for (const [, parent] of model.namedModules()) {
    for (const [key, c] of parent.namedChildren()) {
      if (c !== child) continue;
      const dot = key.lastIndexOf('.');
      if (dot >= 0) {
        const list: unknown = Reflect.get(parent, key.slice(0, dot));
        if (Array.isArray(list)) list[Number(key.slice(dot + 1))] = next;
      } else Reflect.set(parent, key, next);
      n++;
    }
  }
  return n;
}

const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Add LoRA adapters to the modules of `model` named by `opts.targetModules` (PEFT's matching: see
 * LoraOptions), in place: each matching Linear becomes a LoraLinear and each Conv2d a LoraConv2d, keeping
 * the base parameter names. Then every parameter is frozen except the adapters' lora_A / lora_B weights and
 * the parameters of `modulesToSave` (PEFT's mark_only_lora_as_trainable with bias 'none').
 * Throws when nothing matches (listing the model's Linear / Conv2d names), when a match is neither Linear
 * nor Conv2d, or when the model already has an adapter.
 */
export function applyLora(model: Module, opts: LoraOptions): LoraApplied {
  const config = resolveLoraConfig(opts);
  if (states.has(model) || loraLayers(model).length) throw new GraftError('applyLora: the model already has a LoRA adapter (one adapter per model; unload it first)');
  const match = moduleMatcher(config.targetModules);
  const all = model.namedModules().filter(([name]) => name !== '');
  const targets = all.filter(([name]) => match(name));
  const show = (ts: LoraConfig['targetModules']): string => (typeof ts === 'string' ? `/${ts}/ (whole-name match)` : JSON.stringify(ts));
  if (!targets.length) {
    const candidates = all.filter(([, m]) => m instanceof Linear || m instanceof Conv2d).map(([n]) => n);
    const list = candidates.length > 24 ? `${candidates.slice(0, 24).join(', ')}, … (${candidates.length} in all)` : candidates.join(', ');
    throw new GraftError(`applyLora: targetModules ${show(config.targetModules)} match no module of the model; its Linear/Conv2d modules: ${list || '(none)'}`);
  }
  for (const [name, m] of targets) {
    if (!(m instanceof Linear) && !(m instanceof Conv2d)) {
      throw new GraftError(`applyLora: target '${name}' is a ${m.constructor.name}; LoRA supports Linear and Conv2d modules`);
    }
  }
  const saveMatch = config.modulesToSave ? moduleMatcher(config.modulesToSave) : null;
  const saveNames = saveMatch ? all.filter(([name]) => saveMatch(name)).map(([n]) => n) : [];
  if (config.modulesToSave && !saveNames.length) {
    throw new GraftError(`applyLora: modulesToSave ${JSON.stringify(config.modulesToSave)} match no module of the model`);
  }
  const clash = saveNames.find((s) => targets.some(([t]) => t === s || t.startsWith(`${s}.`) || s.startsWith(`${t}.`)));
  if (clash) throw new GraftError(`applyLora: '${clash}' is both a LoRA target (or contains/is inside one) and in modulesToSave`);
  const layerOpts = {
    r: config.r,
    alpha: config.alpha,
    dropout: config.dropout,
    useRslora: config.useRslora,
    initLoraWeights: config.initLoraWeights,
    fused: opts.fused,
    rng: opts.rng,
  };
  for (const [, m] of targets) {
    const wrapped = m instanceof Linear ? new LoraLinear(m, layerOpts) : new LoraConv2d(m as Conv2d, layerOpts);
    replaceChild(model, m, wrapped);
  }
  // freeze everything, then train the adapters and the modules to save
  const named = new Map(model.namedModules());
  for (const t of model.parameters()) t.requiresGrad = false;
  for (const [, l] of loraLayers(model)) {
    l.lora_A.weight.requiresGrad = true;
    l.lora_B.weight.requiresGrad = true;
  }
  for (const s of saveNames) for (const t of named.get(s)!.parameters()) t.requiresGrad = true;
  states.set(model, { config, modulesToSave: saveNames });
  const params = model.parameters();
  return {
    config,
    targets: targets.map(([n]) => n),
    modulesToSave: saveNames,
    trainableParams: params.filter((t) => t.requiresGrad).reduce((s, t) => s + numelOf(t.shape), 0),
    totalParams: params.reduce((s, t) => s + numelOf(t.shape), 0),
  };
}

function requireLora(model: Module, op: string): [string, LoraLayer][] {
  const layers = loraLayers(model);
  if (!layers.length) throw new GraftError(`${op}: the model has no LoRA layers (call applyLora first)`);
  return layers;
}

/** W += s·B·A in every LoRA layer (forward then skips the adapter branch). */
export function mergeLora(model: Module): void {
  for (const [, l] of requireLora(model, 'mergeLora')) l.merge();
}

/** Undo mergeLora (W −= s·B·A). */
export function unmergeLora(model: Module): void {
  for (const [, l] of requireLora(model, 'unmergeLora')) l.unmerge();
}

/** Turn every adapter branch off (forward = base model) or back on, without merging. */
export function setLoraEnabled(model: Module, enabled: boolean): void {
  for (const [, l] of requireLora(model, 'setLoraEnabled')) l.disabled = !enabled;
}

function unload(model: Module, merge: boolean, op: string): Module {
  for (const [, l] of requireLora(model, op)) {
    if (merge) l.merge();
    else l.unmerge();
    const base = l.baseLayer();
    base.training = l.training;
    replaceChild(model, l, base);
    l.lora_A.dispose();
    l.lora_B.dispose();
  }
  states.delete(model);
  return model;
}

/**
 * PEFT's merge_and_unload: merge every adapter into its base weight and put the original Linear / Conv2d
 * modules back (same weight tensors, now merged); the adapters are freed. Returns `model`.
 * requiresGrad flags stay as applyLora left them.
 */
export function mergeAndUnload(model: Module): Module {
  return unload(model, true, 'mergeAndUnload');
}

/** PEFT's unload: drop the adapters (unmerging first where merged) and restore the original modules. */
export function unloadLora(model: Module): Module {
  return unload(model, false, 'unloadLora');
}
