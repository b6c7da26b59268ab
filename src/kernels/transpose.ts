// Layout copies: transpose (any permutation), copy, slice and concat, all materialising contiguous results (shaders/transpose.wgsl).
import src from '../../shaders/transpose.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor, BYTES_PER_ELEMENT, type Shape } from '../tensor.js';
import { grid1d } from './grid.js';
import { collapse, contiguousStrides, innerFirst } from './strided.js';

const K = { name: 'transpose', code: src };

/** Most dims a strided copy may keep after merging (the shader's d0..d5). */
export const MAX_COPY_RANK = 6;

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

function check4Byte(op: string, x: Tensor): void {
  if (BYTES_PER_ELEMENT[x.dtype] !== 4) throw new ShapeError(`${op}: supports 4-byte dtypes (f32, i32), got ${x.dtype} ${fmt(x.shape)}`);
}

/**
 * Copy the box `dims` from x (element strides `is`, first element `ibase`) to y (strides `os`,
 * first element `obase`). Contiguous runs on both sides become one buffer copy. Disposes y if it throws.
 */
function stridedCopy(op: string, x: Tensor, y: Tensor, dims: number[], is: number[], os: number[], ibase: number, obase: number): void {
  const rt = x.rt;
  const l = collapse(dims, [is, os]);
  const n = l.dims.reduce((s, d) => s * d, 1);
  if (n === 0) return;
  const [lis, los] = [l.strides[0]!, l.strides[1]!];
  const rank = l.dims.length;
  if (rank === 0 || (rank === 1 && lis[0] === 1 && los[0] === 1)) {
    rt.commandEncoder().copyBufferToBuffer(x.buffer, x.byteOffset + 4 * ibase, y.buffer, y.byteOffset + 4 * obase, 4 * n);
    return;
  }
  if (rank > MAX_COPY_RANK) {
    y.dispose();
    throw new ShapeError(`${op}: ${fmt(x.shape)} needs ${rank} dims after merging, at most ${MAX_COPY_RANK} are supported`);
  }
  const outContig = contiguousStrides(l.dims).every((s, i) => s === los[i]);
  const inner4 = l.dims[rank - 1]! % 4 === 0;
  rt.dispatch(K, {
    buffers: [x, y],
    params: [n, ibase, obase, ...innerFirst(l.dims, MAX_COPY_RANK, 1), ...innerFirst(lis, MAX_COPY_RANK), ...innerFirst(los, MAX_COPY_RANK)],
    constants: { RANK: Math.max(1, rank), OUT_CONTIG: outContig, INNER4: inner4 },
    workgroups: grid1d(inner4 ? n / 4 : n, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
}

/** y[i0, i1, ...] = x[...] with y.shape[i] = x.shape[perm[i]]; default perm reverses the axes. Contiguous copy. */
export function transpose(x: Tensor, perm?: number[]): Tensor {
  const r = x.rank;
  const p = perm ?? [...x.shape.keys()].reverse();
  const norm = p.map((a) => (a < 0 ? a + r : a));
  if (norm.length !== r || [...norm].sort((a, b) => a - b).some((a, i) => a !== i)) {
    throw new ShapeError(`transpose: [${p.join(', ')}] is not a permutation of the axes of ${fmt(x.shape)}`);
  }
  check4Byte('transpose', x);
  const outShape = norm.map((a) => x.shape[a]!);
  const xs = contiguousStrides(x.shape);
  const y = Tensor.empty(x.rt, outShape, x.dtype);
  stridedCopy('transpose', x, y, outShape, norm.map((a) => xs[a]!), contiguousStrides(outShape), 0, 0);
  return y;
}

/** A contiguous copy with its own storage. */
export function copy(x: Tensor): Tensor {
  const y = Tensor.empty(x.rt, x.shape, x.dtype);
  const bytes = (x.byteLength + 3) & ~3;
  if (bytes) x.rt.commandEncoder().copyBufferToBuffer(x.buffer, x.byteOffset, y.buffer, y.byteOffset, bytes);
  return y;
}

/**
 * The box x[starts[d] : ends[d]] along every dim as a contiguous tensor. Negative starts/ends count
 * from the end of the dim (Python style); the box must lie inside x.
 */
export function slice(x: Tensor, starts: number[], ends: number[]): Tensor {
  check4Byte('slice', x);
  const r = x.rank;
  const bad = (why: string) =>
    new ShapeError(`slice: starts [${starts.join(', ')}] / ends [${ends.join(', ')}] do not fit ${fmt(x.shape)}: ${why}`);
  if (starts.length !== r || ends.length !== r) throw bad(`need ${r} starts and ends`);
  const s0 = starts.map((s, i) => (s < 0 ? s + x.shape[i]! : s));
  const e0 = ends.map((e, i) => (e < 0 ? e + x.shape[i]! : e));
  for (let i = 0; i < r; i++) {
    if (!Number.isInteger(s0[i]) || !Number.isInteger(e0[i]) || s0[i]! < 0 || e0[i]! > x.shape[i]! || s0[i]! > e0[i]!) {
      throw bad(`dim ${i} range ${starts[i]}:${ends[i]}`);
    }
  }
  const box = s0.map((s, i) => e0[i]! - s);
  const xs = contiguousStrides(x.shape);
  const ibase = s0.reduce((acc, s, i) => acc + s * xs[i]!, 0);
  const y = Tensor.empty(x.rt, box, x.dtype);
  stridedCopy('slice', x, y, box, xs, contiguousStrides(box), ibase, 0);
  return y;
}

/** Join tensors of equal rank and dtype along `axis` (negative counts from the end); other dims must match. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (!xs.length) throw new ShapeError('concat: needs at least one tensor');
  const first = xs[0]!;
  check4Byte('concat', first);
  const r = first.rank;
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= r) throw new ShapeError(`concat: axis ${axis} is out of range for ${fmt(first.shape)}`);
  for (const t of xs) {
    const ok = t.rank === r && t.dtype === first.dtype && t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!ok) {
      throw new ShapeError(`concat: ${t.dtype} ${fmt(t.shape)} does not match ${first.dtype} ${fmt(first.shape)} outside axis ${a}`);
    }
  }
  const outShape = [...first.shape];
  outShape[a] = xs.reduce((s, t) => s + t.shape[a]!, 0);
  const y = Tensor.empty(first.rt, outShape, first.dtype);
  const os = contiguousStrides(outShape);
  let at = 0;
  for (const t of xs) {
    stridedCopy('concat', t, y, [...t.shape], contiguousStrides(t.shape), os, 0, at * os[a]!);
    at += t.shape[a]!;
  }
  return y;
}
