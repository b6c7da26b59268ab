// Gradient buffers: in-place `dst += src` (shaders/accumulate.wgsl), clone, zero, and an aliasing test.
import src from '../../shaders/accumulate.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from '../kernels/grid.js';

const K = { name: 'accumulate', code: src };

const fmt = (t: Tensor): string => `${t.dtype} [${t.shape.join(', ')}]`;

/** dst += src, in place (same element count, f32). dst may be a FlatArena view. */
export function accumulateInto(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== 'f32' || src.dtype !== 'f32' || dst.size !== src.size) {
    throw new ShapeError(`accumulate: cannot add ${fmt(src)} into ${fmt(dst)}`);
  }
  if (dst.size === 0) return;
  const rt = dst.rt;
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
