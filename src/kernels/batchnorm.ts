// Inference-mode 2-D batch norm on NCHW with an optional fused relu (shaders/batchnorm.wgsl).
import src from '../../shaders/batchnorm.wgsl';
import src4 from '../../shaders/batchnorm_vec4.wgsl';
import { f32 } from '../runtime/params.js';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';

const K = { name: 'batchnorm', code: src };
const K4 = { name: 'batchnorm_vec4', code: src4 };

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
  const hw = x.size / (x.shape[0]! * c);
  // Four elements per invocation when planes split into vec4s: ~3× the scalar kernel's bandwidth on
  // lavapipe (measured on [8,64,56,56], [32,512,14,14], [8,256,28,28]). A flat grid beat one
  // workgroup row per (n, c) plane, which idles most lanes on small planes (100× slower at 1×1).
  const v = hw % 4 === 0 ? 4 : 1;
  const n = x.size / v;
  rt.dispatch(v === 4 ? K4 : K, {
    buffers: [x, mean, variance, weight ?? mean, bias ?? mean, out],
    params: [n, hw / v, c, f32(eps)],
    constants: { WG: 256, HAS_W: !!weight, HAS_B: !!bias, RELU: activation === 'relu' },
    workgroups: grid1d(n, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}
