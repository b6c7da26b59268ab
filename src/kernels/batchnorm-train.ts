// Batch norm in training mode (batch statistics, running-stat update) and its backward; per-channel sums.
import statsSrc from '../../shaders/batchnorm_train_stats.wgsl';
import finalizeSrc from '../../shaders/batchnorm_train_finalize.wgsl';
import applySrc from '../../shaders/batchnorm_train_apply.wgsl';
import bwdSumsSrc from '../../shaders/batchnorm_train_bwd_sums.wgsl';
import bwdFinalizeSrc from '../../shaders/batchnorm_train_bwd_finalize.wgsl';
import bwdDxSrc from '../../shaders/batchnorm_train_bwd_dx.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import type { Runtime } from '../runtime/runtime.js';
import type { KernelDef } from '../runtime/pipelines.js';
import { Tensor } from '../tensor.js';
import { ceilDiv, grid1d } from './grid.js';

const K_STATS = { name: 'batchnorm_train_stats', code: statsSrc };
const K_STATS_SERIAL = { name: 'batchnorm_train_stats_serial', code: statsSrc, entry: 'main_serial' };
const K_FINALIZE = { name: 'batchnorm_train_finalize', code: finalizeSrc };
const K_FINALIZE_RUNNING = { name: 'batchnorm_train_finalize_running', code: finalizeSrc, entry: 'main_running' };
const K_APPLY = { name: 'batchnorm_train_apply', code: applySrc };
const K_BWD_SUMS = { name: 'batchnorm_train_bwd_sums', code: bwdSumsSrc };
const K_BWD_SUMS_SERIAL = { name: 'batchnorm_train_bwd_sums_serial', code: bwdSumsSrc, entry: 'main_serial' };
const K_BWD_FINALIZE = { name: 'batchnorm_train_bwd_finalize', code: bwdFinalizeSrc };
const K_CHANNEL_SUM = { name: 'batchnorm_train_bwd_finalize_sum', code: bwdFinalizeSrc, entry: 'main_sum' };
const K_BWD_DX = { name: 'batchnorm_train_bwd_dx', code: bwdDxSrc };

/** Values per channel that one reduction workgroup (256 invocations) handles at most, and the chunk cap. */
const CHUNK_TARGET = 4096;
const MAX_CHUNKS = 256;

/**
 * Per-channel reductions come in two variants with the same partials layout [C, chunks, k]:
 *   tree:   one 256-invocation workgroup per (chunk, channel), strided loads, a barrier tree in workgroup memory;
 *   serial: one invocation per (chunk, channel) walking its chunk in order; no workgroup memory, no barriers.
 * serial wins wherever the per-channel count M is small (every BN of a ResNet at small inputs or late stages: the
 * tree keeps 256 invocations and 8 barriers busy for a handful of values). Default: serial when M <= SERIAL_MAX_M.
 */
export type ChannelReduceVariant = 'tree' | 'serial';
export const SERIAL_MAX_M = 4096;
/** Serial chunks: aim for this many invocations in all, with chunk lengths in [SERIAL_MIN_CHUNK, M]. */
const SERIAL_TARGET_THREADS = 4096;
const SERIAL_MIN_CHUNK = 64;

let variantOverride: ChannelReduceVariant | null = null;

/** Force one variant for every per-channel reduction (tests and benchmarks); null restores the default rule. */
export function setChannelReduceVariant(v: ChannelReduceVariant | null): void {
  variantOverride = v;
}

/** The variant used for per-channel count M (before any override). */
export function defaultChannelReduceVariant(M: number): ChannelReduceVariant {
  return M <= SERIAL_MAX_M ? 'serial' : 'tree';
}

interface Layout {
  N: number; C: number; HW: number; M: number; // M = N*H*W values per channel
  chunks: number; chunk: number;
  variant: ChannelReduceVariant;
}

