// SGD with momentum, dampening, Nesterov, coupled weight decay and maximize (PyTorch 1.13 torch.optim.SGD), one fused dispatch per arena chunk (shaders/sgd.wgsl).
import src from '../../shaders/sgd.wgsl';
import type { FlatArena } from '../runtime/arena.js';
import { GraftError } from '../runtime/errors.js';
import type { Constants } from '../runtime/pipelines.js';
import { checkRange, type BaseHyper, type GroupState, type ParamsArg } from './groups.js';
import { Optimizer, type HyperWords, type OptimizerOptions, type StateSlot } from './optimizer.js';

export interface SGDHyper extends BaseHyper {
  lr: number;
  /** Default 0 (no momentum buffer). */
  momentum: number;
  /** Default 0. */
  dampening: number;
  /** Coupled L2 penalty added to the gradient (d = g + wd·p). Default 0. */
  weightDecay: number;
  /** Default false; needs momentum > 0 and dampening 0. */
  nesterov: boolean;
  /** Ascend instead of descend. Default false. */
  maximize: boolean;
}

export type SGDOptions = OptimizerOptions & Partial<SGDHyper> & { lr: number };

/**
 * Per parameter, with d = gradScale·clip·g (negated if maximize):
 *   d += wd·p;  buf = first ? d : momentum·buf + (1 − dampening)·d;  d = nesterov ? d + momentum·buf : buf;  p −= lr·d
 * where "first" means the parameter has no momentum buffer yet (PyTorch's clone-on-first-use rule).
 */
export class SGD extends Optimizer<SGDHyper> {
  readonly kind = 'sgd';
  protected readonly kernel = { name: 'sgd', code: src };
  private momentumArena: FlatArena | null = null;
  /** Whether each parameter's momentum buffer has been initialised. */
  private readonly bufInit: boolean[];

  constructor(params: ParamsArg<SGDHyper>, opts: SGDOptions) {
    const { maxChunkBytes, includeFrozen, ...rest } = opts;
    const defaults: SGDHyper = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...rest };
    super('SGD', params, defaults, { maxChunkBytes, includeFrozen });
    this.bufInit = this.params.map(() => false);
    this.ensureState();
  }

  protected validateGroup(g: SGDHyper, where: string): void {
    checkRange(where, 'lr', g.lr, 0);
    checkRange(where, 'momentum', g.momentum, 0);
    checkRange(where, 'weightDecay', g.weightDecay, 0);
    checkRange(where, 'dampening', g.dampening, -Infinity);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new GraftError(`${where}: Nesterov momentum requires a momentum and zero dampening`);
  }

  protected override ensureState(loading?: readonly string[]): void {
    if (this.momentumArena) return;
    const needed = this.paramGroups.some((g) => g.momentum !== 0) || !!loading?.some((k) => k.endsWith('.momentum_buffer'));
    if (needed) this.momentumArena = this.flat.newState();
  }

  protected packGroup(g: GroupState<SGDHyper>, w: HyperWords, at: number): void {
    w.f.set([g.lr, g.weightDecay, g.momentum, 1 - g.dampening, g.nesterov ? 1 : 0, g.maximize ? 1 : 0, 0, 0], at);
  }

  protected packParam(i: number, g: GroupState<SGDHyper>, _step: number, w: HyperWords, at: number): void {
    w.u[at + 1] = this.bufInit[i] ? 0 : 1;
    if (g.momentum !== 0) this.bufInit[i] = true;
  }

  protected stateSlots(): StateSlot[] {
    return [{ name: 'momentum_buffer', arena: this.momentumArena }];
  }

  protected constants(): Constants {
    return { HAS_BUF: this.momentumArena !== null };
  }

  protected hasState(_name: string, i: number): boolean {
    return this.bufInit[i]!;
  }

  protected onLoadState(_name: string, i: number, present: boolean): void {
    this.bufInit[i] = present;
  }
}
