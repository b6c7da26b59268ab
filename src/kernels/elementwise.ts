// Element-wise kernels: unary ops, broadcasting binary ops, scale (alpha·x + beta) and fill (shaders/{unary,binary,fill}.wgsl).
import unarySrc from '../../shaders/unary.wgsl';
import binarySrc from '../../shaders/binary.wgsl';
import fillSrc from '../../shaders/fill.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { f32, type ParamValue } from '../runtime/params.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, type Shape } from '../tensor.js';
import { grid1d } from './grid.js';
import { collapse, contiguousStrides, innerFirst, vec4Binding } from './strided.js';

const K_UNARY = { name: 'unary', code: unarySrc };
const K_BINARY = { name: 'binary', code: binarySrc };
const K_FILL = { name: 'fill', code: fillSrc };

/** gelu is the exact erf form (erf approximated to < 1.2e-7 relative error); step = x > 0 ? 1 : 0. */
export type UnaryOp =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'square' | 'reciprocal' | 'relu'
  | 'gelu' | 'gelu_tanh' | 'tanh' | 'sigmoid' | 'sin' | 'cos' | 'sign' | 'step';

/** Comparisons (eq, gt, lt) give 1.0 / 0.0 in f32. */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'pow' | 'eq' | 'gt' | 'lt';

// Op codes as shaders/unary.wgsl and shaders/binary.wgsl number them (unary 0 is the affine map).
const UNARY_CODE: Record<UnaryOp, number> = {
  neg: 1, abs: 2, exp: 3, log: 4, sqrt: 5, rsqrt: 6, square: 7, reciprocal: 8, relu: 9,
  gelu: 10, gelu_tanh: 11, tanh: 12, sigmoid: 13, sin: 14, cos: 15, sign: 16, step: 17,
};
const BINARY_CODE: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, pow: 6, eq: 7, gt: 8, lt: 9 };

/** Broadcast modes of shaders/binary.wgsl. */
const enum Mode {
  Same = 0,
  ScalarParam = 1,
  ScalarB = 2,
  ScalarA = 3,
  General = 4,
}

/** Most dims a broadcast may keep after collapsing (the shader's d0..d5). */
export const MAX_BROADCAST_RANK = 6;

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

function checkF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== 'f32') throw new ShapeError(`${op}: expected f32 tensors, got ${t.dtype} ${fmt(t.shape)}`);
  }
}

function launch1d(rt: Runtime, nq: number): [number, number] {
  return grid1d(nq, 256, rt.limits.maxComputeWorkgroupsPerDimension);
}

/** y = op(x), same shape. */
export function unary(x: Tensor, op: UnaryOp): Tensor {
  const code = UNARY_CODE[op];
  if (code === undefined) throw new ShapeError(`unary: unknown op '${String(op)}'`);
  return runUnary(x, code, 1, 0, op);
}

/** y = alpha·x + beta in one kernel. */
export function scale(x: Tensor, alpha: number, beta = 0): Tensor {
  return runUnary(x, 0, alpha, beta, 'scale');
}

function runUnary(x: Tensor, code: number, alpha: number, beta: number, name: string): Tensor {
  checkF32(name, x);
  const rt = x.rt;
  const out = Tensor.empty(rt, x.shape, 'f32');
  const nq = Math.ceil(x.size / 4);
  if (nq === 0) return out;
  rt.dispatch(K_UNARY, {
    buffers: [vec4Binding(x), vec4Binding(out)],
    params: [nq, code, f32(alpha), f32(beta)],
    constants: { OP: code },
    workgroups: launch1d(rt, nq),
  });
  return out;
}

/** A tensor of `shape` with every element `value`. */
export function fill(rt: Runtime, shape: Shape, value: number): Tensor {
  const out = Tensor.empty(rt, shape, 'f32');
  const nq = Math.ceil(out.size / 4);
  if (nq === 0) return out;
  rt.dispatch(K_FILL, { buffers: [vec4Binding(out)], params: [nq, f32(value)], workgroups: launch1d(rt, nq) });
  return out;
}

