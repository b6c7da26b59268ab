// The typed rule table: every primitive of every family has a forward and a backward (else: compile error).
import type { Rule } from './rule.js';
import { elementwiseRules, type ElementwisePrims } from './ops/elementwise.js';
import { linalgRules, type LinalgPrims } from './ops/linalg.js';
import { convRules, type ConvPrims } from './ops/conv.js';
import { normRules, type NormPrims } from './ops/norm.js';
import { softmaxRules, type SoftmaxPrims } from './ops/softmax.js';
import { miscRules, type MiscPrims } from './ops/misc.js';
import { shapeRules, type ShapePrims } from './ops/shape.js';
import { loraRules, type LoraPrims } from './ops/lora.js';

/** Every primitive: its params and what its forward saves. */
export type PrimTable = ElementwisePrims & LinalgPrims & ConvPrims & NormPrims & SoftmaxPrims & MiscPrims & ShapePrims & LoraPrims;
export type Primitive = keyof PrimTable;

export const RULES: { [P in Primitive]: Rule<PrimTable[P]> } = {
  ...elementwiseRules,
  ...linalgRules,
  ...convRules,
  ...normRules,
  ...softmaxRules,
  ...miscRules,
  ...shapeRules,
  ...loraRules,
};
