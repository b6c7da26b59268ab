// Activation backward dx = dy * f'(x) for relu / exact GELU / tanh-GELU / tanh / sigmoid (shaders/activation_bwd.wgsl).
import src from '../../shaders/activation_bwd.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';

const K = { name: 'activation_bwd', code: src };

export type BackwardActivation = 'relu' | 'gelu' | 'gelu_tanh' | 'tanh' | 'sigmoid';

const OPS: Record<BackwardActivation, number> = { relu: 0, gelu: 1, gelu_tanh: 2, tanh: 3, sigmoid: 4 };

/** dx = dy * f'(x), where x is the activation's INPUT (same shape as dy). gelu = exact erf GELU. */
export function activationBackward(x: Tensor, dy: Tensor, op: BackwardActivation): Tensor {
  const shapes = `x [${x.shape.join(', ')}] and dy [${dy.shape.join(', ')}]`;
  if (x.dtype !== 'f32' || dy.dtype !== 'f32') throw new ShapeError(`activationBackward: expected f32 tensors, got ${x.dtype} ${shapes} (${dy.dtype})`);
  if (x.size !== dy.size || x.rank !== dy.rank || x.shape.some((d, i) => d !== dy.shape[i])) {
    throw new ShapeError(`activationBackward: ${shapes} must have the same shape`);
  }
  const code = OPS[op];
  if (code === undefined) throw new ShapeError(`activationBackward: unknown activation '${String(op)}'`);
  const rt = x.rt;
  const dx = Tensor.empty(rt, x.shape, 'f32');
  rt.dispatch(K, {
    buffers: [x, dy, dx],
    params: [x.size],
    constants: { OP: code, WG: 256 },
    workgroups: grid1d(x.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return dx;
}
