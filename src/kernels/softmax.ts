// Softmax and log-softmax along any axis (shaders/softmax.wgsl), numerically stable (max-subtracted).
import src from '../../shaders/softmax.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { planRows } from './rowplan.js';

const K = { name: 'softmax', code: src };

/** Resolve a possibly negative axis against `rank`, or throw naming the op and shape. */
export function normAxis(op: string, shape: readonly number[], axis: number): number {
  const r = shape.length;
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= r) throw new ShapeError(`${op}: axis ${axis} is out of range for shape [${shape.join(', ')}]`);
  return a;
}

function run(op: string, x: Tensor, axis: number, log: boolean, force?: { wg?: number; t?: number }): Tensor {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: expected an f32 tensor, got ${x.dtype} [${x.shape.join(', ')}]`);
  if (x.rank === 0) throw new ShapeError(`${op}: needs at least one dimension, got shape []`);
  const a = normAxis(op, x.shape, axis);
  const d = x.shape[a]!;
  let inner = 1;
  for (let i = a + 1; i < x.rank; i++) inner *= x.shape[i]!;
  const out = Tensor.empty(x.rt, x.shape, 'f32');
  if (x.size === 0) return out;
  const rows = x.size / d;
  const plan = planRows(x.rt, rows, d, force);
  x.rt.dispatch(K, {
    buffers: [x, out],
    params: [rows, d, inner],
    constants: { WG: plan.wg, T: plan.t, LOG: log },
    workgroups: plan.workgroups,
  });
  return out;
}

/** softmax(x) along `axis` (default last): y = exp(x - max) / Σ exp(x - max). Same shape as x. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return run('softmax', x, axis, false);
}

/** log-softmax along `axis` (default last): y = x - max - log Σ exp(x - max). Same shape as x. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return run('logSoftmax', x, axis, true);
}

/** For tests and benchmarks: softmax with a forced launch plan (threads per workgroup / per row). */
export function softmaxWithPlan(x: Tensor, axis: number, log: boolean, force: { wg?: number; t?: number }): Tensor {
  return run(log ? 'logSoftmax' : 'softmax', x, axis, log, force);
}
