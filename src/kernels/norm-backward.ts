// Training-time normalisation kernels: layer norm forward that saves mean/rstd, layer norm backward
// (dx + deterministic two-stage dweight/dbias), softmax / log-softmax backward.
import trainFwd from '../../shaders/layernorm_bwd_train_fwd.wgsl';
import dxSrc from '../../shaders/layernorm_bwd_dx.wgsl';
import partialSrc from '../../shaders/layernorm_bwd_partial.wgsl';
import reduceSrc from '../../shaders/layernorm_bwd_reduce.wgsl';
import smBwdSrc from '../../shaders/softmax_bwd.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';
import { planRows } from './rowplan.js';

const K_FWD = { name: 'layernorm_bwd_train_fwd', code: trainFwd };
const K_DX = { name: 'layernorm_bwd_dx', code: dxSrc };
const K_PARTIAL = { name: 'layernorm_bwd_partial', code: partialSrc };
const K_REDUCE = { name: 'layernorm_bwd_reduce', code: reduceSrc };
const K_SM = { name: 'softmax_bwd', code: smBwdSrc };

const fmt = (t: Tensor) => `[${t.shape.join(', ')}]`;

/** Threads per workgroup (wg), threads per row (t, a power of two dividing wg) and the grid. */
export interface RowLaunch {
  wg: number;
  t: number;
  workgroups: [number, number];
}

/**
 * Launch for `rows` rows of `d` elements: the shared per-adapter row tuning (planRows; one thread per
 * row on lavapipe, more on GPUs after tuneRows), with threads per row rounded up to {1, 8, 64, 256} so
 * each row kernel has at most four pipelines (a CPU driver spends seconds compiling each).
 */
export function planRowLaunch(rt: Runtime, rows: number, d: number, force?: { t?: number }): RowLaunch {
  const plan = planRows(rt, rows, d, force);
  const t = force?.t ?? Math.min(plan.wg, [1, 8, 64, 256].find((c) => c >= plan.t) ?? 256);
  return { wg: plan.wg, t, workgroups: grid1d(rows * t, plan.wg, rt.limits.maxComputeWorkgroupsPerDimension) };
}

