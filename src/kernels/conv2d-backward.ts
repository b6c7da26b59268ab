// Conv2d backward: input gradient (gather implicit GEMM, or GEMM Wᵀ·dY + col2im), weight gradient (split reduction), bias gradient.
import dataSrc from '../../shaders/conv2d_bwd_data.wgsl';
import weightSrc from '../../shaders/conv2d_bwd_weight.wgsl';
import reduceSrc from '../../shaders/conv2d_bwd_weight_reduce.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor, type Shape } from '../tensor.js';
import { channelSum } from './batchnorm-train.js';
import { col2imInto } from './col2im.js';
import { ceilDiv, grid1d } from './grid.js';
import { matmul } from './matmul.js';
import { transpose } from './transpose.js';
import { GEMM_MAX_SCRATCH, asRows } from './conv2d-gemm.js';

const K_DATA = { name: 'conv2d_bwd_data', code: dataSrc };
const K_WEIGHT = { name: 'conv2d_bwd_weight', code: weightSrc };
const K_REDUCE = { name: 'conv2d_bwd_weight_reduce', code: reduceSrc };

export type Pair = number | [number, number];

/** The forward convolution's options (same meaning as conv2d's; groups = C = K is depthwise). */
export interface ConvOpts {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** Shapes of one convolution: x [N, C, H, W], w [K, C/groups, R, S], y [N, K, P, Q]. */
export interface ConvBwdGeom {
  N: number; C: number; H: number; W: number;
  K: number; R: number; S: number; P: number; Q: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
  groups: number; Cg: number; Kg: number;
}

const WG = 64;
/** Largest split of the weight-gradient reduction, and the shortest chunk worth a workgroup. */
const MAX_SPLIT = 64;
const MIN_CHUNK = 256;
/** Workgroups the weight gradient aims for before it stops splitting. */
const TARGET_WORKGROUPS = 256;

function pair(op: string, v: Pair | undefined, dflt: number, what: string): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const min = what === 'padding' ? 0 : 1;
  if (p.some((e) => !Number.isInteger(e) || e < min)) throw new ShapeError(`${op}: ${what} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  return p;
}

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Validate x, w and dy shapes of a convolution and build its geometry. */
export function convBwdGeom(op: string, xShape: Shape, wShape: Shape, dyShape: Shape, o: ConvOpts = {}): ConvBwdGeom {
  const both = `x ${fmt(xShape)}, w ${fmt(wShape)}, dy ${fmt(dyShape)}`;
  if (xShape.length !== 4 || wShape.length !== 4 || dyShape.length !== 4) {
    throw new ShapeError(`${op}: expected x [N, C, H, W], w [K, C/groups, R, S], dy [N, K, P, Q]; got ${both}`);
  }
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [K, Cw, R, S] = wShape as [number, number, number, number];
  const groups = o.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ShapeError(`${op}: groups must be a positive integer, got ${groups} (${both})`);
  if (C % groups !== 0 || K % groups !== 0) throw new ShapeError(`${op}: groups ${groups} must divide C ${C} and K ${K} (${both})`);
  if (Cw * groups !== C) throw new ShapeError(`${op}: x has ${C} channels but w expects ${Cw} × ${groups} groups (${both})`);
  if (R < 1 || S < 1) throw new ShapeError(`${op}: empty kernel (${both})`);
  const [sh, sw] = pair(op, o.stride, 1, 'stride');
  const [ph, pw] = pair(op, o.padding, 0, 'padding');
  const [dh, dw] = pair(op, o.dilation, 1, 'dilation');
  const P = Math.floor((H + 2 * ph - dh * (R - 1) - 1) / sh) + 1;
  const Q = Math.floor((W + 2 * pw - dw * (S - 1) - 1) / sw) + 1;
  if (P < 1 || Q < 1) throw new ShapeError(`${op}: kernel ${R}×${S} (dilation ${dh}×${dw}) does not fit the padded input (${both})`);
  if (dyShape[0] !== N || dyShape[1] !== K || dyShape[2] !== P || dyShape[3] !== Q) {
    throw new ShapeError(`${op}: dy must be [${N}, ${K}, ${P}, ${Q}] for these options (${both})`);
  }
  return { N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups, Cg: C / groups, Kg: K / groups };
}

/** Register-tile extent for a dimension of n: 1, 2 or 4 (few distinct pipelines; at most 25% idle lanes past 2). */
function tile(n: number): number {
  return n <= 1 ? 1 : n <= 2 ? 2 : 4;
}

function checkF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new ShapeError(`${op}: only f32 tensors are supported, got ${t.dtype} ${fmt(t.shape)}`);
}

function geomParams(g: ConvBwdGeom): number[] {
  return [g.C, g.H, g.W, g.K, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Cg, g.Kg];
}

/** How conv2dBackwardData computes dx: 'direct' (phase-split gather kernel) or 'gemm' (dcol = Wᵀ·dY, then col2im). */
export type DataPath = 'direct' | 'gemm';

/**
 * Largest dcol [n, C·R·S, P·Q] the GEMM path allocates at once, in elements (64 MiB of f32): larger batches run in
 * chunks of whole images; a shape whose single image exceeds it goes direct.
 */
export const GEMM_DCOL_LIMIT = 1 << 24;

/** Elements of the GEMM path's dcol scratch for one image. */
export function gemmScratchPerImage(g: ConvBwdGeom): number {
  return g.C * g.R * g.S * g.P * g.Q;
}

/**
 * The path conv2dBackwardData takes by default (deterministic): 'gemm' for ungrouped convolutions whose per-image
 * dcol fits GEMM_DCOL_LIMIT, else 'direct' (grouped and depthwise convolutions always). On lavapipe the GEMM path won
 * on every ResNet shape measured (res 64 batch 2: 14-71× on layer2-4, 2× on layer1, a tie on the stem; res 224: 1.7-22×);
 * the direct kernel idles most lanes when a stride phase holds few positions and walks K·R·S serially per lane.
 */
export function chooseDataPath(g: ConvBwdGeom): DataPath {
  return g.groups === 1 && gemmScratchPerImage(g) <= GEMM_DCOL_LIMIT ? 'gemm' : 'direct';
}

/**
 * dx [N, C, H, W] = the gradient of conv2d's input, from dy [N, K, P, Q] and w [K, C/groups, R, S].
 * `path` forces a method (tests, benchmarks); 'gemm' needs groups = 1. By default chooseDataPath picks.
 * `chunkLimit` (tests) lowers the dcol elements per GEMM chunk below GEMM_DCOL_LIMIT (at least one image per chunk).
 */
export function conv2dBackwardData(dy: Tensor, w: Tensor, xShape: Shape, opts: ConvOpts & { path?: DataPath; chunkLimit?: number } = {}): Tensor {
  const op = 'conv2dBackwardData';
  checkF32(op, dy, w);
  const g = convBwdGeom(op, xShape, w.shape, dy.shape, opts);
  const rt = dy.rt;
  if (opts.path !== undefined && opts.path !== 'direct' && opts.path !== 'gemm') {
    throw new ShapeError(`${op}: path must be 'direct' or 'gemm', got ${JSON.stringify(opts.path)}`);
  }
  if (opts.path === 'gemm' && g.groups !== 1) throw new ShapeError(`${op}: the 'gemm' path needs groups = 1, got ${g.groups}`);
  if (opts.path === 'gemm' && gemmScratchPerImage(g) > GEMM_DCOL_LIMIT) {
    throw new ShapeError(`${op}: the 'gemm' path needs C·R·S·P·Q <= ${GEMM_DCOL_LIMIT}, got ${gemmScratchPerImage(g)} (${fmt(xShape)})`);
  }
  const path = opts.path ?? chooseDataPath(g);
  if (path === 'gemm' && g.K > 0 && numelOf(xShape) > 0) return backwardDataGemm(dy, w, g, xShape, opts.chunkLimit ?? GEMM_DCOL_LIMIT);
  const dx = Tensor.empty(rt, xShape);
  if (dx.size === 0) return dx;
  if (g.K === 0) {
    rt.commandEncoder().clearBuffer(dx.buffer, dx.byteOffset, (dx.byteLength + 3) & ~3);
    return dx;
  }
  const TM = tile(g.Cg);
  const cBlocks = ceilDiv(g.Cg, TM);
  const TN = 4;
  const perPhase = ceilDiv(g.H, g.sh) * ceilDiv(g.W, g.sw);
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  const wg = [ceilDiv(perPhase, WG * TN), g.groups * cBlocks, g.N * g.sh * g.sw];
  if (wg.some((v) => v > max)) throw new ShapeError(`${op}: grid ${wg.join('×')} exceeds the adapter limit ${max} (${fmt(xShape)})`);
  rt.dispatch(K_DATA, {
    buffers: [dy, w, dx],
    params: [...geomParams(g), cBlocks],
    constants: { TM, TN, WG },
    workgroups: wg,
  });
  return dx;
}

const numelOf = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** At or below this many output positions per image the GEMM path batches all images into one product. */
export const SMALL_PQ = 16;

/**
 * GEMM path (groups = 1): per chunk of images n0 .. n0 + n - 1, dcol [n, C·R·S, P·Q] = w [K, C·R·S]ᵀ · dy [n, K, P·Q]
 * (batched matmul, w shared), then col2im into dx. A chunk that is not the whole batch copies its dy slice first
 * (storage bindings need 256-byte-aligned offsets; copies need only 4).
 */
function backwardDataGemm(dy: Tensor, w: Tensor, g: ConvBwdGeom, xShape: Shape, limit: number): Tensor {
  const rt = dy.rt;
  const PQ = g.P * g.Q;
  const per = Math.max(1, Math.floor(limit / gemmScratchPerImage(g)));
  const dx = Tensor.empty(rt, xShape);
  const wm = w.reshape([g.K, g.C * g.R * g.S]);
  for (let n0 = 0; n0 < g.N; n0 += per) {
    const n = Math.min(per, g.N - n0);
    let dyc: Tensor;
    if (n === g.N) dyc = dy.reshape([n, g.K, PQ]);
    else {
      dyc = Tensor.empty(rt, [n, g.K, PQ]);
      const bytes = n * g.K * PQ * 4;
      rt.commandEncoder().copyBufferToBuffer(dy.buffer, dy.byteOffset + n0 * g.K * PQ * 4, dyc.buffer, dyc.byteOffset, bytes);
    }
    let dcol: Tensor;
    if (n > 1 && PQ <= SMALL_PQ) {
      // Small maps: one GEMM over all n·P·Q columns, oriented so the few columns are the product's rows (lanes run
      // along C·R·S): dyᵀ [n·PQ, K] · w [K, C·R·S] = dcolᵀ [n·PQ, C·R·S] -> [n, C·R·S, PQ]. At PQ = 1 both
      // transposes are free reshapes.
      const dyT = PQ === 1 ? dyc.reshape([n, 1, g.K]) : transpose(dyc, [0, 2, 1]);
      const dyM = dyT.reshape([n * PQ, g.K]);
      const dcolR = matmul(dyM, wm);
      dyM.dispose();
      dyT.dispose();
      const dcol3 = dcolR.reshape([n, PQ, g.C * g.R * g.S]);
      dcol = PQ === 1 ? dcolR.reshape([n, g.C * g.R * g.S, 1]) : transpose(dcol3, [0, 2, 1]);
      dcol3.dispose();
      dcolR.dispose();
    } else dcol = matmul(wm, dyc, { transA: true });
    dyc.dispose();
    col2imInto(dcol, g, dx, n0, n);
    dcol.dispose();
  }
  wm.dispose();
  return dx;
}

/** The split conv2dBackwardWeight chooses for a geometry (1 = no second pass). */
export function autoSplit(g: ConvBwdGeom): number {
  const rows = g.N * g.P;
  const CRS = g.Cg * g.R * g.S;
  const tiles = ceilDiv(g.groups * ceilDiv(CRS, tile(CRS)), WG) * ceilDiv(g.Kg, tile(g.Kg));
  const want = Math.min(ceilDiv(TARGET_WORKGROUPS, tiles), Math.floor(rows / ceilDiv(MIN_CHUNK, g.Q)), MAX_SPLIT);
  return Math.max(1, want);
}

/**
 * dw [K, C/groups, R, S] = the gradient of conv2d's weights, from x [N, C, H, W] and dy [N, K, P, Q].
 * The reduction over N·P·Q runs in `split` chunks of whole dy rows (n, p), so split is capped at N·P: partial sums
 * into a scratch [split, K·C/groups·R·S], then an ordered second pass (deterministic). By default the split is chosen
 * from the reduction length and the number of output tiles (autoSplit).
 */
export function conv2dBackwardWeight(x: Tensor, dy: Tensor, wShape: Shape, opts: ConvOpts & { split?: number; path?: DataPath } = {}): Tensor {
  const op = 'conv2dBackwardWeight';
  checkF32(op, x, dy);
  const g = convBwdGeom(op, x.shape, wShape, dy.shape, opts);
  const rt = x.rt;
  const dw = Tensor.empty(rt, wShape);
  if (dw.size === 0) return dw;
  const L = g.N * g.P; // rows of dy; each holds Q positions
  if (L === 0) {
    rt.commandEncoder().clearBuffer(dw.buffer, dw.byteOffset, dw.byteLength);
    return dw;
  }
  if (opts.split !== undefined && (!Number.isInteger(opts.split) || opts.split < 1)) {
    throw new ShapeError(`${op}: split must be a positive integer, got ${opts.split}`);
  }
  if (opts.path !== undefined && opts.path !== 'direct' && opts.path !== 'gemm') {
    throw new ShapeError(`${op}: path must be 'direct' or 'gemm', got ${JSON.stringify(opts.path)}`);
  }
  if (opts.path === 'gemm' && g.groups !== 1) throw new ShapeError(`${op}: the 'gemm' path needs groups = 1, got ${g.groups}`);
  // an explicit split asks for the direct kernel's split reduction
  const path = opts.path ?? (opts.split !== undefined ? 'direct' : chooseWeightPath(g));
  if (path === 'gemm') {
    dw.dispose();
    return backwardWeightGemm(x, dy, g, wShape);
  }
  const CRS = g.Cg * g.R * g.S;
  const TN = tile(CRS);
  const nCB = ceilDiv(CRS, TN);
  const TM = tile(g.Kg);
  const kBlocks = ceilDiv(g.Kg, TM);
  const chunk = ceilDiv(L, Math.min(opts.split ?? autoSplit(g), L));
  const split = ceilDiv(L, chunk);
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  const wg = [ceilDiv(g.groups * nCB, WG), kBlocks, split];
  if (wg.some((v) => v > max)) throw new ShapeError(`${op}: grid ${wg.join('×')} exceeds the adapter limit ${max} (w ${fmt(wShape)})`);
  const pointwise = g.R === 1 && g.S === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
  const out = split === 1 ? dw : Tensor.empty(rt, [split, dw.size]);
  rt.dispatch(K_WEIGHT, {
    buffers: [x, dy, out],
    params: [...geomParams(g), nCB, g.groups, L, chunk],
    constants: { TM, TN, WG, POINTWISE: pointwise },
    workgroups: wg,
  });
  if (out !== dw) {
    rt.dispatch(K_REDUCE, { buffers: [out, dw], params: [dw.size, split], workgroups: grid1d(dw.size, 256, max) });
    out.dispose();
  }
  return dw;
}

/**
 * At or below this many GEMM columns N·P·Q (groups = 1) the weight gradient is one matmul,
 * dw [K, C·R·S] = dy [K, N·P·Q] · rows [N·P·Q, C·R·S] (im2row): the direct kernel's tiles reduce over a handful of
 * columns there and most of its lanes idle (lavapipe, ResNet-50 stages 3–4 at 32 px: 2–6× slower).
 */
export const WEIGHT_GEMM_MAX_COLS = 64;

/** The path conv2dBackwardWeight takes by default: 'gemm' for ungrouped convolutions with few columns. */
export function chooseWeightPath(g: ConvBwdGeom): DataPath {
  const cols = g.N * g.P * g.Q;
  return g.groups === 1 && cols <= WEIGHT_GEMM_MAX_COLS && cols * g.C * g.R * g.S <= GEMM_MAX_SCRATCH ? 'gemm' : 'direct';
}

/** dw [K, C, R, S] through im2row + one matmul (groups = 1). */
function backwardWeightGemm(x: Tensor, dy: Tensor, g: ConvBwdGeom, wShape: Shape): Tensor {
  const rt = x.rt;
  const PQ = g.P * g.Q;
  const cols = g.N * PQ;
  const rows = asRows(rt, x, g);
  let dwm: Tensor;
  if (PQ === 1) {
    const dyM = dy.reshape([cols, g.K]);
    dwm = matmul(dyM, rows, { transA: true });
    dyM.dispose();
  } else {
    const dy3 = dy.reshape([g.N, g.K, PQ]);
    const dyT = transpose(dy3, [1, 0, 2]);
    dy3.dispose();
    const dyM = dyT.reshape([g.K, cols]);
    dyT.dispose();
    dwm = matmul(dyM, rows);
    dyM.dispose();
  }
  rows.dispose();
  const dw = dwm.reshape(wShape);
  dwm.dispose();
  return dw;
}

/** dbias [K] = the sum of dy [N, K, P, Q] over N, P, Q. */
export function conv2dBackwardBias(dy: Tensor): Tensor {
  return channelSum(dy, 'conv2dBackwardBias');
}
