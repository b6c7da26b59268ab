// Parameter initialisers matching torch.nn.init (values drawn on the CPU from a seeded Rng, then uploaded).
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, numel, type Shape } from '../tensor.js';
import { Rng, defaultRng } from '../autograd/random.js';

export { Rng, defaultRng, manualSeed } from '../autograd/random.js';

function make(rt: Runtime, shape: Shape, draw: () => number): Tensor {
  const n = numel(shape);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = draw();
  return Tensor.from(rt, data, shape);
}

export function uniform(rt: Runtime, shape: Shape, lo: number, hi: number, rng: Rng = defaultRng()): Tensor {
  return make(rt, shape, () => rng.uniform(lo, hi));
}

export function normal(rt: Runtime, shape: Shape, mean = 0, std = 1, rng: Rng = defaultRng()): Tensor {
  return make(rt, shape, () => rng.normal(mean, std));
}

export function constant(rt: Runtime, shape: Shape, value: number): Tensor {
  return make(rt, shape, () => value);
}

/** fan_in and fan_out of a weight [out, in, ...kernel] (torch's _calculate_fan_in_and_fan_out). */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  const field = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * field, fanOut: (shape[0] ?? 1) * field };
}

/**
 * kaiming_uniform_(w, a) with leaky-relu gain sqrt(2 / (1 + a²)): bound = gain·sqrt(3 / fan_in).
 * With a = sqrt(5) (nn.Linear / nn.Conv2d default) the bound is 1/sqrt(fan_in).
 */
export function kaimingUniform(rt: Runtime, shape: Shape, a = Math.sqrt(5), rng: Rng = defaultRng()): Tensor {
  const { fanIn } = fans(shape);
  const bound = Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
  return uniform(rt, shape, -bound, bound, rng);
}

/** xavier_uniform_: bound = gain·sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(rt: Runtime, shape: Shape, gain = 1, rng: Rng = defaultRng()): Tensor {
  const { fanIn, fanOut } = fans(shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(rt, shape, -bound, bound, rng);
}

/** The bias init of nn.Linear / nn.Conv2d: uniform(±1/sqrt(fan_in)) of the weight. */
export function biasUniform(rt: Runtime, size: number, fanIn: number, rng: Rng = defaultRng()): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(rt, [size], -bound, bound, rng);
}