/** numpy broadcasting of two shapes (aligned at the innermost dim); throws ShapeError naming both. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: cannot broadcast shapes ${fmt(a)} and ${fmt(b)} (dim ${i - r}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of `shape` read as the broadcast `out` shape (0 along broadcast and missing dims). */
function broadcastStrides(shape: Shape, out: Shape): number[] {
  const own = contiguousStrides(shape);
  const off = out.length - shape.length;
  return out.map((d, i) => (i < off || (shape[i - off] === 1 && d !== 1) ? 0 : own[i - off]!));
}

/** How shaders/binary.wgsl walks a broadcast: its mode and, for the general mode, the merged dims and strides. */
interface BinaryPlan {
  outShape: number[];
  mode: Mode;
  /** General mode only (else empty): dims outermost first, element strides of a and b (0 = broadcast). */
  dims: number[];
  sa: number[];
  sb: number[];
}

function planBinary(name: string, a: Tensor, b: Tensor): BinaryPlan {
  const outShape = broadcastShapes(a.shape, b.shape, name);
  const l = collapse(outShape, [broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape)]);
  const [sa, sb] = [l.strides[0]!, l.strides[1]!];
  const contig = (s: number[]) => s.length === 0 || (s.length === 1 && s[0] === 1);
  const zero = (s: number[]) => s.every((v) => v === 0);
  const simple = (mode: Mode): BinaryPlan => ({ outShape, mode, dims: [], sa: [], sb: [] });
  if (contig(sa) && contig(sb)) return simple(Mode.Same);
  if (contig(sa) && zero(sb)) return simple(Mode.ScalarB);
  if (zero(sa) && contig(sb)) return simple(Mode.ScalarA);
  if (l.dims.length > MAX_BROADCAST_RANK) {
    throw new ShapeError(
      `${name}: broadcasting ${fmt(a.shape)} with ${fmt(b.shape)} needs ${l.dims.length} dims after merging, at most ${MAX_BROADCAST_RANK} are supported`,
    );
  }
  return { outShape, mode: Mode.General, dims: l.dims, sa, sb };
}

/** y = a ∘ b with numpy broadcasting; a number b is a scalar passed in the kernel params (no upload). */
export function binary(a: Tensor, b: Tensor | number, op: BinaryOp): Tensor {
  const code = BINARY_CODE[op];
  if (code === undefined) throw new ShapeError(`binary: unknown op '${String(op)}'`);
  const name = `binary ${op}`;
  const rt = a.rt;
  if (typeof b === 'number') checkF32(name, a);
  else checkF32(name, a, b);
  const plan: BinaryPlan =
    typeof b === 'number' ? { outShape: [...a.shape], mode: Mode.ScalarParam, dims: [], sa: [], sb: [] } : planBinary(name, a, b);
  const out = Tensor.empty(rt, plan.outShape, 'f32');
  const n = out.size;
  const nq = Math.ceil(n / 4);
  if (nq === 0) return out;
  const params: ParamValue[] = [
    n,
    nq,
    code,
    f32(typeof b === 'number' ? b : 0),
    ...innerFirst(plan.dims, MAX_BROADCAST_RANK, 1),
    ...innerFirst(plan.sa, MAX_BROADCAST_RANK),
    ...innerFirst(plan.sb, MAX_BROADCAST_RANK),
  ];
  const rank = plan.dims.length;
  rt.dispatch(K_BINARY, {
    // A number b still needs a buffer at binding 2: a again (read-only twice is allowed).
    buffers: [vec4Binding(a), vec4Binding(typeof b === 'number' ? a : b), vec4Binding(out)],
    params,
    constants: { OP: code, MODE: plan.mode, RANK: Math.max(rank, 1), INNER4: rank > 0 && plan.dims[rank - 1]! % 4 === 0 },
    workgroups: launch1d(rt, nq),
  });
  return out;
}
