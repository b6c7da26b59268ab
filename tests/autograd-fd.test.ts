// Finite-difference checks (float64, CPU) of every backward in the reference autograd (tests/ref/autograd-ref.ts).
import { describe, it } from 'vitest';
import * as ref from './ref/autograd-ref.js';
import { R, backwardRef, leaf, numericGrads, type Shape } from './ref/autograd-ref.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

let seedCounter = 1;
const rand = (shape: Shape, lo = -1, hi = 1) => ({ data: Float64Array.from(randArray(shape.reduce((a, b) => a * b, 1), seedCounter++, lo, hi)), shape });

/** Analytic (backwardRef) vs central-difference gradients of Σ seed·f(inputs), for inputs `which`. */
function fd(name: string, f: (xs: R[]) => R, inputs: { data: ArrayLike<number>; shape: Shape }[], which?: number[]): void {
  const w = which ?? inputs.map((_, i) => i);
  const xs = inputs.map((d) => leaf(d.data, d.shape));
  const y = f(xs);
  const seed = randArray(y.data.length, seedCounter++);
  backwardRef(y, seed);
  const num = numericGrads(f, inputs, seed, w);
  w.forEach((k, j) => expectClose(xs[k]!.grad, num[j]!, { atol: 1e-6, rtol: 1e-5 }, `${name}: d/d input ${k}`));
}

describe('reference backward vs finite differences (float64)', () => {
  it('broadcasting add / sub / mul / div', () => {
    for (const [a, b] of [
      [[2, 3], [3]],
      [[2, 1, 3], [4, 1]],
      [[1], [3, 2]],
    ] as const) {
      fd('add', ([x, y]) => ref.add(x!, y!), [rand(a), rand(b)]);
      fd('sub', ([x, y]) => ref.sub(x!, y!), [rand(a), rand(b)]);
      fd('mul', ([x, y]) => ref.mul(x!, y!), [rand(a), rand(b)]);
      fd('div', ([x, y]) => ref.div(x!, y!), [rand(a), rand(b, 0.5, 2)]);
    }
  });

  it('affine, pow and every unary op', () => {
    fd('affine', ([x]) => ref.affine(x!, -1.5, 0.25), [rand([7])]);
    fd('pow', ([x]) => ref.pow(x!, 2.5), [rand([7], 0.2, 2)]);
    for (const op of Object.keys(ref.UNARY)) {
      const positive = ['log', 'sqrt', 'rsqrt', 'reciprocal'].includes(op);
      fd(op, ([x]) => ref.unary(x!, op), [rand([3, 5], positive ? 0.3 : -2, 2)]);
    }
  });

  it('shape ops: reshape, permute, slice, concat, sum, mean', () => {
    fd('reshape', ([x]) => ref.reshape(x!, [6, 2]), [rand([3, 4])]);
    fd('permute', ([x]) => ref.permute(x!, [2, 0, 1]), [rand([2, 3, 4])]);
    fd('slice', ([x]) => ref.slice(x!, [1, 0, 2], [2, 3, 4]), [rand([3, 3, 5])]);
    fd('concat', ([a, b]) => ref.concat([a!, b!], 1), [rand([2, 3, 2]), rand([2, 1, 2])]);
    fd('sum', ([x]) => ref.sum(x!, [0, 2], true), [rand([2, 3, 4])]);
    fd('mean', ([x]) => ref.sum(x!, [1], false, true), [rand([2, 3, 4])]);
  });

  it('matmul (batched, broadcast b) and linear(+relu)', () => {
    fd('matmul', ([a, b]) => ref.matmul(a!, b!), [rand([2, 3, 4]), rand([2, 4, 5])]);
    fd('matmul bcast', ([a, b]) => ref.matmul(a!, b!), [rand([2, 3, 4]), rand([4, 5])]);
    fd('linear', ([x, w, b]) => ref.linear(x!, w!, b!, 'relu'), [rand([3, 4]), rand([5, 4]), rand([5])]);
  });

  it('conv2d (stride, padding, dilation, groups, bias)', () => {
    fd('conv2d', ([x, w, b]) => ref.conv2d(x!, w!, b!, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] }), [rand([2, 3, 5, 6]), rand([4, 3, 3, 2]), rand([4])]);
    fd('conv2d groups', ([x, w]) => ref.conv2d(x!, w!, null, { groups: 2, padding: [1, 1] }), [rand([1, 4, 4, 4]), rand([6, 2, 3, 3])]);
  });

  it('pooling: max, avg (padding, ceil mode, count_include_pad), global average', () => {
    fd('maxpool', ([x]) => ref.pool2d(x!, 'max', { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }), [rand([2, 2, 5, 6])]);
    fd('avgpool', ([x]) => ref.pool2d(x!, 'avg', { kernel: [2, 3], stride: [2, 2], padding: [1, 1], ceilMode: true }), [rand([1, 2, 5, 6])]);
    fd('avgpool nopad', ([x]) => ref.pool2d(x!, 'avg', { kernel: [3, 3], stride: [2, 2], padding: [1, 1], countIncludePad: false }), [rand([1, 2, 5, 5])]);
    fd('gap', ([x]) => ref.globalAvgPool2d(x!), [rand([2, 3, 3, 4])]);
  });

  it('layer norm, batch norm (train and eval + relu)', () => {
    fd('layerNorm', ([x, w, b]) => ref.layerNorm(x!, w!, b!), [rand([3, 7]), rand([7]), rand([7])]);
    fd('batchNormTrain', ([x, w, b]) => ref.batchNormTrain(x!, w!, b!).y, [rand([2, 3, 2, 3]), rand([3]), rand([3])]);
    fd('batchNormEval', ([x, w, b]) => ref.batchNormEval(x!, [0.1, -0.2, 0.3], [0.5, 1.5, 2], w!, b!, 1e-5, true), [rand([2, 3, 2, 2]), rand([3]), rand([3])]);
  });

  it('softmax, log-softmax, cross-entropy (smoothing, ignore index, reductions)', () => {
    for (const axis of [0, 1, 2]) {
      fd('softmax', ([x]) => ref.softmax(x!, axis), [rand([2, 3, 4], -3, 3)]);
      fd('logSoftmax', ([x]) => ref.softmax(x!, axis, true), [rand([2, 3, 4], -3, 3)]);
    }
    const t = [2, -100, 0, 4];
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      fd(`crossEntropy ${reduction}`, ([x]) => ref.crossEntropy(x!, t, { labelSmoothing: 0.1, reduction }), [rand([4, 5], -3, 3)]);
    }
  });

  it('attention (padding mask, causal, custom scale)', () => {
    const shape = [2, 2, 4, 3];
    fd('attention', ([q, k, v]) => ref.attention(q!, k!, v!, { mask: [1, 1, 0, 1, 1, 1, 1, 0] }), [rand(shape), rand(shape), rand(shape)]);
    fd('attention causal', ([q, k, v]) => ref.attention(q!, k!, v!, { causal: true, scale: 0.3 }), [rand(shape), rand(shape), rand(shape)]);
  });

  it('embedding and masked dropout', () => {
    // (paddingIdx is a rule, not a derivative: its zero row is checked against the GPU in autograd-ops)
    fd('embedding', ([t]) => ref.embedding([1, 3, 1, 0], [2, 2], t!), [rand([4, 3])]);
    fd('dropout', ([x]) => ref.dropoutMasked(x!, [1, 0, 1, 1, 0, 1], 0.3), [rand([2, 3])]);
  });
});
