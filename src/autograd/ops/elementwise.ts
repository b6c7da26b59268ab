// Element-wise primitives: broadcasting add/sub/mul/div, affine, scalar power and unary functions.
import { binary, scale, unary, type UnaryOp } from '../../kernels/elementwise.js';
import { activationBackward } from '../../kernels/activation-backward.js';
import type { Shape, Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';
import { consume, unbroadcast } from './util.js';

/** Unary functions with a gradient (sign and step have none and are not differentiable ops). */
export type DiffUnary = Exclude<UnaryOp, 'sign' | 'step'>;

interface UnarySaved {
  x: Tensor | null;
  y: Tensor | null;
}

export type ElementwisePrims = {
  /** a + b, broadcasting. */
  add: { params: null; saved: { a: Shape; b: Shape } };
  /** a - b, broadcasting. */
  sub: { params: null; saved: { a: Shape; b: Shape } };
  /** a * b, broadcasting. */
  mul: { params: null; saved: { a: Tensor | null; b: Tensor | null; aShape: Shape; bShape: Shape } };
  /** a / b, broadcasting. */
  div: { params: null; saved: { b: Tensor; y: Tensor | null; aShape: Shape } };
  /** alpha * x + beta. */
  affine: { params: { alpha: number; beta: number }; saved: null };
  /** x ** p for a constant p. */
  powScalar: { params: { p: number }; saved: { x: Tensor } };
  /** f(x) for a unary function f. */
  unary: { params: { op: DiffUnary }; saved: UnarySaved };
};

/** Which tensors each unary backward needs: its input, its output, or both. */
const UNARY_SAVES: { [O in DiffUnary]: 'x' | 'y' } = {
  neg: 'x', abs: 'x', exp: 'y', log: 'x', sqrt: 'y', rsqrt: 'y', square: 'x', reciprocal: 'y', relu: 'x',
  gelu: 'x', gelu_tanh: 'x', tanh: 'x', sigmoid: 'x', sin: 'x', cos: 'x',
};

/** d f(x) given gy and the saved tensor (x or y as UNARY_SAVES says). Every unary op needs an entry. */
const UNARY_GRAD: { [O in DiffUnary]: (gy: Tensor, s: Tensor) => Tensor } = {
  neg: (gy) => scale(gy, -1),
  abs: (gy, x) => consume(unary(x, 'sign'), (sg) => binary(gy, sg, 'mul')),
  exp: (gy, y) => binary(gy, y, 'mul'),
  log: (gy, x) => binary(gy, x, 'div'),
  // d sqrt(x) = 1 / (2 sqrt(x)) = 0.5 / y
  sqrt: (gy, y) => consume(binary(gy, y, 'div'), (t) => scale(t, 0.5)),
  // d x^-1/2 = -0.5 x^-3/2 = -0.5 y^3
  rsqrt: (gy, y) => consume(binary(y, 3, 'pow'), (y3) => consume(binary(gy, y3, 'mul'), (t) => scale(t, -0.5))),
  square: (gy, x) => consume(binary(gy, x, 'mul'), (t) => scale(t, 2)),
  // d 1/x = -1/x^2 = -y^2
  reciprocal: (gy, y) => consume(unary(y, 'square'), (y2) => consume(binary(gy, y2, 'mul'), (t) => scale(t, -1))),
  relu: (gy, x) => activationBackward(x, gy, 'relu'),
  gelu: (gy, x) => activationBackward(x, gy, 'gelu'),
  gelu_tanh: (gy, x) => activationBackward(x, gy, 'gelu_tanh'),
  tanh: (gy, x) => activationBackward(x, gy, 'tanh'),
  sigmoid: (gy, x) => activationBackward(x, gy, 'sigmoid'),
  sin: (gy, x) => consume(unary(x, 'cos'), (c) => binary(gy, c, 'mul')),
  cos: (gy, x) => consume(unary(x, 'sin'), (s) => consume(binary(gy, s, 'mul'), (t) => scale(t, -1))),
};

export const elementwiseRules: Rules<ElementwisePrims> = {
  add: {
    forward: (_ctx, [a, b]) => ({ out: [binary(a!, b!, 'add')], saved: { a: a!.shape, b: b!.shape } }),
    backward: (ctx, [gy], s) => [ctx.needs[0] ? unbroadcast(gy!, s.a) : null, ctx.needs[1] ? unbroadcast(gy!, s.b) : null],
  },
  sub: {
    forward: (_ctx, [a, b]) => ({ out: [binary(a!, b!, 'sub')], saved: { a: a!.shape, b: b!.shape } }),
    backward: (ctx, [gy], s) => [
      ctx.needs[0] ? unbroadcast(gy!, s.a) : null,
      ctx.needs[1] ? consume(scale(gy!, -1), (n) => unbroadcastKeep(n, s.b)) : null,
    ],
  },
  mul: {
    forward: (ctx, [a, b]) => ({
      out: [binary(a!, b!, 'mul')],
      saved: { a: ctx.needs[1] ? ctx.save(a!) : null, b: ctx.needs[0] ? ctx.save(b!) : null, aShape: a!.shape, bShape: b!.shape },
    }),
    backward: (ctx, [gy], s) => [
      ctx.needs[0] ? consume(binary(gy!, s.b!, 'mul'), (t) => unbroadcastKeep(t, s.aShape)) : null,
      ctx.needs[1] ? consume(binary(gy!, s.a!, 'mul'), (t) => unbroadcastKeep(t, s.bShape)) : null,
    ],
  },
  div: {
    forward: (ctx, [a, b]) => {
      const y = binary(a!, b!, 'div');
      return { out: [y], saved: { b: ctx.save(b!), y: ctx.needs[1] ? ctx.save(y) : null, aShape: a!.shape } };
    },
    // ga = gy / b;  gb = -gy·a/b² = -(gy / b)·y
    backward: (ctx, [gy], s) =>
      consume(binary(gy!, s.b, 'div'), (t) => [
        ctx.needs[0] ? unbroadcastKeep(t, s.aShape) : null,
        ctx.needs[1] ? consume(binary(t, s.y!, 'mul'), (ty) => consume(scale(ty, -1), (n) => unbroadcastKeep(n, s.b.shape))) : null,
      ]),
  },
  affine: {
    forward: (_ctx, [x], p) => ({ out: [scale(x!, p.alpha, p.beta)], saved: null }),
    backward: (_ctx, [gy], _s, p) => [scale(gy!, p.alpha)],
  },
  powScalar: {
    forward: (ctx, [x], p) => ({ out: [binary(x!, p.p, 'pow')], saved: { x: ctx.save(x!) } }),
    // d x^p = p·x^(p-1)
    backward: (_ctx, [gy], s, p) =>
      p.p === 1
        ? [gy!]
        : [consume(binary(s.x, p.p - 1, 'pow'), (t) => consume(binary(gy!, t, 'mul'), (u) => scale(u, p.p)))],
  },
  unary: {
    forward: (ctx, [x], p) => {
      const y = unary(x!, p.op);
      const which = UNARY_SAVES[p.op];
      return { out: [y], saved: { x: which === 'x' ? ctx.save(x!) : null, y: which === 'y' ? ctx.save(y) : null } };
    },
    backward: (_ctx, [gy], s, p) => [UNARY_GRAD[p.op](gy!, (s.x ?? s.y)!)],
  },
};

/** unbroadcast that always returns a tensor distinct from `t` (t is a temporary the caller frees). */
function unbroadcastKeep(t: Tensor, shape: Shape): Tensor {
  const r = unbroadcast(t, shape);
  return r === t ? t.reshape(t.shape) : r;
}

