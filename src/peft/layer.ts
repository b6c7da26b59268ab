// What LoRA-wrapped Linear and Conv2d layers share: options, the B·A delta, in-place merge/unmerge of the frozen weight.
import { GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import { matmul } from '../kernels/matmul.js';
import { scale } from '../kernels/elementwise.js';
import { accumulateInto, zeroInto } from '../autograd/accumulate.js';
import { noGrad } from '../autograd/grad-mode.js';
import { Rng, defaultRng } from '../autograd/random.js';
import { loraScaling, type LoraInit } from './config.js';

/** Per-layer LoRA settings (see LoraOptions). */
export interface LoraLayerOptions {
  r: number;
  alpha: number;
  dropout?: number;
  useRslora?: boolean;
  initLoraWeights?: LoraInit;
  /** undefined: fusedByDefault() at each forward. */
  fused?: boolean;
  rng?: Rng;
}

/** The adapter state of one wrapped layer. */
export interface LoraLayerState {
  readonly r: number;
  readonly alpha: number;
  readonly scaling: number;
  readonly dropout: number;
  readonly useRslora: boolean;
  readonly rng: Rng;
}

export function layerState(kind: string, o: LoraLayerOptions): LoraLayerState {
  if (!Number.isInteger(o.r) || o.r < 1) throw new GraftError(`${kind}: r must be a positive integer, got ${o.r}`);
  const dropout = o.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new GraftError(`${kind}: dropout must be in [0, 1), got ${dropout}`);
  const useRslora = !!o.useRslora;
  return { r: o.r, alpha: o.alpha, scaling: loraScaling(o.r, o.alpha, useRslora), dropout, useRslora, rng: o.rng ?? defaultRng() };
}

/** Apply PEFT's init to freshly made A, B (both start with nn.Linear / nn.Conv2d's kaiming-uniform(a=√5) init). */
export function initAdapter(a: Tensor, b: Tensor, init: LoraInit | undefined, r: number, rng: Rng): void {
  const mode = init ?? true;
  if (mode === false) return;
  if (mode === 'gaussian') {
    const d = new Float32Array(a.size);
    for (let i = 0; i < d.length; i++) d[i] = rng.normal(0, 1 / r);
    a.write(d);
  }
  zeroInto(b);
}

/** s·B·A reshaped like the base weight w [out, ...] (A [r, ...] and B [out, r, ...] flattened to 2-D). */
export function deltaWeight(w: Tensor, a: Tensor, b: Tensor, r: number, scaling: number): Tensor {
  const out = w.shape[0]!;
  const a2 = a.reshape([r, a.size / r]);
  const b2 = b.reshape([out, r]);
  const ba = matmul(b2, a2);
  a2.dispose();
  b2.dispose();
  const d = scale(ba, scaling);
  ba.dispose();
  const shaped = d.reshape(w.shape);
  d.dispose();
  return shaped;
}

/** w += sign·s·B·A in place (no graph; w keeps its identity, e.g. inside an optimizer's arena). */
export function addDelta(w: Tensor, a: Tensor, b: Tensor, r: number, scaling: number, sign: 1 | -1): void {
  noGrad(() => {
    const d = deltaWeight(w, a, b, r, sign * scaling);
    accumulateInto(w, d);
    d.dispose();
  });
}
