// f32 <-> f16 casts (shaders/cast_f32_f16.wgsl, shaders/cast_f16_f32.wgsl).
import toF16 from '../../shaders/cast_f32_f16.wgsl';
import toF32 from '../../shaders/cast_f16_f32.wgsl';
import { GraftError } from '../runtime/errors.js';
import { Tensor, type DType } from '../tensor.js';
import { grid1d } from './grid.js';

const K_TO_F16 = { name: 'cast_f32_f16', code: toF16 };
const K_TO_F32 = { name: 'cast_f16_f32', code: toF32 };

/** Cast between f32 and f16 (same shape). Casting to the same dtype returns a copy-free view. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.reshape(x.shape);
  const rt = x.rt;
  if (!rt.features.f16) throw new GraftError('f16 casts need the shader-f16 feature, which this adapter lacks');
  let k;
  if (x.dtype === 'f32' && dtype === 'f16') k = K_TO_F16;
  else if (x.dtype === 'f16' && dtype === 'f32') k = K_TO_F32;
  else throw new GraftError(`cast from ${x.dtype} to ${dtype} is not supported`);
  const out = Tensor.empty(rt, x.shape, dtype);
  rt.dispatch(k, { buffers: [x, out], params: [x.size], workgroups: grid1d(x.size, 256, rt.limits.maxComputeWorkgroupsPerDimension) });
  return out;
}