function layout(op: string, x: Tensor): Layout {
  if (x.rank !== 4) throw new ShapeError(`${op}: expected x [N, C, H, W], got [${x.shape.join(', ')}]`);
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: only f32 tensors are supported, got ${x.dtype} [${x.shape.join(', ')}]`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const M = N * H * W;
  const variant = variantOverride ?? defaultChannelReduceVariant(M);
  let chunks: number;
  if (variant === 'serial') {
    const want = Math.max(SERIAL_MIN_CHUNK, ceilDiv(M * C, SERIAL_TARGET_THREADS), ceilDiv(M, MAX_CHUNKS));
    chunks = Math.max(1, ceilDiv(M, want));
  } else {
    chunks = Math.max(1, Math.min(MAX_CHUNKS, ceilDiv(M, CHUNK_TARGET)));
  }
  const chunk = Math.max(1, ceilDiv(M, chunks));
  return { N, C, HW: H * W, M, chunks: Math.max(1, ceilDiv(M, chunk)), chunk, variant };
}

/** Dispatch one per-channel reduction pass (stats or sums) in the layout's variant. */
function dispatchReduce(
  rt: Runtime,
  l: Layout,
  k: { tree: KernelDef; serial: KernelDef },
  buffers: Tensor[],
  constants?: Record<string, boolean>,
): void {
  const params = [l.C, l.HW, l.M, l.chunk];
  if (l.variant === 'serial') {
    const workgroups = grid1d(l.C * l.chunks, 64, rt.limits.maxComputeWorkgroupsPerDimension);
    rt.dispatch(k.serial, { buffers, params, constants, workgroups });
  } else {
    rt.dispatch(k.tree, { buffers, params, constants, workgroups: reduceGrid(rt, l) });
  }
}

function checkChannelVec(op: string, name: string, t: Tensor | null, x: Tensor): void {
  if (t === null) return;
  const C = x.shape[1]!;
  if (t.rank !== 1 || t.shape[0] !== C || t.dtype !== 'f32') {
    throw new ShapeError(`${op}: ${name} must be f32 [${C}] for x [${x.shape.join(', ')}], got ${t.dtype} [${t.shape.join(', ')}]`);
  }
}

function checkSame(op: string, a: Tensor, an: string, b: Tensor, bn: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]) || a.dtype !== b.dtype) {
    throw new ShapeError(`${op}: ${an} ${a.dtype} [${a.shape.join(', ')}] and ${bn} ${b.dtype} [${b.shape.join(', ')}] must match`);
  }
}

/** Workgroup grid for per-(chunk, channel) reductions. */
function reduceGrid(rt: Runtime, l: Layout): [number, number] {
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  if (l.C > max) throw new ShapeError(`batch norm: ${l.C} channels exceed the adapter's ${max} workgroups per dimension`);
  return [l.chunks, l.C];
}

/**
 * Batch norm, training mode. x [N, C, H, W]; weight, bias, runningMean, runningVar [C] or null.
 * Returns y [N, C, H, W] and the batch mean and invstd = 1/sqrt(biased var + eps) [C] (saved for backward).
 * Updates runningMean/runningVar in place on the GPU: r = (1 - momentum)*r + momentum*batch, with the unbiased
 * batch variance for runningVar (PyTorch's rule).
 */
