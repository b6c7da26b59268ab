// Parameter groups (PyTorch style): per-group hyper-parameters (discriminative learning rates) over lists of tensors.
import { GraftError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';

/** Hyper-parameters every optimizer has in every group. */
export interface BaseHyper {
  lr: number;
  weightDecay: number;
}

/** A group as the user passes it: its tensors plus overrides of the optimizer's defaults. */
export type ParamGroup<H extends BaseHyper = BaseHyper> = { params: readonly Tensor[]; name?: string } & Partial<H>;

/** What optimizers accept: a flat list (one group with the defaults) or a list of groups. */
export type ParamsArg<H extends BaseHyper = BaseHyper> = readonly Tensor[] | readonly ParamGroup<H>[];

/**
 * A live group: its hyper-parameters (mutable: set `lr` directly or through a scheduler; the next
 * `step()` reads them), its trainable tensors, its name and the lr it started with.
 */
export type GroupState<H extends BaseHyper> = H & {
  readonly name: string;
  readonly params: readonly Tensor[];
  /** The group's lr at construction (PyTorch's `initial_lr`): schedulers scale it. */
  initialLr: number;
};

function isTensorList<H extends BaseHyper>(p: ParamsArg<H>): p is readonly Tensor[] {
  return p.length === 0 || p[0] instanceof Tensor;
}

/**
 * Normalise `params` into groups with every hyper-parameter filled in from `defaults`. Frozen
 * tensors (requiresGrad false now) are dropped unless `includeFrozen`. Throws on duplicates,
 * non-f32 tensors, unknown group keys and an empty result.
 */
export function makeGroups<H extends BaseHyper>(
  what: string,
  params: ParamsArg<H>,
  defaults: H,
  includeFrozen: boolean,
): GroupState<H>[] {
  const list: readonly ParamGroup<H>[] = isTensorList(params) ? [{ params } as ParamGroup<H>] : params;
  const seen = new Set<Tensor>();
  const known = new Set<string>(['params', 'name', ...Object.keys(defaults)]);
  const groups = list.map((g, gi) => {
    if (!g || !Array.isArray(g.params)) throw new GraftError(`${what}: group ${gi} has no params list`);
    for (const k of Object.keys(g)) {
      if (!known.has(k)) throw new GraftError(`${what}: group ${gi} has unknown option '${k}' (known: ${[...known].join(', ')})`);
    }
    const kept: Tensor[] = [];
    for (const t of g.params) {
      if (!(t instanceof Tensor)) throw new GraftError(`${what}: group ${gi} holds a non-tensor parameter`);
      if (seen.has(t)) throw new GraftError(`${what}: ${t} appears more than once in the parameter groups`);
      seen.add(t);
      if (t.disposed) throw new GraftError(`${what}: ${t} was disposed`);
      if (!t.requiresGrad && !includeFrozen) continue;
      if (t.dtype !== 'f32') throw new GraftError(`${what}: ${t} is ${t.dtype}; optimizers update f32 parameters only`);
      kept.push(t);
    }
    const hyper = { ...defaults };
    for (const k of Object.keys(defaults) as (keyof H)[]) {
      const v = g[k];
      if (v !== undefined) hyper[k] = (Array.isArray(v) ? [...v] : v) as H[keyof H];
    }
    const state: GroupState<H> = { ...hyper, name: g.name ?? `group${gi}`, params: kept, initialLr: hyper.lr };
    return state;
  });
  if (!groups.some((g) => g.params.length > 0)) throw new GraftError(`${what}: got an empty list of trainable parameters`);
  return groups;
}

/** Throw unless `v` is a finite number in [lo, hi] (hiOpen excludes hi). */
export function checkRange(what: string, name: string, v: number, lo: number, hi = Infinity, hiOpen = false): void {
  const ok = typeof v === 'number' && Number.isFinite(v) && v >= lo && (hiOpen ? v < hi : v <= hi);
  if (!ok) throw new GraftError(`${what}: invalid ${name} ${String(v)} (expected ${lo} <= ${name} ${hiOpen ? '<' : '<='} ${hi})`);
}
