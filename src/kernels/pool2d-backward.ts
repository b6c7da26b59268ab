// Pooling backward: max (argmax recomputed from x, gather), average (PyTorch divisor rule) and global average.
import argmaxSrc from '../../shaders/pool2d_bwd_argmax.wgsl';
import maxSrc from '../../shaders/pool2d_bwd_max.wgsl';
import avgSrc from '../../shaders/pool2d_bwd_avg.wgsl';
import globalSrc from '../../shaders/pool2d_bwd_global.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import { Tensor, type Shape } from '../tensor.js';
import { grid1d } from './grid.js';

const K_ARGMAX = { name: 'pool2d_bwd_argmax', code: argmaxSrc };
const K_MAX = { name: 'pool2d_bwd_max', code: maxSrc };
const K_AVG = { name: 'pool2d_bwd_avg', code: avgSrc };
const K_GLOBAL = { name: 'pool2d_bwd_global', code: globalSrc };

export type Pair = number | [number, number];

/** The forward pooling's options (PyTorch semantics; stride defaults to the kernel size). */
export interface PoolOpts {
  kernel: Pair;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /** Output size rounds up; a last window starting in the right padding is dropped. */
  ceilMode?: boolean;
  /** Average pooling: padding taps count towards the divisor (default true, like PyTorch). */
  countIncludePad?: boolean;
}

/** Shapes of one pooling: x [N, C, H, W] -> y [N, C, P, Q] (rank-3 [C, H, W] inputs have N = 1). */
export interface PoolBwdGeom {
  N: number; C: number; H: number; W: number; R: number; S: number; P: number; Q: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

function pair(op: string, v: Pair | undefined, dflt: [number, number], what: string): [number, number] {
  const p: [number, number] = v === undefined ? dflt : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const min = what === 'padding' ? 0 : 1;
  if (p.some((e) => !Number.isInteger(e) || e < min)) throw new ShapeError(`${op}: ${what} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  return p;
}

/** PyTorch's pooling output size along one axis. */
export function poolOutputSize(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = size + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (o - 1) * s >= size + p) o--;
  return o;
}

/** Validate x and dy shapes against the options and build the geometry. */
export function poolBwdGeom(op: string, xShape: Shape, dyShape: Shape, o: PoolOpts): PoolBwdGeom {
  const both = `x ${fmt(xShape)}, dy ${fmt(dyShape)}`;
  const rank = xShape.length;
  if ((rank !== 4 && rank !== 3) || dyShape.length !== rank) {
    throw new ShapeError(`${op}: expected x [N, C, H, W] and dy [N, C, P, Q] (or both without N), got ${both}`);
  }
  const [N, C, H, W] = (rank === 3 ? [1, ...xShape] : xShape) as [number, number, number, number];
  const dy4 = rank === 3 ? [1, ...dyShape] : dyShape;
  const [R, S] = pair(op, o.kernel, [0, 0], 'kernel');
  const [sh, sw] = pair(op, o.stride, [R, S], 'stride');
  const [ph, pw] = pair(op, o.padding, [0, 0], 'padding');
  const [dh, dw] = pair(op, o.dilation, [1, 1], 'dilation');
  if (2 * ph > (R - 1) * dh + 1 || 2 * pw > (S - 1) * dw + 1) {
    throw new ShapeError(`${op}: padding ${ph}×${pw} must be at most half the effective kernel ${(R - 1) * dh + 1}×${(S - 1) * dw + 1} (${both})`);
  }
  const ceil = !!o.ceilMode;
  const P = poolOutputSize(H, R, sh, ph, dh, ceil);
  const Q = poolOutputSize(W, S, sw, pw, dw, ceil);
  if (P < 1 || Q < 1) throw new ShapeError(`${op}: window ${R}×${S} does not fit the padded input (${both})`);
  if (dy4[0] !== N || dy4[1] !== C || dy4[2] !== P || dy4[3] !== Q) {
    throw new ShapeError(`${op}: dy must be [${(rank === 3 ? [C, P, Q] : [N, C, P, Q]).join(', ')}] for these options (${both})`);
  }
  return { N, C, H, W, R, S, P, Q, sh, sw, ph, pw, dh, dw };
}

function checkF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new ShapeError(`${op}: only f32 tensors are supported, got ${t.dtype} ${fmt(t.shape)}`);
}

function params(n: number, g: PoolBwdGeom): number[] {
  return [n, g.H, g.W, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw];
}

/**
 * Max-pool backward. dy [N, C, P, Q], x [N, C, H, W] (the forward input) -> dx [N, C, H, W]; [C, H, W] also works.
 * Recomputes each window's argmax from x (first max wins, like PyTorch), then each dx element gathers the dy of the
 * windows whose argmax it is (deterministic, no atomics).
 */
export function maxPool2dBackward(dy: Tensor, x: Tensor, opts: PoolOpts): Tensor {
  const op = 'maxPool2dBackward';
  checkF32(op, dy, x);
  const g = poolBwdGeom(op, x.shape, dy.shape, opts);
  const rt = x.rt;
  const dx = Tensor.empty(rt, x.shape);
  if (dx.size === 0) return dx;
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  const idx = Tensor.empty(rt, dy.shape, 'i32');
  rt.dispatch(K_ARGMAX, { buffers: [x, idx], params: params(dy.size, g), workgroups: grid1d(dy.size, 256, max) });
  rt.dispatch(K_MAX, { buffers: [dy, idx, dx], params: params(dx.size, g), workgroups: grid1d(dx.size, 256, max) });
  idx.dispose();
  return dx;
}

/** Average-pool backward. dy [N, C, P, Q] -> dx [N, C, H, W] (xShape; [C, H, W] also works), gather formulation. */
export function avgPool2dBackward(dy: Tensor, xShape: Shape, opts: PoolOpts): Tensor {
  const op = 'avgPool2dBackward';
  checkF32(op, dy);
  const g = poolBwdGeom(op, xShape, dy.shape, opts);
  const rt = dy.rt;
  const dx = Tensor.empty(rt, xShape);
  if (dx.size === 0) return dx;
  rt.dispatch(K_AVG, {
    buffers: [dy, dx],
    params: params(dx.size, g),
    constants: { COUNT_PAD: opts.countIncludePad ?? true },
    workgroups: grid1d(dx.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return dx;
}

/** Global average-pool backward. dy [N, C] (or [N, C, 1, 1]) -> dx [N, C, H, W] = dy / (H·W). */
export function globalAvgPool2dBackward(dy: Tensor, xShape: Shape): Tensor {
  const op = 'globalAvgPool2dBackward';
  checkF32(op, dy);
  const ok =
    xShape.length === 4 &&
    dy.shape[0] === xShape[0] &&
    dy.shape[1] === xShape[1] &&
    (dy.rank === 2 || (dy.rank === 4 && dy.shape[2] === 1 && dy.shape[3] === 1));
  if (!ok) throw new ShapeError(`${op}: expected dy [N, C] for x [N, C, H, W], got dy ${fmt(dy.shape)}, x ${fmt(xShape)}`);
  const rt = dy.rt;
  const dx = Tensor.empty(rt, xShape);
  if (dx.size === 0) return dx;
  const HW = xShape[2]! * xShape[3]!;
  rt.dispatch(K_GLOBAL, {
    buffers: [dy, dx],
    params: [dx.size, HW, f32(1 / HW)],
    workgroups: grid1d(dx.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return dx;
}
