// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_): fused into the optimizer's next step, or in place for loose tensors; never reads back.
import gradScaleSrc from '../../shaders/grad_norm_scale.wgsl';
import { GraftError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from '../kernels/grid.js';
import { checkNormRequest, partialCount, recordGradNorm } from './norm.js';
import type { ClipOptions } from './optimizer.js';

const K_SCALE = { name: 'grad_norm_scale', code: gradScaleSrc };

/** What clipGradNorm accepts besides tensors: any optimizer (they clip inside their next step). */
export interface GradClipper {
  clipGradNorm(maxNorm: number, opts?: ClipOptions): Tensor;
}

function isTensorList(t: GradClipper | readonly Tensor[]): t is readonly Tensor[] {
  return Array.isArray(t);
}

/**
 * Clip gradients so their global norm (over all of them together) is at most `maxNorm`: the
 * coefficient is min(1, maxNorm / (norm + 1e-6)). Returns the norm before clipping as a [1]
 * tensor, computed on the GPU (deterministic two-stage reduction) and readable later for logging.
 *
 * - `clipGradNorm(optimizer, maxNorm)`: reduces over the optimizer's grad arena chunks (chunks + 1
 *   dispatches) and applies the coefficient inside the next `optimizer.step()`, read from a GPU
 *   buffer; the grads themselves are not modified. Preferred: a training step stays one submit.
 * - `clipGradNorm(params, maxNorm)`: the `.grad` of each tensor that has one, scaled in place
 *   (one reduction dispatch per tensor plus one, then one scale dispatch per tensor).
 *
 * `opts.gradScale`: the norm and clip are those of gradScale·grad (e.g. 1/k after accumulating k
 * micro-batches of summed losses); with an optimizer, its next step uses the same scale.
 */
export function clipGradNorm(target: GradClipper | readonly Tensor[], maxNorm: number, opts: ClipOptions = {}): Tensor {
  if (!isTensorList(target)) return target.clipGradNorm(maxNorm, opts);
  const r = { maxNorm, normType: opts.normType ?? 2, gradScale: opts.gradScale ?? 1 };
  checkNormRequest('clipGradNorm', r);
  const grads: Tensor[] = [];
  for (const p of target) {
    const g = p.grad;
    if (!g || g.disposed) continue;
    if (g.dtype !== 'f32') throw new GraftError(`clipGradNorm: ${p} has a ${g.dtype} grad; only f32 grads are supported`);
    grads.push(g);
  }
  if (!grads.length) {
    const rt = target[0]?.rt;
    if (!rt) throw new TypeError('clipGradNorm: no parameters given');
    return Tensor.zeros(rt, [1]);
  }
  const rt = grads[0]!.rt;
  const count = grads.reduce((s, g) => s + partialCount(g.size), 0);
  const partials = Tensor.empty(rt, [Math.max(1, count)]);
  const clip = Tensor.empty(rt, [2]);
  const norm = Tensor.empty(rt, [1]);
  recordGradNorm(rt, grads.map((g) => ({ binding: g, n: g.size })), partials, norm, clip, r);
  const maxPerDim = rt.limits.maxComputeWorkgroupsPerDimension;
  for (const g of grads) {
    if (!g.size) continue;
    rt.dispatch(K_SCALE, { buffers: [clip, g], params: [g.size], constants: { WG: 256 }, workgroups: grid1d(g.size, 256, maxPerDim) });
  }
  partials.dispose();
  clip.dispose();
  return norm;
}
