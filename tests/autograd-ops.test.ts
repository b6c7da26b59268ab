// GPU backward through the autograd engine vs the float64 reference: element-wise, shape and reduction ops.
import { describe, it } from 'vitest';
import * as F from '../src/autograd/functional.js';
import * as ref from './ref/autograd-ref.js';
import { useRuntime } from './helpers/gpu.js';
import { gpuVsRef, inp } from './autograd-harness.js';

const rt = useRuntime();

describe('autograd: element-wise ops (GPU vs float64 reference)', () => {
  it('add / sub / mul / div with broadcasting, awkward shapes', async () => {
    const pairs: [number[], number[]][] = [
      [[17, 33], [33]],
      [[3, 1, 17], [33, 1]],
      [[1], [3, 17]],
      [[33, 17], [33, 17]],
      [[3, 17, 1], [1, 1, 33]],
    ];
    for (const [a, b] of pairs) {
      await gpuVsRef(rt(), `add ${a}|${b}`, [inp(a), inp(b)], ([x, y]) => F.add(x!, y!), ([x, y]) => ref.add(x!, y!));
      await gpuVsRef(rt(), `sub ${a}|${b}`, [inp(a), inp(b)], ([x, y]) => F.sub(x!, y!), ([x, y]) => ref.sub(x!, y!));
      await gpuVsRef(rt(), `mul ${a}|${b}`, [inp(a), inp(b)], ([x, y]) => F.mul(x!, y!), ([x, y]) => ref.mul(x!, y!));
      await gpuVsRef(rt(), `div ${a}|${b}`, [inp(a), inp(b, 0.5, 2)], ([x, y]) => F.div(x!, y!), ([x, y]) => ref.div(x!, y!));
    }
  });

  it('only the inputs that require grad get one', async () => {
    await gpuVsRef(rt(), 'mul, b frozen', [inp([3, 17]), inp([17], -1, 1, false)], ([x, y]) => F.mul(x!, y!), ([x, y]) => ref.mul(x!, y!));
    await gpuVsRef(rt(), 'div, a frozen', [inp([3, 17], -1, 1, false), inp([3, 1], 0.5, 2)], ([x, y]) => F.div(x!, y!), ([x, y]) => ref.div(x!, y!));
  });

  it('scalar operands (affine maps) and pow', async () => {
    const s = [17, 3];
    await gpuVsRef(rt(), 'x + 2', [inp(s)], ([x]) => F.add(x!, 2), ([x]) => ref.affine(x!, 1, 2));
    await gpuVsRef(rt(), '2 - x', [inp(s)], ([x]) => F.sub(2, x!), ([x]) => ref.affine(x!, -1, 2));
    await gpuVsRef(rt(), 'x * -3', [inp(s)], ([x]) => F.mul(x!, -3), ([x]) => ref.affine(x!, -3, 0));
    await gpuVsRef(rt(), 'x / 4', [inp(s)], ([x]) => F.div(x!, 4), ([x]) => ref.affine(x!, 0.25, 0));
    await gpuVsRef(rt(), '3 / x', [inp(s, 0.5, 2)], ([x]) => F.div(3, x!), ([x]) => ref.affine(ref.unary(x!, 'reciprocal'), 3, 0));
    await gpuVsRef(rt(), 'neg', [inp(s)], ([x]) => F.neg(x!), ([x]) => ref.affine(x!, -1, 0));
    await gpuVsRef(rt(), 'pow 2.5', [inp(s, 0.2, 2)], ([x]) => F.pow(x!, 2.5), ([x]) => ref.pow(x!, 2.5));
    await gpuVsRef(rt(), 'pow 3', [inp(s)], ([x]) => F.pow(x!, 3), ([x]) => ref.pow(x!, 3), { atol: 1e-4, rtol: 1e-3 });
  });

  it('every differentiable unary op', async () => {
    const fns: Record<string, (x: import('../src/tensor.js').Tensor) => import('../src/tensor.js').Tensor> = {
      exp: F.exp, log: F.log, sqrt: F.sqrt, rsqrt: F.rsqrt, abs: F.abs, sin: F.sin, cos: F.cos, square: F.square,
      reciprocal: F.reciprocal, relu: F.relu, tanh: F.tanh, sigmoid: F.sigmoid, gelu: (x) => F.gelu(x), gelu_tanh: (x) => F.gelu(x, 'tanh'),
    };
    for (const [op, fn] of Object.entries(fns)) {
      const positive = ['log', 'sqrt', 'rsqrt', 'reciprocal'].includes(op);
      for (const shape of [[1], [3, 17], [33]]) {
        await gpuVsRef(rt(), `${op} ${shape}`, [inp(shape, positive ? 0.3 : -2, 2)], ([x]) => fn(x!), ([x]) => ref.unary(x!, op));
      }
    }
  });
});

