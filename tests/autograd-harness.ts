// Test harness for autograd: run an op on the GPU through backward(), the same op in the float64 reference, compare.
import { expect } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { backward } from '../src/autograd/engine.js';
import { R, backwardRef, leaf } from './ref/autograd-ref.js';
import { expectClose, type Tol } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

export interface Input {
  data: ArrayLike<number>;
  shape: readonly number[];
  /** Needs a gradient (default true). */
  grad?: boolean;
}

let seedCounter = 1000;

/** Seeded uniform input of `shape` in [lo, hi). */
export function inp(shape: readonly number[], lo = -1, hi = 1, grad = true): Input {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: randArray(n, seedCounter++, lo, hi), shape, grad };
}

/**
 * GPU forward + backward (random upstream gradient) vs the reference on the same data; checks the
 * output, every input gradient, that non-differentiable inputs got none, and that every buffer
 * the step allocated is back in the pool after the tensors are disposed.
 */
export async function gpuVsRef(
  rt: Runtime,
  name: string,
  inputs: Input[],
  gpu: (xs: Tensor[]) => Tensor,
  cpu: (xs: R[]) => R,
  tol: Tol = { atol: 1e-4, rtol: 1e-3 },
): Promise<void> {
  await rt.sync();
  const live0 = rt.pool.stats.live;
  const xs = inputs.map((d) => {
    const t = Tensor.from(rt, d.data, d.shape);
    t.requiresGrad = d.grad ?? true;
    return t;
  });
  const y = scope(rt, () => gpu(xs));
  const seed = randArray(y.size, seedCounter++);
  const gy = Tensor.from(rt, seed, y.shape);
  backward(y, gy);
  const yv = await y.read();
  const grads = await Promise.all(xs.map((t) => (t.grad ? t.grad.read() : Promise.resolve(null))));

  const rs = inputs.map((d) => leaf(d.data, d.shape));
  const yr = cpu(rs);
  backwardRef(yr, seed);
  expect(y.shape, `${name}: output shape`).toEqual(yr.shape);
  expectClose(yv, yr.data, tol, `${name}: forward`);
  inputs.forEach((d, i) => {
    if (d.grad ?? true) {
      expect(grads[i], `${name}: input ${i} has a gradient`).not.toBeNull();
      expectClose(grads[i]!, rs[i]!.grad, tol, `${name}: d/d input ${i}`);
    } else expect(grads[i], `${name}: input ${i} needs no gradient`).toBeNull();
  });

  for (const t of [y, gy, ...xs]) {
    t.grad?.dispose();
    t.dispose();
  }
  await rt.sync();
  expect(rt.pool.stats.live, `${name}: live buffers after dispose`).toBe(live0);
}
