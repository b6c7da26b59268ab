// The shape of a differentiable primitive: forward and backward side by side, typed per primitive.
import type { Tensor } from '../tensor.js';

/** What a rule's forward may ask of the engine. */
export interface ForwardCtx {
  /** True when a graph node is being recorded (backward may run later). */
  readonly recording: boolean;
  /** Per input: does it need a gradient? (all false when not recording) */
  readonly needs: readonly boolean[];
  /**
   * Keep a tensor someone else owns (an input or output) for backward: returns a view holding its
   * own reference, freed by the engine after backward. Returns `t` itself when not recording.
   */
  save(t: Tensor): Tensor;
  /**
   * Hand a tensor this forward created (and does not return) to the engine: kept for backward
   * and freed after it, or freed right after forward when not recording.
   */
  own(t: Tensor): Tensor;
}

/** What a rule's backward may ask of the engine. */
export interface BackwardCtx {
  /** Per input: does it need a gradient? Rules return null for inputs that do not. */
  readonly needs: readonly boolean[];
}

/** A rule's type parameters: the primitive's static parameters and what its forward saves. */
export interface RuleTypes {
  params: unknown;
  saved: unknown;
}

export interface ForwardResult<S> {
  /** The outputs (most primitives have one). */
  out: Tensor[];
  /** Values the backward needs; tensors in it must come from ctx.save / ctx.own. */
  saved: S;
}

/**
 * A differentiable primitive. `backward` gets one gradient per output (never null: the engine
 * fills zeros for outputs that received none) and returns one gradient per input (null where
 * ctx.needs is false or the input is not differentiable). Returned tensors are owned by the
 * engine; a rule may return an incoming gradient object itself (the engine tracks aliasing).
 */
export interface Rule<T extends RuleTypes> {
  forward(ctx: ForwardCtx, inputs: readonly Tensor[], params: T['params']): ForwardResult<T['saved']>;
  backward(ctx: BackwardCtx, grads: readonly Tensor[], saved: T['saved'], params: T['params']): (Tensor | null)[];
}

/** A family of primitives, e.g. `{ add: { params: {}; saved: ... } }`. */
export type Family = Record<string, RuleTypes>;

/** The rules of a family: every primitive must have one (a missing rule is a compile error). */
export type Rules<F extends Family> = { [P in keyof F]: Rule<F[P]> };
