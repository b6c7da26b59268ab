// Fusion switches: every kernel fusion can be turned on or off (API, env GRAFT_FUSE_<NAME>, CLI --fuse) and measured.
import { GraftError } from './errors.js';

/** name → what is fused. Defaults live in FUSION_DEFAULTS (set by measurement, see `graft bench fusion`). */
export const FUSIONS = {
  'matmul-epilogue': 'bias + GELU/ReLU in the matmul epilogue (vs separate elementwise kernels); the residual-add epilogue belongs to lora and bn-fold',
  lora: 'LoRA xWᵀ + s·(xAᵀ)Bᵀ in one kernel, backward without dW (vs separate matmuls)',
  'layernorm-residual': 'LayerNorm(x + residual) in one kernel (vs add, then layer norm)',
  attention: 'scores → mask → softmax → weighted sum in one kernel, and its backward (vs matmul, softmax, matmul)',
  'cross-entropy': 'log-softmax + NLL (+ smoothing) in one kernel, and its backward (vs log-softmax, gather, mean)',
  'adamw-multi-tensor': 'one AdamW dispatch per flat arena chunk (vs one dispatch per parameter)',
  'bn-fold': 'BatchNorm folded into the preceding conv for frozen / eval stages (vs conv, then batch norm)',
} as const;
export type FusionName = keyof typeof FUSIONS;
export const FUSION_NAMES = Object.keys(FUSIONS) as FusionName[];

/**
 * Defaults when neither the API nor the environment says otherwise, set by measurement (`graft bench fusion`,
 * lavapipe / llvmpipe, 2-core machine): on where the median fused/unfused speed-up over the runs is above 1, off
 * otherwise. Re-measured 2026-11-22 on a quiet machine after the element-wise kernels stopped evaluating every op
 * (three runs of matmul-epilogue and bn-fold, one of the rest; GPU-timestamp): matmul-epilogue 0.99 (linear+ReLU
 * fwd+bwd; 0.91–1.05, noise) / 1.14 (GELU inference), lora 1.08, layernorm-residual 1.02, attention 0.21 (the
 * flash kernel is slow on a CPU adapter), cross-entropy 3.9, adamw-multi-tensor 1.10, bn-fold 1.14 (1.14–1.20;
 * 0.92 in an earlier, heavily loaded measurement, when it was off). Results within about ±5% are inside this
 * machine's noise. On another adapter, run the bench again and override with GRAFT_FUSE_<NAME> or --fuse.
 */
export const FUSION_DEFAULTS: Record<FusionName, boolean> = {
  'matmul-epilogue': true,
  lora: true,
  'layernorm-residual': true,
  attention: false,
  'cross-entropy': true,
  'adamw-multi-tensor': true,
  'bn-fold': true,
};

const overrides = new Map<FusionName, boolean>();

/** GRAFT_FUSE_LAYERNORM_RESIDUAL etc. */
export function fusionEnvVar(name: FusionName): string {
  return `GRAFT_FUSE_${name.toUpperCase().replace(/-/g, '_')}`;
}

function envValue(name: FusionName): boolean | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const key = fusionEnvVar(name);
  const v = env?.[key];
  if (v === undefined || v === '') return undefined;
  if (v === '1' || v === 'true' || v === 'on') return true;
  if (v === '0' || v === 'false' || v === 'off') return false;
  throw new GraftError(`${key} must be 0 or 1, got '${v}'`);
}

export function assertFusionName(name: string): asserts name is FusionName {
  if (!(name in FUSIONS)) throw new GraftError(`unknown fusion '${name}' (known: ${FUSION_NAMES.join(', ')})`);
}

/** The value set by the API or the environment, or undefined when the fusion runs on its default. */
export function fusionExplicit(name: FusionName): boolean | undefined {
  return overrides.get(name) ?? envValue(name);
}

/** Is this fusion on? API override, else env GRAFT_FUSE_<NAME>, else the default. */
export function fusionEnabled(name: FusionName): boolean {
  return overrides.get(name) ?? envValue(name) ?? FUSION_DEFAULTS[name];
}

/** Force a fusion on/off for this process; `undefined` clears the override. */
export function setFusion(name: FusionName, on: boolean | undefined): void {
  assertFusionName(name);
  if (on === undefined) overrides.delete(name);
  else overrides.set(name, on);
}

/** Run `fn` with some fusions forced, restoring the previous overrides afterwards (also when `fn` throws or rejects). */
export function withFusion<T>(set: Partial<Record<FusionName, boolean>>, fn: () => T): T {
  const saved = new Map(overrides);
  for (const [k, v] of Object.entries(set)) {
    assertFusionName(k);
    if (v !== undefined) overrides.set(k, v);
  }
  const restore = () => {
    overrides.clear();
    for (const [k, v] of saved) overrides.set(k, v);
  };
  let out: T;
  try {
    out = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (out instanceof Promise) return out.finally(restore) as T;
  restore();
  return out;
}

/** Parse a CLI list 'attention=0,lora=1' (a bare name means on) into overrides. */
export function parseFusionList(s: string): Partial<Record<FusionName, boolean>> {
  const out: Partial<Record<FusionName, boolean>> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name = '', val] = part.split('=');
    assertFusionName(name);
    if (val === undefined || val === '1' || val === 'on' || val === 'true') out[name] = true;
    else if (val === '0' || val === 'off' || val === 'false') out[name] = false;
    else throw new GraftError(`--fuse ${part}: value must be 0 or 1`);
  }
  return out;
}

/** Current state of every fusion (for bench reports). */
export function fusionState(): Record<FusionName, boolean> {
  return Object.fromEntries(FUSION_NAMES.map((n) => [n, fusionEnabled(n)])) as Record<FusionName, boolean>;
}
