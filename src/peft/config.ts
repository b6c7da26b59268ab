// LoRA hyper-parameters with PEFT's names and defaults, validation, scaling (alpha/r or rsLoRA's alpha/√r), and the fused switch.
import { GraftError } from '../runtime/errors.js';
import { fusionEnabled } from '../runtime/fusion.js';
import type { Rng } from '../autograd/random.js';

/** How LoRA weights start (PEFT's init_lora_weights): true / 'kaiming' = A kaiming-uniform(a=√5), B zero (the adapter starts as identity); 'gaussian' = A ~ N(0, 1/r), B zero; false = both keep nn.Linear / nn.Conv2d's default init (B non-zero). */
export type LoraInit = boolean | 'kaiming' | 'gaussian';

/** Options of applyLora (PEFT's LoraConfig, camelCase). */
export interface LoraOptions {
  /** Rank (PEFT default 8). */
  r?: number;
  /** lora_alpha (PEFT default 8). */
  alpha?: number;
  /** lora_dropout on the adapter branch's input (default 0). */
  dropout?: number;
  /**
   * Modules to adapt: a list matched like PEFT (a name equal to an entry, or ending in '.' + entry, e.g.
   * ['query', 'value'] or ['attention.self.query']), or a regular expression that must match the whole
   * module name (PEFT's string form, re.fullmatch). A string is taken as such a regular expression.
   */
  targetModules: readonly string[] | RegExp | string;
  /** rsLoRA: scaling alpha/√r instead of alpha/r. */
  useRslora?: boolean;
  /** Default true ('kaiming'). */
  initLoraWeights?: LoraInit;
  /** Modules trained in full and saved with the adapter (e.g. a classifier head), matched like a target list. */
  modulesToSave?: readonly string[] | null;
  /** Fused kernel (true) or separate autograd ops (false); default: env GRAFT_FUSE_LORA (0/1), else true. */
  fused?: boolean;
  /** Generator for LoRA weight init and dropout seeds (default: the process-wide one). */
  rng?: Rng;
}

/** The validated configuration of an applied adapter (what adapter_config.json records). */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** A list (suffix match) or a regular-expression source (full match). */
  targetModules: string[] | string;
  useRslora: boolean;
  initLoraWeights: boolean | 'gaussian';
  modulesToSave: string[] | null;
}

/** PEFT's scaling of the adapter branch: alpha / r, or alpha / √r with rsLoRA. */
export function loraScaling(r: number, alpha: number, useRslora = false): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Validate options and fill PEFT's defaults. */
export function resolveLoraConfig(o: LoraOptions): LoraConfig {
  const r = o.r ?? 8;
  const alpha = o.alpha ?? 8;
  const dropout = o.dropout ?? 0;
  if (!Number.isInteger(r) || r < 1) throw new GraftError(`LoRA: r must be a positive integer, got ${r}`);
  if (!Number.isFinite(alpha)) throw new GraftError(`LoRA: alpha must be a finite number, got ${alpha}`);
  if (!(dropout >= 0 && dropout < 1)) throw new GraftError(`LoRA: dropout must be in [0, 1), got ${dropout}`);
  const t = o.targetModules;
  let targetModules: string[] | string;
  if (t instanceof RegExp) {
    if (t.flags.replace('g', '') !== '') throw new GraftError(`LoRA: targetModules ${String(t)}: flags other than 'g' cannot be saved in a PEFT config`);
    targetModules = t.source;
  } else if (typeof t === 'string') targetModules = t;
  else {
    if (!Array.isArray(t) || !t.length || t.some((s) => typeof s !== 'string' || !s)) {
      throw new GraftError(`LoRA: targetModules must be a non-empty list of module names or a regular expression, got ${JSON.stringify(t)}`);
    }
    targetModules = [...t];
  }
  if (typeof targetModules === 'string') {
    try {
      new RegExp(targetModules);
    } catch (e) {
      throw new GraftError(`LoRA: targetModules '${targetModules}' is not a valid regular expression (${(e as Error).message})`);
    }
  }
  const init = o.initLoraWeights ?? true;
  const initLoraWeights = init === 'kaiming' ? true : init;
  if (initLoraWeights !== true && initLoraWeights !== false && initLoraWeights !== 'gaussian') {
    throw new GraftError(`LoRA: initLoraWeights must be true, false, 'kaiming' or 'gaussian', got ${JSON.stringify(init)}`);
  }
  const mts = o.modulesToSave;
  if (mts && (!Array.isArray(mts) || mts.some((s) => typeof s !== 'string' || !s))) {
    throw new GraftError(`LoRA: modulesToSave must be a list of module names, got ${JSON.stringify(mts)}`);
  }
  return {
    r,
    alpha,
    dropout,
    targetModules,
    useRslora: !!o.useRslora,
    initLoraWeights,
    modulesToSave: mts && mts.length ? [...mts] : null,
  };
}

/** PEFT's module-name test: a list entry equal to the name or a '.'-separated suffix of it; a pattern matching the whole name. */
export function moduleMatcher(targets: readonly string[] | string): (name: string) => boolean {
  if (typeof targets === 'string') {
    const re = new RegExp(`^(?:${targets})$`);
    return (name) => re.test(name);
  }
  return (name) => targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/** The fused default: fusionEnabled('lora') (setFusion / withFusion, env GRAFT_FUSE_LORA=0 or 1, else FUSION_DEFAULTS). */
export function fusedByDefault(): boolean {
  return fusionEnabled('lora');
}
