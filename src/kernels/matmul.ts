// Batched matmul with fused epilogue: out = act(op(a) · op(b) + bias) + residual, over several kernel variants.
import { GraftError, ShapeError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { planBatch } from './matmul-batch.js';
import {
  VARIANT_TABLE,
  defaultVariant,
  matmulGrid,
  matmulKernel,
  shapeClass,
  unsupportedReason,
  variantConstants,
  type MatmulVariant,
} from './matmul-variants.js';

import { matmulTuneClass } from './matmul-tune.js';
import { tunedVariant } from './tune-cache.js';

export { tuneMatmul } from './matmul-tune.js';

export type Activation = 'none' | 'relu' | 'gelu' | 'gelu_tanh';

export interface MatmulOptions {
  /** a is [..., K, M] and used transposed. */
  transA?: boolean;
  /** b is [..., N, K] and used transposed (PyTorch Linear weight layout). */
  transB?: boolean;
  /** [N], added before the activation. */
  bias?: Tensor;
  /** gelu = exact erf GELU (PyTorch nn.GELU default), gelu_tanh = tanh approximation. */
  activation?: Activation;
  /** Same shape as the output, added after the activation. */
  residual?: Tensor;
  /** Force a variant by name (one of MATMUL_VARIANTS), for tests and benchmarks. */
  variant?: string;
}

/**
 * Variant names. 'tiled' (workgroup memory), 'rb' (8×8 register blocks, no workgroup memory),
 * 'skinny' (1×4 strips for tiny M or N), 'sg8' … 'sg64' (subgroup-shuffle register blocks, 8…64 rows per
 * invocation). Each uses vec4 loads when the shapes allow it; the '_s' forms force scalar loads.
 */
export const MATMUL_VARIANTS: readonly string[] = [...VARIANT_TABLE.keys()];

/** Floating-point operations of a (batched) M×K by K×N product. */
export function matmulFlops(M: number, N: number, K: number, batch = 1): number {
  return 2 * M * N * K * batch;
}

const ACT_CODE: Record<Activation, number> = { none: 0, relu: 1, gelu: 2, gelu_tanh: 3 };

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Shapes of one call, resolved. */
export interface MatmulDims {
  M: number;
  N: number;
  K: number;
  /** vec4 loads apply: A's and B's contiguous dims and N are multiples of 4. */
  vec4: boolean;
  transA: boolean;
  transB: boolean;
}

/** M, N, K of a·b under the transposes (no checks beyond rank). */
export function matmulDims(aShape: readonly number[], bShape: readonly number[], transA: boolean, transB: boolean): MatmulDims {
  const ra = aShape.length;
  const rb = bShape.length;
  const M = transA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = transA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const N = transB ? bShape[rb - 2]! : bShape[rb - 1]!;
  const vec4 = (transA ? M : K) % 4 === 0 && (transB ? K : N) % 4 === 0 && N % 4 === 0;
  return { M, N, K, vec4, transA, transB };
}

/**
 * The variant a call would use: `forced` (opts.variant); else an in-memory choice from tuneMatmul for the coarse
 * shapeClass (rt.tuning 'matmul'); else the tuning cache for matmulTuneClass(d) (modes 'cache' and 'on', see
 * tune-cache.ts; a cached name this runtime cannot run is ignored); else defaultVariant() (deterministic).
 * `batch` (product of the batch dims) is only recorded with a cache miss in 'on' mode, for measuring it later.
 */
export function chooseVariant(rt: Runtime, d: MatmulDims, forced?: string, batch = 1): MatmulVariant {
  let name = forced;
  if (name === undefined) {
    const tuned = rt.tuning.get('matmul') as Record<string, string> | undefined;
    name =
      tuned?.[shapeClass(d.M, d.N, d.vec4)] ??
      tunedVariant(
        rt,
        'matmul',
        matmulTuneClass(d),
        () => ({ kind: 'matmul', M: d.M, N: d.N, K: d.K, batch, transA: d.transA, transB: d.transB }),
        (n) => {
          const v = VARIANT_TABLE.get(n);
          return v !== undefined && unsupportedReason(rt, v) === null;
        },
      ) ??
      defaultVariant(rt, d.M, d.N);
  }
  const v = VARIANT_TABLE.get(name);
  if (!v) throw new GraftError(`matmul: unknown variant '${name}' (known: ${MATMUL_VARIANTS.join(', ')})`);
  const why = unsupportedReason(rt, v);
  if (why) throw new GraftError(`matmul: variant '${name}' ${why}`);
  return v;
}

/**
 * a [...batchA, M, K] · b [...batchB, K, N] (or [K, N] shared by every batch); batch dims broadcast
 * numpy-style. Returns [...batch, M, N] = act(a·b + bias) + residual. All tensors f32.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const what = `matmul(a ${fmt(a.shape)}${transA ? 'ᵀ' : ''}, b ${fmt(b.shape)}${transB ? 'ᵀ' : ''})`;
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`${what}: both operands need at least 2 dims`);
  for (const [n, t] of [['a', a], ['b', b], ['bias', opts.bias], ['residual', opts.residual]] as const) {
    if (t && t.dtype !== 'f32') throw new ShapeError(`${what}: ${n} is ${t.dtype}, matmul takes f32`);
  }
  const d = matmulDims(a.shape, b.shape, transA, transB);
  const Kb = transB ? b.shape[b.rank - 1]! : b.shape[b.rank - 2]!;
  if (d.K !== Kb) throw new ShapeError(`${what}: inner dims differ (${d.K} vs ${Kb})`);
  const { M, N, K } = d;
  const plan = planBatch(a.shape.slice(0, -2), b.shape.slice(0, -2), M * K, K * N, what);
  const outShape = [...plan.outBatch, M, N];
  if (opts.bias && (opts.bias.size !== N || opts.bias.rank !== 1)) {
    throw new ShapeError(`${what}: bias ${fmt(opts.bias.shape)} must be [${N}]`);
  }
  if (opts.residual && fmt(opts.residual.shape) !== fmt(outShape)) {
    throw new ShapeError(`${what}: residual ${fmt(opts.residual.shape)} must match the output ${fmt(outShape)}`);
  }
  const rt = a.rt;
  const v = chooseVariant(rt, d, opts.variant, plan.outBatch.reduce((n, x) => n * x, 1));
  const out = Tensor.empty(rt, outShape);
  if (out.size === 0) return out;
  // vec4 loads need whole vec4s: also not for K = 0 (an empty operand binds fewer than 16 bytes)
  const vec4 = d.vec4 && !v.scalar && K > 0;
  const kernel = matmulKernel(v.algo, vec4);
  const constants = {
    ...variantConstants(v),
    TRANS_A: transA,
    TRANS_B: transB,
  };
  const flags = (opts.bias ? 1 : 0) | (opts.residual ? 2 : 0);
  const act = ACT_CODE[opts.activation ?? 'none'];
  const maxWg = rt.limits.maxComputeWorkgroupsPerDimension;
  const [gx, gy] = matmulGrid(v, M, N, maxWg);
  // the two innermost batch levels run in-shader (z = z1·D2 + z2); outer levels are separate dispatches
  const lv = plan.levels;
  const inner = lv.slice(-2);
  const l1 = inner.length === 2 ? inner[0]! : { d: 1, a: 0, b: 0 };
  const l2 = inner.length >= 1 ? inner[inner.length - 1]! : { d: 1, a: 0, b: 0 };
  const outer = lv.slice(0, Math.max(0, lv.length - 2));
  const outerCount = outer.reduce((n, l) => n * l.d, 1);
  const zCount = l1.d * l2.d;
  const bias = opts.bias ?? a;
  const residual = opts.residual ?? a;
  for (let o = 0; o < outerCount; o++) {
    let aBase = 0;
    let bBase = 0;
    let rest = o;
    for (let i = outer.length - 1; i >= 0; i--) {
      const idx = rest % outer[i]!.d;
      rest = Math.floor(rest / outer[i]!.d);
      aBase += idx * outer[i]!.a;
      bBase += idx * outer[i]!.b;
    }
    const cBase = o * zCount * M * N;
    for (let z0 = 0; z0 < zCount; z0 += maxWg) {
      const gz = Math.min(maxWg, zCount - z0);
      rt.dispatch(kernel, {
        buffers: [a, b, out, bias, residual],
        params: [M, N, K, l2.d, l1.a, l2.a, l1.b, l2.b, z0, aBase, bBase, cBase, flags, act],
        constants,
        workgroups: [gx, gy, gz],
      });
    }
  }
  return out;
}
