// Reductions over any axis set (sum / mean / max / min), argmax, and sumTo for broadcasting backward (shaders/reduce*.wgsl).
import reduceSrc from '../../shaders/reduce.wgsl';
import argmaxSrc from '../../shaders/reduce_argmax.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, numel, type Shape } from '../tensor.js';
import { fill } from './elementwise.js';
import { grid1d } from './grid.js';
import { collapse, contiguousStrides, innerFirst } from './strided.js';

const K_REDUCE = { name: 'reduce', code: reduceSrc };
const K_ARGMAX = { name: 'reduce_argmax', code: argmaxSrc };

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min';
const OP_CODE: Record<ReduceOp, number> = { sum: 0, mean: 0, max: 1, min: 2 };

/** Launch knobs; a tuner may replace them per runtime under `rt.tuning.get('reduce')`. */
export interface ReduceTuning {
  /** Threads per workgroup (power of two). */
  wg: number;
  /** Elements each thread should get before another thread joins an output. */
  perThread: number;
  /** Most elements one thread sums sequentially before the row is split into chunks (accuracy, latency). */
  maxPerThread: number;
  /** Split long reductions until at least this many threads run (a real GPU needs tens of thousands). */
  minThreads: number;
}

function isTuning(v: unknown): v is ReduceTuning {
  return typeof v === 'object' && v !== null && 'wg' in v && 'perThread' in v && 'maxPerThread' in v && 'minThreads' in v;
}

function tuning(rt: Runtime): ReduceTuning {
  const t = rt.tuning.get('reduce');
  if (isTuning(t)) return t;
  const def: ReduceTuning = { wg: 256, perThread: 32, maxPerThread: 512, minThreads: 1 << 14 };
  rt.tuning.set('reduce', def);
  return def;
}

const fmt = (s: Shape): string => `[${s.join(', ')}]`;
/** Threads per output are powers of 4 (1, 4, 16, 64, 256): fewer pipeline variants to compile. */
const pow4ceil = (n: number): number => 4 ** Math.ceil(Math.log(Math.max(1, n)) / Math.log(4) - 1e-9);

/** Resolve axes (default all, negatives from the end) to a sorted list; throws on out-of-range or repeats. */
function normAxes(op: string, shape: Shape, axes?: number | number[]): number[] {
  const r = shape.length;
  const list = axes === undefined ? shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => {
    const n = a < 0 ? a + r : a;
    if (!Number.isInteger(a) || n < 0 || n >= r) throw new ShapeError(`${op}: axis ${a} is out of range for shape ${fmt(shape)}`);
    return n;
  });
  if (new Set(out).size !== out.length) throw new ShapeError(`${op}: repeated axis in [${list.join(', ')}] for shape ${fmt(shape)}`);
  return out.sort((a, b) => a - b);
}

/**
 * Threads sharing one output of R elements: as few as keep `minThreads` busy (more cost workgroup
 * barriers, which are dear on CPU adapters), never leaving a thread under `perThread` elements.
 */
function threadsPerOutput(nout: number, R: number, tune: ReduceTuning, wg: number): number {
  const most = Math.min(wg, pow4ceil(Math.ceil(R / tune.perThread)));
  let T = 1;
  while (T < most && nout * T < tune.minThreads) T *= 4;
  return Math.min(T, wg);
}

/** Kept dims (output order) and reduced dims, each outermost first with its x stride. */
interface Plan {
  kept: number[];
  keptStrides: number[];
  red: number[];
  redStrides: number[];
  /** The innermost collapsed dim is reduced (rows are contiguous runs of x). */
  innerReduced: boolean;
}

/**
 * Record y[o] = ⊕ over the reduced dims of x (flat [nout] f32 result), splitting long reductions
 * into chunks whose partials a second launch combines. `div` divides sums (mean).
 */
