// graft.optim: fused multi-tensor optimizers (SGD, AdamW) over flat arenas, parameter groups, LR schedulers, gradient clipping.
export { Optimizer, type OptimizerOptions, type StepOptions, type ClipOptions, type OptimizerStateDict, type SavedGroup } from './optimizer.js';
export { SGD, type SGDHyper, type SGDOptions } from './sgd.js';
export { AdamW, type AdamWHyper, type AdamWOptions } from './adamw.js';
export { clipGradNorm, type GradClipper } from './clip.js';
export type { BaseHyper, ParamGroup, ParamsArg, GroupState } from './groups.js';
export {
  LRScheduler,
  LambdaLR,
  StepLR,
  linearWarmupDecay,
  cosineWarmupDecay,
  constantLr,
  linearWarmupFactor,
  cosineWarmupFactor,
  type LrFactor,
  type LrGroups,
  type SchedulerState,
} from './schedulers.js';
