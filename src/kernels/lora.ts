// Fused LoRA linear forward (shaders/lora_linear_{sg,plain}.wgsl + lora_common + lora_io_*): y = x·Wᵀ + b + s·(xd·Aᵀ)·Bᵀ in one dispatch, plus the separate-matmul form.
import common from '../../shaders/lora_common.wgsl';
import sgBody from '../../shaders/lora_linear_sg.wgsl';
import plainBody from '../../shaders/lora_linear_plain.wgsl';
import ioVec4 from '../../shaders/lora_io_vec4.wgsl';
import ioScalar from '../../shaders/lora_io_scalar.wgsl';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import type { KernelDef } from '../runtime/pipelines.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { matmul } from './matmul.js';
import { scale } from './elementwise.js';
import { ceilDiv } from './grid.js';
import { isCpuAdapter, sgSupported } from './matmul-variants.js';

/** Fused kernel variants: 'sg' (subgroup shuffles, W read once per tile) and 'plain' (no subgroups needed). */
export type LoraFusedVariant = 'sg' | 'plain';
export const LORA_FUSED_VARIANTS: readonly LoraFusedVariant[] = ['sg', 'plain'];

const kernels = new Map<string, KernelDef>();

/** The composed kernel: variant body, shared part, io layer. */
function loraKernel(v: LoraFusedVariant, vec4: boolean): KernelDef {
  const name = `lora_linear_${v}_${vec4 ? 'vec4' : 'scalar'}`;
  let k = kernels.get(name);
  if (!k) {
    k = { name, code: `${v === 'sg' ? sgBody : plainBody}\n${common}\n${vec4 ? ioVec4 : ioScalar}` };
    kernels.set(name, k);
  }
  return k;
}

/** Columns of one workgroup's output tile in the fused kernel (its rows: TM, see loraTileRows). */
export const LORA_TILE_N = 256;

/** vec4 slots of the kernel's workgroup memory for s·u (16 KiB, WebGPU's guaranteed minimum). */
const USH_VEC4 = 1024;

/** Largest rank the fused kernel takes (8 tile rows × 512 ranks fill the workgroup memory). */
export const LORA_FUSED_MAX_RANK = 512;

/**
 * Rows per workgroup TM = 8·G (G = 1, 2, 4, 8): the fewest covering M, at most 64 on CPU adapters (each W
 * load serves more rows) or 16 on GPUs (more workgroups), and few enough that TM rows × R ranks (rounded up to
 * 16, phase 0's step) fit the workgroup memory.
 */
export function loraTileRows(rt: Runtime, M: number, R: number): number {
  const cap = Math.min(isCpuAdapter(rt) ? 64 : 16, Math.floor(USH_VEC4 / (4 * ceilDiv(R, 16))));
  let tm = 8;
  while (tm < M && tm * 2 <= cap) tm *= 2;
  return tm;
}

/** The variant used when none is forced: 'sg' where subgroups of ≥ 8 lanes exist. */
export function defaultLoraVariant(rt: Runtime): LoraFusedVariant {
  return sgSupported(rt) ? 'sg' : 'plain';
}

export interface LoraLinearKernelOptions {
  /** [N], added in the epilogue. */
  bias?: Tensor | null;
  /** s: alpha / r (or alpha / √r with rsLoRA). */
  scaling: number;
  /** The input to the A branch, [M, K] like x (dropout(x)); default x itself. */
  xd?: Tensor | null;
  /** Also return u = xd·Aᵀ [M, R] (saved for the backward's dB). */
  wantU?: boolean;
  /**
   * 'fused' (one dispatch; the default when R ≤ LORA_FUSED_MAX_RANK) or 'matmul' (three matmul
   * dispatches and a scale: u = xd·Aᵀ, l = s·u·Bᵀ, y = x·Wᵀ + b + l).
   */
  path?: 'fused' | 'matmul';
  /** Force a fused variant (tests, benchmarks); default defaultLoraVariant(). */
  variant?: LoraFusedVariant;
}

