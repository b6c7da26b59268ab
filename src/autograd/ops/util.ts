// Small helpers shared by the rule families: shape tests and broadcast-gradient reduction.
import type { Shape, Tensor } from '../../tensor.js';
import { sumTo } from '../../kernels/reduce.js';

export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * The gradient for an input of `shape` that was broadcast to g's shape: g itself when the shapes
 * match (the engine handles the aliasing), else the sum over the broadcast dims (a new tensor).
 */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  if (g.size === shapeSize(shape)) return g.reshape(shape);
  return sumTo(g, shape);
}

export const shapeSize = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** Run `fn` on `t`, then dispose `t` (for temporaries inside a backward). */
export function consume<T>(t: Tensor, fn: (t: Tensor) => T): T {
  try {
    return fn(t);
  } finally {
    t.dispose();
  }
}
