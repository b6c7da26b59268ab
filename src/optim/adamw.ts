// AdamW with bias correction, decoupled weight decay, optional amsgrad and maximize (PyTorch 1.13 torch.optim.AdamW), one fused dispatch per arena chunk (shaders/adamw.wgsl).
import src from '../../shaders/adamw.wgsl';
import type { FlatArena } from '../runtime/arena.js';
import { GraftError } from '../runtime/errors.js';
import type { Constants } from '../runtime/pipelines.js';
import { checkRange, type BaseHyper, type GroupState, type ParamsArg } from './groups.js';
import { Optimizer, type HyperWords, type OptimizerOptions, type StateSlot } from './optimizer.js';

export interface AdamWHyper extends BaseHyper {
  /** Default 1e-3. */
  lr: number;
  /** Default [0.9, 0.999]. */
  betas: [number, number];
  /** Default 1e-8. */
  eps: number;
  /** Decoupled decay p *= 1 − lr·wd. Default 1e-2 (PyTorch's AdamW default). */
  weightDecay: number;
  /** Ascend instead of descend. Default false. */
  maximize: boolean;
}

export type AdamWOptions = OptimizerOptions & Partial<AdamWHyper> & { amsgrad?: boolean };

/**
 * Per parameter at its step t, with g = gradScale·clip·grad (negated if maximize):
 *   p *= 1 − lr·wd;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;  (amsgrad: v̂ = max(v̂, v))
 *   p −= lr/(1 − β1^t) · m / (sqrt(v̂)/sqrt(1 − β2^t) + eps)
 * with the scalar factors computed in float64 on the CPU each step, as PyTorch does.
 */
export class AdamW extends Optimizer<AdamWHyper> {
  readonly kind = 'adamw';
  readonly amsgrad: boolean;
  protected readonly kernel = { name: 'adamw', code: src };
  private readonly expAvg: FlatArena;
  private readonly expAvgSq: FlatArena;
  private readonly maxExpAvgSq: FlatArena | null;

  constructor(params: ParamsArg<AdamWHyper>, opts: AdamWOptions = {}) {
    const { maxChunkBytes, includeFrozen, amsgrad, ...rest } = opts;
    const defaults: AdamWHyper = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, maximize: false, ...rest };
    super('AdamW', params, defaults, { maxChunkBytes, includeFrozen });
    this.amsgrad = amsgrad ?? false;
    this.expAvg = this.flat.newState();
    this.expAvgSq = this.flat.newState();
    this.maxExpAvgSq = this.amsgrad ? this.flat.newState() : null;
  }

  protected validateGroup(g: AdamWHyper, where: string): void {
    checkRange(where, 'lr', g.lr, 0);
    checkRange(where, 'eps', g.eps, 0);
    checkRange(where, 'weightDecay', g.weightDecay, 0);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) checkRange(where, 'betas', NaN, 0);
    checkRange(where, 'betas[0]', g.betas[0], 0, 1, true);
    checkRange(where, 'betas[1]', g.betas[1], 0, 1, true);
  }

  protected packGroup(g: GroupState<AdamWHyper>, w: HyperWords, at: number): void {
    const [b1, b2] = g.betas;
    w.f.set([1 - g.lr * g.weightDecay, b1, 1 - b1, b2, 1 - b2, g.eps, g.maximize ? 1 : 0, 0], at);
  }

  protected packParam(_i: number, g: GroupState<AdamWHyper>, step: number, w: HyperWords, at: number): void {
    const [b1, b2] = g.betas;
    w.f[at + 1] = g.lr / (1 - b1 ** step);
    w.f[at + 2] = Math.sqrt(1 - b2 ** step);
  }

  protected stateSlots(): StateSlot[] {
    return [
      { name: 'exp_avg', arena: this.expAvg },
      { name: 'exp_avg_sq', arena: this.expAvgSq },
      { name: 'max_exp_avg_sq', arena: this.maxExpAvgSq },
    ];
  }

  protected constants(): Constants {
    return { AMSGRAD: this.amsgrad, PER: 4 };
  }

  protected hasState(_name: string, i: number): boolean {
    return this.paramSteps[i]! > 0;
  }

  protected onLoadState(name: string, i: number, present: boolean): void {
    if (!present && this.paramSteps[i]! > 0) {
      throw new GraftError(`AdamW.loadStateDict: parameter ${i} has taken ${this.paramSteps[i]} steps but its '${name}' is missing`);
    }
  }
}