export interface LoraLinearKernelResult {
  /** [M, N]. */
  y: Tensor;
  /** [M, R] when wantU, else null. */
  u: Tensor | null;
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** Check shapes: x [M, K], w [N, K], a [R, K], b [N, R], bias [N], xd like x. */
function check(x: Tensor, w: Tensor, a: Tensor, b: Tensor, o: LoraLinearKernelOptions): { M: number; N: number; K: number; R: number } {
  const what = `loraLinear(x ${fmt(x)}, W ${fmt(w)}, A ${fmt(a)}, B ${fmt(b)}${o.bias ? `, bias ${fmt(o.bias)}` : ''})`;
  for (const [n, t] of [['x', x], ['W', w], ['A', a], ['B', b], ['bias', o.bias], ['xd', o.xd]] as const) {
    if (t && t.dtype !== 'f32') throw new ShapeError(`${what}: ${n} is ${t.dtype}, expected f32`);
  }
  if (x.rank !== 2 || w.rank !== 2 || a.rank !== 2 || b.rank !== 2) throw new ShapeError(`${what}: x, W, A and B must be 2-D`);
  const [M, K] = x.shape as [number, number];
  const [N, Kw] = w.shape as [number, number];
  const [R, Ka] = a.shape as [number, number];
  if (Kw !== K) throw new ShapeError(`${what}: x has ${K} features but W ${fmt(w)} expects ${Kw}`);
  if (Ka !== K) throw new ShapeError(`${what}: x has ${K} features but A ${fmt(a)} expects ${Ka}`);
  if (b.shape[0] !== N || b.shape[1] !== R) throw new ShapeError(`${what}: B ${fmt(b)} must be [${N}, ${R}] (W's out × A's rank)`);
  if (R < 1) throw new ShapeError(`${what}: rank must be at least 1`);
  if (o.bias && (o.bias.rank !== 1 || o.bias.size !== N)) throw new ShapeError(`${what}: bias ${fmt(o.bias)} must be [${N}]`);
  if (o.xd && (o.xd.rank !== 2 || o.xd.shape[0] !== M || o.xd.shape[1] !== K)) throw new ShapeError(`${what}: xd ${fmt(o.xd)} must match x ${fmt(x)}`);
  if (!Number.isFinite(o.scaling)) throw new GraftError(`${what}: scaling must be finite, got ${o.scaling}`);
  return { M, N, K, R };
}

/**
 * y [M, N] = x [M, K]·w [N, K]ᵀ + bias + scaling·(xd·a [R, K]ᵀ)·b [N, R]ᵀ, with xd = opts.xd ?? x.
 * Never forms the merged weight. All tensors f32, 2-D (flatten leading dims first).
 */
export function loraLinearForward(x: Tensor, w: Tensor, a: Tensor, b: Tensor, opts: LoraLinearKernelOptions): LoraLinearKernelResult {
  const { M, N, K, R } = check(x, w, a, b, opts);
  const rt = x.rt;
  const xd = opts.xd ?? x;
  const fits = R <= LORA_FUSED_MAX_RANK;
  const path = opts.path ?? (fits ? 'fused' : 'matmul');
  if (path === 'matmul') return unfusedForward(x, xd, w, a, b, opts);
  if (!fits) throw new GraftError(`loraLinear: rank ${R} is over the fused kernel's maximum ${LORA_FUSED_MAX_RANK}; use path 'matmul'`);
  const variant = opts.variant ?? defaultLoraVariant(rt);
  if (variant === 'sg' && !sgSupported(rt)) throw new GraftError(`loraLinear: variant 'sg' needs subgroups of at least 8 lanes, which this device lacks`);
  const y = Tensor.empty(rt, [M, N]);
  // no output columns: no workgroups run, so u (if wanted) comes from a matmul
  if (N === 0) return { y, u: opts.wantU ? matmul(xd, a, { transB: true }) : null };
  const u = opts.wantU ? Tensor.empty(rt, [M, R]) : null;
  if (M === 0) return { y, u };
  const TM = loraTileRows(rt, M, R);
  const RQ = Math.floor(USH_VEC4 / TM);
  const rowBlocks = ceilDiv(M, TM);
  const maxWg = rt.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.min(rowBlocks, maxWg);
  const gz = ceilDiv(rowBlocks, gy);
  // uo must not alias a read binding: a 1-element scratch when u is not wanted
  const uo = u ?? Tensor.empty(rt, [1]);
  const flags = (opts.bias ? 1 : 0) | (u ? 2 : 0);
  rt.dispatch(loraKernel(variant, K % 4 === 0 && K > 0), {
    buffers: [x, xd, w, a, b, opts.bias ?? b, y, uo],
    params: [M, N, K, R, flags, f32(opts.scaling), TM, RQ],
    workgroups: [ceilDiv(N, LORA_TILE_N), gy, gz],
  });
  if (!u) uo.dispose();
  return { y, u };
}

/** The same result from separate matmuls: u = xd·Aᵀ, l = s·u·Bᵀ, y = x·Wᵀ + bias + l. */
function unfusedForward(x: Tensor, xd: Tensor, w: Tensor, a: Tensor, b: Tensor, o: LoraLinearKernelOptions): LoraLinearKernelResult {
  const u = matmul(xd, a, { transB: true });
  const ub = matmul(u, b, { transB: true });
  const l = scale(ub, o.scaling);
  ub.dispose();
  const y = matmul(x, w, { transB: true, bias: o.bias ?? undefined, residual: l });
  l.dispose();
  if (o.wantU) return { y, u };
  u.dispose();
  return { y, u: null };
}
