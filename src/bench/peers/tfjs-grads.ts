// Gradients for the tfjs kernels the fine-tune peers differentiate: tfjs-core's Node bundle registers none (the union `@tensorflow/tfjs` package does), so we register the ones we need.
import type * as TF from '@tensorflow/tfjs-core';

type Tensor = TF.Tensor;
type Attrs = TF.NamedAttrMap;
type Grads = Record<string, () => Tensor>;

const num = (a: Attrs, k: string): number => {
  const v = a[k];
  if (typeof v !== 'number') throw new Error(`tfjs gradient: attribute ${k} is not a number`);
  return v;
};
const nums = (a: Attrs, k: string): number[] => {
  const v = a[k];
  if (typeof v === 'number') return [v];
  if (Array.isArray(v) && v.every((x): x is number => typeof x === 'number')) return v;
  throw new Error(`tfjs gradient: attribute ${k} is not a number list`);
};
const one = (dy: Tensor | Tensor[]): Tensor => {
  if (Array.isArray(dy)) throw new Error('tfjs gradient: expected one output gradient');
  return dy;
};
const at = (saved: Tensor[], i: number): Tensor => {
  const t = saved[i];
  if (!t) throw new Error(`tfjs gradient: saved tensor ${i} missing`);
  return t;
};

let registered = false;

