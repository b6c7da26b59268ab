// Index plans for strided kernels (broadcasting, reductions, transpose): collapse dims, vec4 bindings.
import { GraftError } from '../runtime/errors.js';
import type { Shape, Tensor } from '../tensor.js';

/** Row-major strides (in elements) of a contiguous tensor of `shape`. */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Dims (outermost first) and one stride list per operand, as a strided kernel walks them. */
export interface Layout {
  dims: number[];
  /** strides[k][i]: element stride of operand k along dims[i]. */
  strides: number[][];
  /** Optional tag per dim (e.g. reduced / kept); dims of different kinds never merge. */
  kinds: number[];
}

/**
 * Simplify a layout without changing the elements it visits or their order: drop size-1 dims,
 * then merge each dim into its inner neighbour when every operand steps through the pair as one
 * run (stride_outer = stride_inner · dim_inner) and both have the same kind.
 */
export function collapse(dims: readonly number[], strides: readonly (readonly number[])[], kinds?: readonly number[]): Layout {
  const keep: number[] = [];
  for (let i = 0; i < dims.length; i++) if (dims[i] !== 1) keep.push(i);
  const out: Layout = { dims: [], strides: strides.map(() => []), kinds: [] };
  for (const i of keep) {
    const d = dims[i]!;
    const kind = kinds?.[i] ?? 0;
    const last = out.dims.length - 1;
    const mergeable =
      last >= 0 && out.kinds[last] === kind && strides.every((s, k) => out.strides[k]![last] === s[i]! * d);
    if (mergeable) {
      out.dims[last] = out.dims[last]! * d;
      strides.forEach((s, k) => (out.strides[k]![last] = s[i]!));
    } else {
      out.dims.push(d);
      strides.forEach((s, k) => out.strides[k]!.push(s[i]!));
      out.kinds.push(kind);
    }
  }
  return out;
}

/** `v` (outermost first) reversed to innermost first and padded with `pad` to `n` entries (WGSL d0..d{n-1}). */
export function innerFirst(v: readonly number[], n: number, pad = 0): number[] {
  if (v.length > n) throw new GraftError(`innerFirst: ${v.length} dims exceed ${n}`);
  const r = [...v].reverse();
  while (r.length < n) r.push(pad);
  return r;
}

const vec4WindowBytes = (t: Tensor): number => Math.max(16, Math.ceil(t.byteLength / 16) * 16);

/** Whether vec4Binding(t) applies: t starts 16-byte aligned and its window rounded up to whole vec4s fits its buffer. */
export function hasVec4Window(t: Tensor): boolean {
  return t.byteOffset % 16 === 0 && t.byteOffset + vec4WindowBytes(t) <= t.buffer.size;
}

/**
 * The tensor's buffer window rounded up to whole vec4s (16 bytes), for kernels that bind
 * `array<vec4f>` and touch the last partial vec4. Pooled buffers (size classes are multiples of
 * 64 bytes) and arena views (256-byte aligned slots) always have that room; the padding bytes
 * may be overwritten, they belong to no tensor.
 */
export function vec4Binding(t: Tensor): GPUBufferBinding {
  const size = vec4WindowBytes(t);
  const buf = t.buffer;
  if (!hasVec4Window(t)) {
    throw new GraftError(
      `tensor #${t.id} [${t.shape.join(', ')}] at byte ${t.byteOffset} of a ${buf.size}-byte buffer has no room for a vec4 window of ${size} bytes`,
    );
  }
  return { buffer: buf, offset: t.byteOffset, size };
}