describe('autograd: shape and reduction ops', () => {
  it('reshape, flatten, permute, transpose', async () => {
    await gpuVsRef(rt(), 'reshape', [inp([3, 17, 2])], ([x]) => F.reshape(x!, [17, -1]), ([x]) => ref.reshape(x!, [17, 6]));
    await gpuVsRef(rt(), 'flatten', [inp([3, 1, 17, 2])], ([x]) => F.flatten(x!, 1), ([x]) => ref.reshape(x!, [3, 34]));
    await gpuVsRef(rt(), 'permute', [inp([3, 17, 33])], ([x]) => F.permute(x!, [2, 0, 1]), ([x]) => ref.permute(x!, [2, 0, 1]));
    await gpuVsRef(rt(), 'transpose', [inp([3, 17, 5])], ([x]) => F.transpose(x!, -1, 0), ([x]) => ref.permute(x!, [2, 1, 0]));
  });

  it('slice (negative indices, several dims), concat, split, chunk', async () => {
    await gpuVsRef(rt(), 'slice', [inp([3, 17, 33])], ([x]) => F.slice(x!, [1, -10, 5], [3, 17, 32]), ([x]) => ref.slice(x!, [1, 7, 5], [3, 17, 32]));
    await gpuVsRef(rt(), 'slice one dim', [inp([33, 17])], ([x]) => F.slice(x!, [0, 3], [33, 4]), ([x]) => ref.slice(x!, [0, 3], [33, 4]));
    await gpuVsRef(
      rt(),
      'concat',
      [inp([3, 1, 17]), inp([3, 33, 17]), inp([3, 2, 17], -1, 1, false)],
      (xs) => F.concat(xs, 1),
      (xs) => ref.concat(xs, 1),
    );
    // split: use two of three pieces (the unused one gets a zero gradient) and combine them.
    await gpuVsRef(
      rt(),
      'split',
      [inp([3, 17, 5])],
      ([x]) => {
        const [a, , c] = F.split(x!, [6, 4, 7], 1);
        return F.mul(a!, F.slice(c!, [0, 0, 0], [3, 6, 5]));
      },
      ([x]) => ref.mul(ref.slice(x!, [0, 0, 0], [3, 6, 5]), ref.slice(x!, [0, 10, 0], [3, 16, 5])),
    );
    await gpuVsRef(
      rt(),
      'chunk',
      [inp([4, 6])],
      ([x]) => {
        const [a, b] = F.chunk(x!, 2, 0);
        return F.sub(a!, F.mul(b!, 3));
      },
      ([x]) => ref.sub(ref.slice(x!, [0, 0], [2, 6]), ref.affine(ref.slice(x!, [2, 0], [4, 6]), 3, 0)),
    );
  });

  it('sum and mean over axes, keepDims, all', async () => {
    for (const shape of [[3, 17, 33], [1, 33], [17]]) {
      const all = shape.map((_, i) => i);
      await gpuVsRef(rt(), `sum all ${shape}`, [inp(shape)], ([x]) => F.sum(x!), ([x]) => ref.sum(x!, all), { atol: 1e-3, rtol: 1e-3 });
      await gpuVsRef(rt(), `mean all ${shape}`, [inp(shape)], ([x]) => F.mean(x!), ([x]) => ref.sum(x!, all, false, true));
    }
    await gpuVsRef(rt(), 'sum axes 0,2 keep', [inp([3, 17, 33])], ([x]) => F.sum(x!, [0, -1], true), ([x]) => ref.sum(x!, [0, 2], true));
    await gpuVsRef(rt(), 'mean axis 1', [inp([3, 17, 33])], ([x]) => F.mean(x!, 1), ([x]) => ref.sum(x!, [1], false, true));
  });

  it('derived: mse loss, adaptive average pool', async () => {
    await gpuVsRef(
      rt(),
      'mseLoss',
      [inp([17, 3]), inp([17, 3], -1, 1, false)],
      ([a, b]) => F.mseLoss(a!, b!),
      ([a, b]) => ref.sum(ref.unary(ref.sub(a!, b!), 'square'), [0, 1], false, true),
    );
    await gpuVsRef(rt(), 'adaptiveAvgPool2d', [inp([3, 5, 4, 3])], ([x]) => F.adaptiveAvgPool2d(x!, 1), ([x]) => ref.reshape(ref.globalAvgPool2d(x!), [3, 5, 1, 1]));
  });
});
