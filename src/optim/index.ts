// graft.optim: fused multi-tensor optimizers (SGD, AdamW) over flat arenas, parameter groups, LR schedulers, gradient clipping.
//
// A training step (one submit when nothing reads back in between):
//
//   const opt = new AdamW([
//     { params: encoderParams, lr: 2e-5 },                      // discriminative lrs
//     { params: headParams, lr: 1e-3, weightDecay: 0 },
//   ]);
//   const sched = linearWarmupDecay(opt, 100, 1000);
//   for (const batch of data) {
//     opt.zeroGrad();                                            // one clearBuffer per grad chunk
//     backward(loss(model, batch));                              // accumulates into the grad arena
//     const norm = clipGradNorm(opt, 1.0);                       // GPU reduction, applied inside step
//     opt.step();                                                // one dispatch per arena chunk
//     sched.step();
//   }
//
// Gradient accumulation over k micro-batches: run backward k times between zeroGrad and step (the
// engine adds into the existing grads), then `clipGradNorm(opt, maxNorm, { gradScale: 1 / k })`
// (if clipping) and `opt.step({ gradScale: 1 / k })`: the kernel multiplies the summed grads by
// 1/k, so k micro-batches of b with mean losses give the update of one batch of k·b. Scaling each
// micro-batch loss by 1/k instead works too (then use no gradScale).
//
// Use `opt.zeroGrad()`, not a module's setToNone zeroGrad: p.grad must stay the arena view (the
// optimizer re-attaches replaced grads by copying them in, and skips params whose grad was removed).
export {
  Optimizer,
  type OptimizerOptions,
  type StepOptions,
  type ClipOptions,
  type OptimizerStateDict,
  type SavedGroup,
} from './optimizer.js';
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
export { captureTrainingStep, CapturedTrainingStep, type BatchInput, type CapturedTrainingOptions } from './captured-step.js';