function lastDim(op: string, x: Tensor): { rows: number; D: number } {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: expected f32, got ${x.dtype} x ${fmt(x)}`);
  if (x.rank === 0) throw new ShapeError(`${op}: x needs at least one dimension, got ${fmt(x)}`);
  const D = x.shape[x.rank - 1]!;
  return { rows: D === 0 ? 0 : x.size / D, D };
}

function checkVec(op: string, name: string, t: Tensor | null, D: number, x: Tensor): void {
  if (t && (t.dtype !== 'f32' || t.size !== D || t.rank !== 1)) {
    throw new ShapeError(`${op}: ${name} ${fmt(t)} (${t.dtype}) must be f32 [${D}] for x ${fmt(x)}`);
  }
}

/**
 * Layer norm over the last dim, for training: y = (x - mean) / sqrt(var + eps) * weight + bias
 * (biased variance, as torch). x [..., D], weight/bias [D] or null -> y like x, mean/rstd [rows].
 */
export function layerNormTrain(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const op = 'layerNormTrain';
  const { rows, D } = lastDim(op, x);
  checkVec(op, 'weight', weight, D, x);
  checkVec(op, 'bias', bias, D, x);
  const rt = x.rt;
  const y = Tensor.empty(rt, x.shape, 'f32');
  const mean = Tensor.empty(rt, [rows], 'f32');
  const rstd = Tensor.empty(rt, [rows], 'f32');
  if (rows === 0) return { y, mean, rstd };
  const plan = planRowLaunch(rt, rows, D);
  rt.dispatch(K_FWD, {
    buffers: [x, weight ?? x, bias ?? x, y, mean, rstd],
    params: [rows, D, f32(eps), weight ? 1 : 0, bias ? 1 : 0],
    constants: { WG: plan.wg, T: plan.t },
    workgroups: plan.workgroups,
  });
  return { y, mean, rstd };
}

/**
 * Layer norm backward. dy, x [..., D]; mean/rstd [rows] from layerNormTrain; weight [D] or null.
 * dx like x; dweight [D] (null when weight is null); dbias [D] = Σ_rows dy (always computed, so a
 * bias without a weight still gets its gradient). dweight/dbias: two-stage column sums, rows in a
 * fixed order, no atomics: the same bits on every run.
 */
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  weight: Tensor | null,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor };
/** affine = false: only dx (frozen weight and bias: no per-column reduction is dispatched; dweight, dbias null). */
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  weight: Tensor | null,
  affine: boolean,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null };
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  weight: Tensor | null,
  affine = true,
): { dx: Tensor; dweight: Tensor | null; dbias: Tensor | null } {
  const op = 'layerNormBackward';
  const { rows, D } = lastDim(op, x);
  if (dy.dtype !== 'f32' || dy.rank !== x.rank || dy.shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(`${op}: dy ${fmt(dy)} (${dy.dtype}) must match x ${fmt(x)}`);
  }
  for (const [name, t] of [['mean', mean], ['rstd', rstd]] as const) {
    if (t.dtype !== 'f32' || t.size !== rows) throw new ShapeError(`${op}: ${name} ${fmt(t)} must have ${rows} f32 elements for x ${fmt(x)}`);
  }
  checkVec(op, 'weight', weight, D, x);
  const rt = x.rt;
  const hasW = weight !== null;
  const dx = Tensor.empty(rt, x.shape, 'f32');
  const dweight = hasW && affine ? Tensor.empty(rt, [D], 'f32') : null;
  const dbias = affine ? Tensor.empty(rt, [D], 'f32') : null;
  if (D === 0) return { dx, dweight, dbias };
  if (rows === 0) {
    if (dbias) rt.commandEncoder().clearBuffer(dbias.buffer, dbias.byteOffset, 4 * D);
    if (dweight) rt.commandEncoder().clearBuffer(dweight.buffer, dweight.byteOffset, 4 * D);
    return { dx, dweight, dbias };
  }
  const plan = planRowLaunch(rt, rows, D);
  rt.dispatch(K_DX, {
    buffers: [dy, x, mean, rstd, weight ?? x, dx],
    params: [rows, D, hasW ? 1 : 0],
    constants: { WG: plan.wg, T: plan.t },
    workgroups: plan.workgroups,
  });
  if (!dbias) return { dx, dweight, dbias };

  // Stage 1: chunks of R rows, enough chunks × D columns to keep ~16k threads busy.
  const maxWg = rt.limits.maxComputeWorkgroupsPerDimension;
  const want = Math.min(rows, Math.max(1, Math.ceil(16384 / D)), maxWg);
  const R = Math.ceil(rows / want);
  const chunks = Math.ceil(rows / R);
  const colGroups = Math.ceil(D / 64);
  if (colGroups > maxWg) throw new ShapeError(`${op}: D = ${D} exceeds ${64 * maxWg} columns`);
  const single = chunks === 1;
  // Without a weight, the dweight bindings get a 1-element scratch (writable bindings may not alias).
  const dummy = hasW ? null : Tensor.empty(rt, [1], 'f32');
  const pw = single ? (dweight ?? dummy!) : Tensor.empty(rt, hasW ? [chunks, D] : [1], 'f32');
  const pb = single ? dbias : Tensor.empty(rt, [chunks, D], 'f32');
  rt.dispatch(K_PARTIAL, {
    buffers: [dy, x, mean, rstd, pw, pb],
    params: [rows, D, R, hasW ? 1 : 0],
    constants: { WG: 64 },
    workgroups: [colGroups, chunks],
  });
  if (!single) {
    rt.dispatch(K_REDUCE, {
      buffers: [pw, pb, dweight ?? dummy!, dbias],
      params: [D, chunks, hasW ? 1 : 0],
      constants: { WG: 64 },
      workgroups: grid1d(D, 64, maxWg),
    });
    pw.dispose();
    pb.dispose();
  }
  dummy?.dispose();
  return { dx, dweight, dbias };
}

function softmaxBwd(op: string, y: Tensor, dy: Tensor, axis: number, log: boolean): Tensor {
  if (y.dtype !== 'f32' || dy.dtype !== 'f32' || y.rank !== dy.rank || y.shape.some((d, i) => d !== dy.shape[i])) {
    throw new ShapeError(`${op}: y ${fmt(y)} (${y.dtype}) and dy ${fmt(dy)} (${dy.dtype}) must be f32 of the same shape`);
  }
  const a = axis < 0 ? axis + y.rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= y.rank) throw new ShapeError(`${op}: axis ${axis} is out of range for shape ${fmt(y)}`);
  const D = y.shape[a]!;
  let inner = 1;
  for (let i = a + 1; i < y.rank; i++) inner *= y.shape[i]!;
  const dx = Tensor.empty(y.rt, y.shape, 'f32');
  if (y.size === 0) return dx;
  const rows = y.size / D;
  const plan = planRowLaunch(y.rt, rows, D);
  y.rt.dispatch(K_SM, {
    buffers: [y, dy, dx],
    params: [rows, D, inner, log ? 1 : 0],
    constants: { WG: plan.wg, T: plan.t },
    workgroups: plan.workgroups,
  });
  return dx;
}

/** Softmax backward along `axis` (default last), y = softmax output: dx = y * (dy - Σ dy·y). */
export function softmaxBackward(y: Tensor, dy: Tensor, axis = -1): Tensor {
  return softmaxBwd('softmaxBackward', y, dy, axis, false);
}

/** Log-softmax backward along `axis` (default last), y = log-softmax output: dx = dy - exp(y) Σ dy. */
export function logSoftmaxBackward(y: Tensor, dy: Tensor, axis = -1): Tensor {
  return softmaxBwd('logSoftmaxBackward', y, dy, axis, true);
}