/** Register the gradients tfjs-core lacks (a kernel that already has one is left alone). Idempotent. */
export function registerTfjsGradients(tf: typeof TF): void {
  if (registered) return;
  registered = true;
  const bu = tf.backend_util;
  /** Sum `g` over the axes broadcasting added to reach it from `shape`. */
  const unbroadcast = (g: Tensor, shape: number[]): Tensor => {
    const axes = bu.getReductionAxes(shape, g.shape);
    return tf.reshape(axes.length ? tf.sum(g, axes) : g, shape);
  };
  const reg = (
    kernelName: string,
    gradFunc: (dy: Tensor, saved: Tensor[], attrs: Attrs) => Grads,
    save: { inputs?: string[]; outputs?: boolean } = {},
  ): void => {
    if (tf.getGradient(kernelName)) return;
    tf.registerGradient({
      kernelName,
      inputsToSave: save.inputs,
      outputsToSave: save.outputs ? [true] : undefined,
      gradFunc: (dy, saved, attrs) => gradFunc(one(dy), saved, attrs),
    });
  };
  const run = (name: string, inputs: TF.NamedTensorMap, attrs: Attrs): Tensor => {
    const out = tf.engine().runKernel(name, inputs, attrs);
    if (Array.isArray(out)) throw new Error(`tfjs gradient: ${name} returned several tensors`);
    return out;
  };
  const ab = { inputs: ['a', 'b'] };
  const x = { inputs: ['x'] };

  reg('Add', (dy, s) => ({ a: () => unbroadcast(dy, at(s, 0).shape), b: () => unbroadcast(dy, at(s, 1).shape) }), ab);
  reg('Sub', (dy, s) => ({ a: () => unbroadcast(dy, at(s, 0).shape), b: () => unbroadcast(tf.neg(dy), at(s, 1).shape) }), ab);
  reg('Multiply', (dy, s) => ({
    a: () => unbroadcast(tf.mul(dy, at(s, 1)), at(s, 0).shape),
    b: () => unbroadcast(tf.mul(dy, at(s, 0)), at(s, 1).shape),
  }), ab);
  reg('RealDiv', (dy, s) => ({
    a: () => unbroadcast(tf.div(dy, at(s, 1)), at(s, 0).shape),
    b: () => unbroadcast(tf.neg(tf.div(tf.mul(dy, at(s, 0)), tf.square(at(s, 1)))), at(s, 1).shape),
  }), ab);
  reg('SquaredDifference', (dy, s) => {
    const two = () => tf.mul(dy, tf.mul(tf.sub(at(s, 0), at(s, 1)), 2));
    return { a: () => unbroadcast(two(), at(s, 0).shape), b: () => unbroadcast(tf.neg(two()), at(s, 1).shape) };
  }, ab);
  reg('Neg', (dy) => ({ x: () => tf.neg(dy) }));
  reg('Identity', (dy) => ({ x: () => tf.clone(dy) }));
  reg('Cast', (dy) => ({ x: () => tf.clone(dy) }));
  reg('Square', (dy, s) => ({ x: () => tf.mul(dy, tf.mul(at(s, 0), 2)) }), x);
  reg('Sqrt', (dy, s) => ({ x: () => tf.div(dy, tf.mul(at(s, 0), 2)) }), { outputs: true });
  reg('Rsqrt', (dy, s) => ({ x: () => tf.mul(dy, tf.mul(tf.pow(at(s, 0), -1.5), -0.5)) }), x);
  reg('Exp', (dy, s) => ({ x: () => tf.mul(dy, at(s, 0)) }), { outputs: true });
  reg('Log', (dy, s) => ({ x: () => tf.div(dy, at(s, 0)) }), x);
  reg('Erf', (dy, s) => ({ x: () => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(at(s, 0)))), 2 / Math.sqrt(Math.PI))) }), x);
  reg('Tanh', (dy, s) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(at(s, 0)))) }), { outputs: true });
  reg('Relu', (dy, s) => ({ x: () => tf.mul(dy, tf.step(at(s, 0))) }), x);
  reg('Softmax', (dy, s, a) => {
    const y = at(s, 0);
    const dim = nums(a, 'dim');
    return { logits: () => tf.mul(y, tf.sub(dy, tf.sum(tf.mul(dy, y), dim, true))) };
  }, { outputs: true });
  reg('Reshape', (dy, s) => ({ x: () => tf.reshape(dy, at(s, 0).shape) }), x);
  reg('ExpandDims', (dy, s) => ({ input: () => tf.reshape(dy, at(s, 0).shape) }), { inputs: ['input'] });
  reg('Transpose', (dy, _s, a) => {
    const perm = nums(a, 'perm');
    const inv = perm.map((_, i) => perm.indexOf(i));
    return { x: () => tf.transpose(dy, inv) };
  });
  reg('Slice', (dy, s, a) => {
    const shape = at(s, 0).shape;
    const begin = nums(a, 'begin');
    const size = nums(a, 'size');
    const pads = shape.map((d, i): [number, number] => {
      const b = begin[i] ?? 0;
      const n = size[i] === undefined || size[i] === -1 ? d - b : size[i]!;
      return [b, d - b - n];
    });
    return { x: () => tf.pad(dy, pads) };
  }, x);
  reg('PadV2', (dy, s, a) => {
    const shape = at(s, 0).shape;
    const pads = a.paddings;
    const begin = shape.map((_, i) => {
      const p = Array.isArray(pads) ? pads[i] : undefined;
      const b = Array.isArray(p) ? p[0] : undefined;
      if (typeof b !== 'number') throw new Error('tfjs gradient: PadV2 paddings is not [[before, after], ...]');
      return b;
    });
    return { x: () => tf.slice(dy, begin, shape) };
  }, x);
  const reduceGrad = (dy: Tensor, xs: Tensor, a: Attrs, mean: boolean): Tensor => {
    const axes = a.axis === null || a.axis === undefined ? xs.shape.map((_, i) => i) : tf.util.parseAxisParam(nums(a, 'axis'), xs.shape);
    const kept = xs.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const n = axes.reduce((p, i) => p * xs.shape[i]!, 1);
    const g = tf.mul(tf.reshape(dy, kept), tf.onesLike(xs));
    return mean ? tf.div(g, n) : g;
  };
  reg('Sum', (dy, s, a) => ({ x: () => reduceGrad(dy, at(s, 0), a, false) }), x);
  reg('Mean', (dy, s, a) => ({ x: () => reduceGrad(dy, at(s, 0), a, true) }), x);
  reg('BatchMatMul', (dy, s, a) => {
    const A = at(s, 0);
    const B = at(s, 1);
    const ta = a.transposeA === true;
    const tb = a.transposeB === true;
    if (!ta && !tb) return { a: () => tf.matMul(dy, B, false, true), b: () => tf.matMul(A, dy, true, false) };
    if (!ta && tb) return { a: () => tf.matMul(dy, B), b: () => tf.matMul(dy, A, true, false) };
    if (ta && !tb) return { a: () => tf.matMul(B, dy, false, true), b: () => tf.matMul(A, dy) };
    return { a: () => tf.matMul(B, dy, true, true), b: () => tf.matMul(dy, A, true, true) };
  }, ab);
  reg('GatherV2', (dy, s, a) => {
    const xs = at(s, 0);
    const idx = at(s, 1);
    if (num(a, 'axis') !== 0 || (a.batchDims !== undefined && a.batchDims !== 0)) throw new Error('tfjs gradient: GatherV2 only on axis 0');
    const rest = xs.shape.slice(1);
    return {
      x: () => tf.unsortedSegmentSum(tf.reshape(dy, [idx.size, ...rest]), tf.reshape(idx, [idx.size]), xs.shape[0]!),
      indices: () => tf.cast(tf.zerosLike(idx), 'float32'),
    };
  }, { inputs: ['x', 'indices'] });
  reg('Conv2D', (dy, s, a) => {
    const xs = at(s, 0);
    const w = at(s, 1);
    const attrs: Attrs = { strides: a.strides ?? 1, pad: a.pad ?? 'valid', dataFormat: 'NHWC' }; // strides as given: a number or [h, w]
    return {
      x: () => run('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: xs.shape }),
      filter: () => run('Conv2DBackpropFilter', { x: xs, dy }, { ...attrs, filterShape: w.shape }),
    };
  }, { inputs: ['x', 'filter'] });
  reg('MaxPool', (dy, s, a) => {
    const input = at(s, 0);
    const output = at(s, 1);
    return { x: () => run('MaxPoolGrad', { dy, input, output }, a) };
  }, { inputs: ['x'], outputs: true });
}
