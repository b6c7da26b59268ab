// Gradient buffers: in-place `dst += src` (shaders/accumulate.wgsl), clone, zero, and an aliasing test.
import src from '../../shaders/accumulate.wgsl';
import srcVec4 from '../../shaders/accumulate_vec4.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from '../kernels/grid.js';
import { captureEpoch } from '../runtime/capture.js';
import { hasVec4Window, vec4Binding } from '../kernels/strided.js';

const K = { name: 'accumulate', code: src };
const K_VEC4 = { name: 'accumulate_vec4', code: srcVec4 };

const fmt = (t: Tensor): string => `${t.dtype} [${t.shape.join(', ')}]`;

/**
 * dst += src, in place (same element count, f32). dst may be a FlatArena view. When dst is known to be zero
 * (dst.zeroed) this records a buffer copy instead — while capturing a step only if the clear was recorded by the
 * same capture (a replay repeats the clear; a clear from outside the capture is not repeated).
 */
export function accumulateInto(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== 'f32' || src.dtype !== 'f32' || dst.size !== src.size) {
    throw new ShapeError(`accumulate: cannot add ${fmt(src)} into ${fmt(dst)}`);
  }
  if (dst.size === 0) return;
  if (dst.zeroed !== false && dst.zeroed === captureEpoch() && src.buffer !== dst.buffer) {
    copyInto(dst, src);
    return;
  }
  dst.zeroed = false;
  const rt = dst.rt;
  // vec4 path only when dst ends on a whole vec4 (its window's tail could belong to a neighbouring view)
  if (dst.size % 4 === 0 && hasVec4Window(dst) && hasVec4Window(src) && src.buffer !== dst.buffer) {
    const nq = Math.ceil(dst.size / 4);
    rt.dispatch(K_VEC4, {
      buffers: [vec4Binding(src), vec4Binding(dst)],
      params: [nq],
      workgroups: grid1d(nq, 256, rt.limits.maxComputeWorkgroupsPerDimension),
    });
    return;
  }
  rt.dispatch(K, {
    buffers: [src, dst],
    params: [dst.size],
    constants: { WG: 256 },
    workgroups: grid1d(dst.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
}

/** A copy of `t` in a fresh buffer (recorded in order with kernels). */
export function clone(t: Tensor): Tensor {
  const out = Tensor.empty(t.rt, t.shape, t.dtype);
  copyInto(out, t);
  return out;
}

/** Copy the contents of `src` into `dst` (same dtype and element count), in order with kernels. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== src.dtype || dst.size !== src.size) throw new ShapeError(`copy: cannot copy ${fmt(src)} into ${fmt(dst)}`);
  dst.zeroed = false;
  if (dst.size === 0) return;
  const bytes = (src.byteLength + 3) & ~3;
  const enc = dst.rt.commandEncoder();
  if (src.buffer !== dst.buffer) {
    enc.copyBufferToBuffer(src.buffer, src.byteOffset, dst.buffer, dst.byteOffset, bytes);
    return;
  }
  if (src.byteOffset === dst.byteOffset) return; // the same data (e.g. loading a module's own state dict)
  // WebGPU forbids copies within one buffer (e.g. two views of a FlatArena): go through a temporary.
  const tmp = Tensor.empty(dst.rt, src.shape, src.dtype);
  enc.copyBufferToBuffer(src.buffer, src.byteOffset, tmp.buffer, tmp.byteOffset, bytes);
  enc.copyBufferToBuffer(tmp.buffer, tmp.byteOffset, dst.buffer, dst.byteOffset, bytes);
  tmp.dispose();
}

/** Zero a tensor in place (recorded in order with kernels). */
export function zeroInto(t: Tensor): void {
  t.zeroed = captureEpoch();
  if (t.size === 0) return;
  t.rt.commandEncoder().clearBuffer(t.buffer, t.byteOffset, (t.byteLength + 3) & ~3);
}

/**
 * True when no other tensor or view shares `t`'s buffer, so writing into it in place is safe.
 * (`Tensor.shared` is true while another tensor or arena holds the same buffer.)
 */
export function isExclusive(t: Tensor): boolean {
  return !t.shared;
}
