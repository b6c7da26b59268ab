// Global gradient norm on the GPU: a deterministic two-stage reduction (grad_norm_partial per buffer window, grad_norm_finalize once), no atomics, no readback.
import partialSrc from '../../shaders/grad_norm_partial.wgsl';
import finalizeSrc from '../../shaders/grad_norm_finalize.wgsl';
import { GraftError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import type { Binding, Runtime } from '../runtime/runtime.js';
import type { Tensor } from '../tensor.js';
import { grid1d } from '../kernels/grid.js';

const K_PARTIAL = { name: 'grad_norm_partial', code: partialSrc };
const K_FINALIZE = { name: 'grad_norm_finalize', code: finalizeSrc };
const WG = 256;
const PER = 16;

/** One f32 window to reduce: `n` elements starting at the binding's offset. */
export interface NormSource {
  binding: Binding | Tensor;
  n: number;
}

export interface NormRequest {
  /** 2 (L2, default) or Infinity (max |g|). */
  normType: number;
  /** Clip threshold for the coefficient min(1, maxNorm / (norm + 1e-6)). */
  maxNorm: number;
  /** The gradients' scale: the norm reported is that of gradScale·g. */
  gradScale: number;
}

/** Partials stage 1 writes for a window of `n` elements. */
export function partialCount(n: number): number {
  return Math.ceil(n / (WG * PER));
}

/** Throw unless the clip arguments are usable. */
export function checkNormRequest(what: string, r: NormRequest): void {
  if (r.normType !== 2 && r.normType !== Infinity) throw new GraftError(`${what}: normType must be 2 or Infinity, got ${r.normType}`);
  if (!(r.maxNorm >= 0) || Number.isNaN(r.maxNorm)) throw new GraftError(`${what}: maxNorm must be >= 0, got ${r.maxNorm}`);
  if (!(r.gradScale > 0) || !Number.isFinite(r.gradScale)) throw new GraftError(`${what}: gradScale must be finite and > 0, got ${r.gradScale}`);
}

/**
 * Record the reduction of `sources` into `partials` (≥ Σ partialCount(n) f32), then `norm[0]` =
 * the global norm and `clip` = [norm, clip coefficient]. partialCount(Σ) + 1 dispatches.
 */
export function recordGradNorm(
  rt: Runtime,
  sources: readonly NormSource[],
  partials: Binding | Tensor,
  norm: Tensor,
  clip: Binding | Tensor,
  r: NormRequest,
): void {
  const INF = r.normType === Infinity;
  const maxPerDim = rt.limits.maxComputeWorkgroupsPerDimension;
  let total = 0;
  for (const s of sources) {
    const count = partialCount(s.n);
    if (!count) continue;
    rt.dispatch(K_PARTIAL, {
      buffers: [s.binding, partials],
      params: [s.n, total, count],
      constants: { PER, INF },
      workgroups: grid1d(count, 1, maxPerDim),
    });
    total += count;
  }
  rt.dispatch(K_FINALIZE, {
    buffers: [partials, norm, clip],
    params: [total, f32(r.maxNorm), f32(r.gradScale)],
    constants: { INF },
    workgroups: [1],
  });
}