function reducePlan(x: Tensor, code: number, plan: Plan, div: number): Tensor {
  const rt = x.rt;
  const tune = tuning(rt);
  const nout = numel(plan.kept);
  const R = numel(plan.red);
  const wg = Math.min(tune.wg, rt.limits.maxComputeInvocationsPerWorkgroup, rt.limits.maxComputeWorkgroupSizeX);
  // Several threads per output only when its elements are contiguous (otherwise neighbouring
  // threads read neighbouring elements of different outputs), and only as many as it takes to
  // keep minThreads busy: extra threads cost workgroup barriers.
  const T = plan.innerReduced ? threadsPerOutput(nout, R, tune, wg) : 1;
  // Outputs along a contiguous kept innermost dim go 4 to a thread (16-byte runs per read).
  const kvec = !plan.innerReduced && plan.kept[plan.kept.length - 1]! % 4 === 0 ? 4 : 1;
  let split = Math.ceil(R / (T * tune.maxPerThread));
  const wantSplit = Math.ceil(tune.minThreads / ((nout / kvec) * T));
  split = Math.max(split, Math.min(wantSplit, Math.floor(R / (T * tune.perThread))), 1);
  const chunk = Math.ceil(R / split);
  split = Math.ceil(R / chunk);
  const ngroups = (nout / kvec) * split;
  const out = Tensor.empty(rt, [nout * split], 'f32');
  rt.dispatch(K_REDUCE, {
    buffers: [x, out],
    params: [
      ngroups,
      split,
      R,
      chunk,
      f32(split > 1 ? 1 : div),
      code,
      plan.kept.length,
      ...innerFirst(plan.kept, 3, 1),
      ...innerFirst(plan.keptStrides, 3),
      ...innerFirst(plan.red, 3, 1),
      ...innerFirst(plan.redStrides, 3),
    ],
    constants: { RRANK: plan.red.length, WG: wg, T, KVEC: kvec },
    workgroups: grid1d(ngroups * T, wg, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  if (split === 1) return out;
  // Second pass over the partials, viewed as [nout, split] rows.
  const partialPlan: Plan = {
    kept: nout > 1 ? [nout] : [],
    keptStrides: nout > 1 ? [split] : [],
    red: [split],
    redStrides: [1],
    innerReduced: true,
  };
  const res = reducePlan(out, code, partialPlan, div);
  out.dispose();
  return res;
}

/**
 * Reduce `x` over `axes` (default: all; negatives count from the end). keepDims leaves the reduced
 * axes as size 1. f32 accumulation in short chains (see shaders/reduce.wgsl). When nothing is
 * reduced (no axes, or only size-1 axes) the result is a view sharing x's storage, like reshape.
 */
export function reduce(x: Tensor, op: ReduceOp, axes?: number | number[], keepDims = false): Tensor {
  const name = `reduce ${op}`;
  const code = OP_CODE[op];
  if (code === undefined) throw new ShapeError(`reduce: unknown op '${String(op)}'`);
  if (x.dtype !== 'f32') throw new ShapeError(`${name}: expected an f32 tensor, got ${x.dtype} ${fmt(x.shape)}`);
  const ax = normAxes(name, x.shape, axes);
  const isRed = x.shape.map((_, i) => ax.includes(i));
  const outShape = keepDims ? x.shape.map((d, i) => (isRed[i] ? 1 : d)) : x.shape.filter((_, i) => !isRed[i]);
  const R = numel(x.shape.filter((_, i) => isRed[i]));
  if (numel(outShape) === 0) return Tensor.empty(x.rt, outShape, 'f32');
  if (R === 0) {
    if (op === 'sum') return fill(x.rt, outShape, 0);
    if (op === 'mean') return fill(x.rt, outShape, NaN);
    throw new ShapeError(`${name}: reducing an empty axis of ${fmt(x.shape)} has no ${op}`);
  }
  const l = collapse(x.shape, [contiguousStrides(x.shape)], isRed.map(Number));
  const plan: Plan = { kept: [], keptStrides: [], red: [], redStrides: [], innerReduced: l.kinds[l.kinds.length - 1] === 1 };
  l.dims.forEach((d, i) => {
    const s = l.strides[0]![i]!;
    if (l.kinds[i] === 1) {
      plan.red.push(d);
      plan.redStrides.push(s);
    } else {
      plan.kept.push(d);
      plan.keptStrides.push(s);
    }
  });
  if (plan.red.length === 0) return x.reshape(outShape);
  if (plan.red.length > 3 || plan.kept.length > 3) {
    throw new ShapeError(
      `${name}: axes [${ax.join(', ')}] of ${fmt(x.shape)} leave ${plan.red.length} reduced and ${plan.kept.length} kept runs of dims; at most 3 of each are supported`,
    );
  }
  const flat = reducePlan(x, code, plan, op === 'mean' ? R : 1);
  const res = flat.reshape(outShape);
  flat.dispose();
  return res;
}

/** Index of the first maximum along `axis` (i32, the axis removed). NaNs are not treated specially. */
export function argmax(x: Tensor, axis: number): Tensor {
  if (x.dtype !== 'f32') throw new ShapeError(`argmax: expected an f32 tensor, got ${x.dtype} ${fmt(x.shape)}`);
  const [a] = normAxes('argmax', x.shape, axis);
  const R = x.shape[a!]!;
  const outShape = x.shape.filter((_, i) => i !== a);
  const nout = numel(outShape);
  if (R === 0 && nout > 0) throw new ShapeError(`argmax: axis ${axis} of ${fmt(x.shape)} is empty`);
  const out = Tensor.empty(x.rt, outShape, 'i32');
  if (nout === 0) return out;
  const inner = numel(x.shape.slice(a! + 1));
  const rt = x.rt;
  const tune = tuning(rt);
  const wg = Math.min(tune.wg, rt.limits.maxComputeInvocationsPerWorkgroup, rt.limits.maxComputeWorkgroupSizeX);
  const T = threadsPerOutput(nout, R, tune, wg);
  rt.dispatch(K_ARGMAX, {
    buffers: [x, out],
    params: [nout, R, inner],
    constants: { WG: wg, T },
    workgroups: grid1d(nout * T, wg, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/**
 * Sum a broadcast result back to `shape` (autograd's broadcasting backward): sums the leading dims
 * x has in excess and every dim where `shape` has 1. Returns a view of x when nothing is summed.
 */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  const off = x.rank - shape.length;
  const bad = () => new ShapeError(`sumTo: cannot sum ${fmt(x.shape)} to ${fmt(shape)} (not a broadcast of it)`);
  if (off < 0) throw bad();
  const axes: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    const d = x.shape[i]!;
    if (i < off) axes.push(i);
    else if (shape[i - off] === d) continue;
    else if (shape[i - off] === 1) axes.push(i);
    else throw bad();
  }
  if (!axes.length) return x.reshape(shape);
  const r = reduce(x, 'sum', axes, true);
  const res = r.reshape(shape);
  r.dispose();
  return res;
}
