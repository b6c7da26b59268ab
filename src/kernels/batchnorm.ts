// Inference-mode 2-D batch norm on NCHW with an optional fused relu (shaders/batchnorm.wgsl).
import src from '../../shaders/batchnorm.wgsl';
import { f32 } from '../runtime/params.js';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { ceilDiv } from './grid.js';

const K = { name: 'batchnorm', code: src };

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * Batch norm with running statistics (eval mode) on x [N, C, H, W] (or [N, C], [N, C, L]):
 * y = (x - mean) / sqrt(variance + eps) * weight + bias per channel, then relu if asked.
 * mean, variance, weight, bias: [C]; weight / bias null mean 1 / 0.
 */
export function batchNorm2d(
  x: Tensor,
  mean: Tensor,
  variance: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  activation: 'none' | 'relu' = 'none',
): Tensor {
  if (x.rank < 2) throw new ShapeError(`batchNorm2d: x must be [N, C, ...], got shape ${fmt(x)}`);
  const c = x.shape[1]!;
  for (const [name, t] of [['x', x], ['mean', mean], ['variance', variance], ['weight', weight], ['bias', bias]] as const) {
    if (!t) continue;
    if (t.dtype !== 'f32') throw new ShapeError(`batchNorm2d: ${name} must be f32, got ${t.dtype} ${fmt(t)}`);
    if (t !== x && (t.rank !== 1 || t.shape[0] !== c)) {
      throw new ShapeError(`batchNorm2d: ${name} shape ${fmt(t)} must be [${c}], the channel dim of x shape ${fmt(x)}`);
    }
  }
  if (!(eps >= 0)) throw new ShapeError(`batchNorm2d: eps must be >= 0, got ${eps}`);
  if (activation !== 'none' && activation !== 'relu') throw new ShapeError(`batchNorm2d: unknown activation '${String(activation)}'`);
  const rt = x.rt;
  const out = Tensor.empty(rt, x.shape, 'f32');
  if (x.size === 0) return out;
  const planes = x.shape[0]! * c;
  const hw = x.size / planes;
  const wg = hw >= 256 ? 256 : 64;
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  const gz = ceilDiv(planes, max);
  rt.dispatch(K, {
    buffers: [x, mean, variance, weight ?? mean, bias ?? mean, out],
    params: [hw, c, planes, f32(eps)],
    constants: { WG: wg, HAS_W: !!weight, HAS_B: !!bias, RELU: activation === 'relu' },
    workgroups: [ceilDiv(hw, wg), ceilDiv(planes, gz), gz],
  });
  return out;
}
