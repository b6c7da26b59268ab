// Learning-rate schedulers: each group's lr = its base lr × factor(step); PyTorch LambdaLR/StepLR stepping, HF transformers' warm-up schedules.
import { GraftError } from '../runtime/errors.js';
import { isCapturing, onReplay } from '../runtime/capture.js';

/** What a scheduler drives: any optimizer's groups (lr is written, initialLr is the base). */
export interface LrGroups {
  readonly paramGroups: readonly { lr: number; initialLr: number }[];
}

export interface SchedulerState {
  /** PyTorch's last_epoch: scheduler.step() calls since construction (0 right after it). */
  lastStep: number;
  baseLrs: number[];
}

/** Multiplier of group `group`'s base lr at scheduler step `step` (≥ 0). */
export type LrFactor = (step: number, group: number) => number;

/**
 * lr = baseLr × factor(step, group), with PyTorch's stepping rule: construction applies
 * factor(0) (so a warm-up starts at lr 0), and each `step()` — called after `optimizer.step()` —
 * advances the count and sets every group's lr. Base lrs are the groups' `initialLr` (their lr
 * when the optimizer was built), so schedules compose with per-group (discriminative) lrs.
 */
export class LRScheduler {
  readonly baseLrs: number[];
  lastStep = 0;

  constructor(
    readonly optimizer: LrGroups,
    readonly factor: LrFactor,
  ) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr);
    this.apply();
  }

  /** Advance one step and set the learning rates (repeated by every replay when called inside a step capture). */
  step(): void {
    this.lastStep++;
    this.apply();
    if (isCapturing()) onReplay(() => this.step());
  }

  /** The lrs set by the last step (PyTorch's get_last_lr()). */
  lastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): SchedulerState {
    return { lastStep: this.lastStep, baseLrs: [...this.baseLrs] };
  }

  /** Restore the step count and base lrs, and set the lrs they imply. */
  loadStateDict(s: SchedulerState): void {
    if (s.baseLrs.length !== this.baseLrs.length) {
      throw new GraftError(`scheduler.loadStateDict: ${s.baseLrs.length} base lrs for ${this.baseLrs.length} groups`);
    }
    this.lastStep = s.lastStep;
    s.baseLrs.forEach((v, i) => (this.baseLrs[i] = v));
    this.apply();
  }

  private apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => {
      const f = this.factor(this.lastStep, i);
      if (!Number.isFinite(f)) throw new GraftError(`scheduler: factor ${f} at step ${this.lastStep} for group ${i}`);
      g.lr = this.baseLrs[i]! * f;
    });
  }
}

/** lr = baseLr × fn(step) (torch.optim.lr_scheduler.LambdaLR); one function for all groups or one per group. */
export class LambdaLR extends LRScheduler {
  constructor(optimizer: LrGroups, fn: ((step: number) => number) | readonly ((step: number) => number)[]) {
    const n = optimizer.paramGroups.length;
    const fns = typeof fn === 'function' ? Array.from({ length: n }, () => fn) : fn;
    if (fns.length !== n) throw new GraftError(`LambdaLR: ${fns.length} functions for ${n} groups`);
    super(optimizer, (step, group) => fns[group]!(step));
  }
}

/** lr = baseLr × gamma^floor(step / stepSize) (torch.optim.lr_scheduler.StepLR, closed form). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: LrGroups, stepSize: number, gamma = 0.1) {
    if (!Number.isInteger(stepSize) || stepSize < 1) throw new GraftError(`StepLR: stepSize must be a positive integer, got ${stepSize}`);
    super(optimizer, (step) => gamma ** Math.floor(step / stepSize));
    this.stepSize = stepSize;
    this.gamma = gamma;
  }
}

/** HF get_linear_schedule_with_warmup's factor: step/warmup, then linear decay to 0 at totalSteps. */
export function linearWarmupFactor(step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}

/** HF get_cosine_schedule_with_warmup's factor: step/warmup, then 0.5·(1 + cos(π·2·numCycles·progress)), floored at 0. */
export function cosineWarmupFactor(step: number, warmupSteps: number, totalSteps: number, numCycles = 0.5): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
}

function checkSteps(what: string, warmupSteps: number, totalSteps: number): void {
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new GraftError(`${what}: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 0) throw new GraftError(`${what}: totalSteps must be an integer >= 0, got ${totalSteps}`);
}

/** Linear warm-up from 0 over `warmupSteps`, then linear decay to 0 at `totalSteps` (HF get_linear_schedule_with_warmup). */
export function linearWarmupDecay(optimizer: LrGroups, warmupSteps: number, totalSteps: number): LambdaLR {
  checkSteps('linearWarmupDecay', warmupSteps, totalSteps);
  return new LambdaLR(optimizer, (s) => linearWarmupFactor(s, warmupSteps, totalSteps));
}

/** Linear warm-up, then cosine decay to 0 at `totalSteps` (HF get_cosine_schedule_with_warmup; numCycles 0.5 = half a cosine). */
export function cosineWarmupDecay(optimizer: LrGroups, warmupSteps: number, totalSteps: number, numCycles = 0.5): LambdaLR {
  checkSteps('cosineWarmupDecay', warmupSteps, totalSteps);
  return new LambdaLR(optimizer, (s) => cosineWarmupFactor(s, warmupSteps, totalSteps, numCycles));
}

/** Constant lr (HF get_constant_schedule); with `warmupSteps`, a linear warm-up first (get_constant_schedule_with_warmup). */
export function constantLr(optimizer: LrGroups, warmupSteps = 0): LambdaLR {
  checkSteps('constantLr', warmupSteps, 0);
  return new LambdaLR(optimizer, (s) => (s < warmupSteps ? s / Math.max(1, warmupSteps) : 1));
}
