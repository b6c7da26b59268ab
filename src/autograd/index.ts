// graft.autograd: reverse-mode autodiff (backward, grad mode, detach) and the differentiable functional API F.
export { backward, detach, freeGraph, apply, apply1, GradRef, Node, type BackwardOptions } from './engine.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './grad-mode.js';
export { Rng, defaultRng, manualSeed, toRng } from './random.js';
export { accumulateInto } from './accumulate.js';
export type { Rule, Rules, ForwardCtx, BackwardCtx } from './rule.js';
export type { Primitive, PrimTable } from './registry.js';
export * as F from './functional.js';