export function batchNorm2dTrain(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  momentum = 0.1,
  eps = 1e-5,
): { y: Tensor; mean: Tensor; invstd: Tensor } {
  const op = 'batchNorm2dTrain';
  const l = layout(op, x);
  checkChannelVec(op, 'weight', weight, x);
  checkChannelVec(op, 'bias', bias, x);
  checkChannelVec(op, 'runningMean', runningMean, x);
  checkChannelVec(op, 'runningVar', runningVar, x);
  if ((runningMean === null) !== (runningVar === null)) {
    throw new ShapeError(`${op}: pass both runningMean and runningVar or neither (x [${x.shape.join(', ')}])`);
  }
  if (l.M < 2) throw new ShapeError(`${op}: expected more than 1 value per channel when training, got x [${x.shape.join(', ')}]`);
  const rt = x.rt;
  const mean = Tensor.empty(rt, [l.C]);
  const invstd = Tensor.empty(rt, [l.C]);
  const y = Tensor.empty(rt, x.shape);
  if (l.C === 0) return { y, mean, invstd };
  const part = Tensor.empty(rt, [l.C, l.chunks, 3]);
  dispatchReduce(rt, l, { tree: K_STATS, serial: K_STATS_SERIAL }, [x, part]);
  const fin = [l.C, l.chunks, f32(momentum), f32(eps), f32(l.M / (l.M - 1))];
  const cw = [ceilDiv(l.C, 64)];
  if (runningMean && runningVar) {
    rt.dispatch(K_FINALIZE_RUNNING, { buffers: [part, mean, invstd, runningMean, runningVar], params: fin, workgroups: cw });
  } else {
    rt.dispatch(K_FINALIZE, { buffers: [part, mean, invstd], params: fin, workgroups: cw });
  }
  part.dispose();
  rt.dispatch(K_APPLY, {
    buffers: [x, mean, invstd, weight ?? mean, bias ?? mean, y],
    params: [x.size, l.C, l.HW],
    constants: { HAS_WEIGHT: weight !== null, HAS_BIAS: bias !== null },
    workgroups: grid1d(x.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return { y, mean, invstd };
}

/**
 * Batch norm backward (training mode), from the saved batch mean and invstd [C].
 * dy, x [N, C, H, W]; weight [C] or null (treated as ones). Returns dx [N, C, H, W], dweight, dbias [C].
 */
export function batchNorm2dBackward(
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  invstd: Tensor,
  weight: Tensor | null,
): { dx: Tensor; dweight: Tensor; dbias: Tensor } {
  const op = 'batchNorm2dBackward';
  const l = layout(op, x);
  checkSame(op, dy, 'dy', x, 'x');
  checkChannelVec(op, 'mean', mean, x);
  checkChannelVec(op, 'invstd', invstd, x);
  checkChannelVec(op, 'weight', weight, x);
  const rt = x.rt;
  const dx = Tensor.empty(rt, x.shape);
  const dweight = Tensor.empty(rt, [l.C]);
  const dbias = Tensor.empty(rt, [l.C]);
  if (l.C === 0) return { dx, dweight, dbias };
  if (l.M === 0) {
    const enc = rt.commandEncoder();
    enc.clearBuffer(dweight.buffer, dweight.byteOffset, 4 * l.C);
    enc.clearBuffer(dbias.buffer, dbias.byteOffset, 4 * l.C);
    return { dx, dweight, dbias };
  }
  const part = Tensor.empty(rt, [l.C, l.chunks, 2]);
  dispatchReduce(rt, l, { tree: K_BWD_SUMS, serial: K_BWD_SUMS_SERIAL }, [dy, x, mean, part], { HAS_X: true });
  const coef = Tensor.empty(rt, [l.C, 3]);
  rt.dispatch(K_BWD_FINALIZE, {
    buffers: [part, dbias, invstd, weight ?? invstd, dweight, coef],
    params: [l.C, l.chunks, f32(1 / l.M)],
    constants: { HAS_WEIGHT: weight !== null },
    workgroups: [ceilDiv(l.C, 64)],
  });
  part.dispose();
  rt.dispatch(K_BWD_DX, {
    buffers: [dy, x, mean, coef, dx],
    params: [x.size, l.C, l.HW],
    workgroups: grid1d(x.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  coef.dispose();
  return { dx, dweight, dbias };
}

/** Per-channel sum over N, H, W: t [N, C, H, W] -> [C] (deterministic tree reduction; the conv2d bias gradient). */
export function channelSum(t: Tensor, op = 'channelSum'): Tensor {
  const l = layout(op, t);
  const rt = t.rt;
  const out = Tensor.empty(rt, [l.C]);
  if (l.C === 0) return out;
  if (l.M === 0) {
    rt.commandEncoder().clearBuffer(out.buffer, out.byteOffset, 4 * l.C);
    return out;
  }
  const part = Tensor.empty(rt, [l.C, l.chunks, 2]);
  dispatchReduce(rt, l, { tree: K_BWD_SUMS, serial: K_BWD_SUMS_SERIAL }, [t, t, t, part], { HAS_X: false });
  rt.dispatch(K_CHANNEL_SUM, { buffers: [part, out], params: [l.C, l.chunks, f32(0)], workgroups: [ceilDiv(l.C, 64)] });
  part.dispose();
  return out;
}

