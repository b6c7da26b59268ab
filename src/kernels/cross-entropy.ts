// Fused cross-entropy (log-softmax + NLL, label smoothing, ignore index) computing loss and dlogits in one
// pass over the logits (shaders/cross_entropy.wgsl), a tiny deterministic mean/sum reduction, and the
// upstream-gradient scale (shaders/cross_entropy_reduce.wgsl, cross_entropy_scale.wgsl).
import ceSrc from '../../shaders/cross_entropy.wgsl';
import reduceSrc from '../../shaders/cross_entropy_reduce.wgsl';
import scaleSrc from '../../shaders/cross_entropy_scale.wgsl';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { f32, i32 } from '../runtime/params.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';
import { planRowLaunch } from './norm-backward.js';

const K_CE = { name: 'cross_entropy', code: ceSrc };
const K_REDUCE = { name: 'cross_entropy_reduce', code: reduceSrc };
const K_SCALE = { name: 'cross_entropy_scale', code: scaleSrc };

export interface CrossEntropyOptions {
  /** torch's label_smoothing in [0, 1] (default 0). */
  labelSmoothing?: number;
  /** Targets equal to this contribute no loss and no gradient, and are not counted (default -100). */
  ignoreIndex?: number;
  /** 'mean' over non-ignored targets (default), 'sum', or 'none' (per-row losses, 0 where ignored). */
  reduction?: 'mean' | 'sum' | 'none';
  /** Also return dlogits (default true). */
  grad?: boolean;
}

const fmt = (t: Tensor) => `[${t.shape.join(', ')}]`;

/**
 * Cross-entropy with PyTorch semantics. logits [B, C] f32, targets [B] i32.
 * loss: [1] for 'mean' / 'sum' (the mean is NaN when every target is ignored), [B] for 'none'.
 * dlogits [B, C]: d(loss)/d(logits) for 'mean' / 'sum'; for 'none' the gradient of Σ_rows loss
 * (each row's own derivative). Null when opts.grad === false. A target outside [0, C) that is not
 * ignoreIndex makes its row's loss and gradient NaN (torch raises). The count of non-ignored targets
 * stays on the GPU (count: null); the mean is divided there.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  opts: CrossEntropyOptions = {},
): { loss: Tensor; dlogits: Tensor | null; count: number | null } {
  const op = 'crossEntropy';
  if (logits.dtype !== 'f32' || logits.rank !== 2) throw new ShapeError(`${op}: logits must be f32 [B, C], got ${logits.dtype} ${fmt(logits)} (targets ${fmt(targets)})`);
  const [B, C] = logits.shape as [number, number];
  if (targets.dtype !== 'i32' || targets.rank !== 1 || targets.shape[0] !== B) {
    throw new ShapeError(`${op}: targets must be i32 [${B}] for logits ${fmt(logits)}, got ${targets.dtype} ${fmt(targets)}`);
  }
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new GraftError(`${op}: labelSmoothing must be in [0, 1], got ${eps}`);
  const ignore = opts.ignoreIndex ?? -100;
  if (!Number.isInteger(ignore) || ignore < -(2 ** 31) || ignore >= 2 ** 31) throw new GraftError(`${op}: ignoreIndex must be a 32-bit integer, got ${ignore}`);
  const reduction = opts.reduction ?? 'mean';
  if (C === 0) throw new ShapeError(`${op}: logits ${fmt(logits)} have no classes`);
  const grad = opts.grad !== false;
  const mean = reduction === 'mean';
  const rt = logits.rt;

  const rowLoss = Tensor.empty(rt, [B], 'f32');
  const dlogits = grad ? Tensor.empty(rt, [B, C], 'f32') : null;
  if (B > 0) {
    const plan = planRowLaunch(rt, B, C);
    const scratch = dlogits ? null : Tensor.empty(rt, [1], 'f32');
    rt.dispatch(K_CE, {
      buffers: [logits, targets, rowLoss, dlogits ?? scratch!],
      params: [B, C, i32(ignore), f32(eps), mean ? 1 : 0, grad ? 1 : 0],
      constants: { WG: plan.wg, T: plan.t },
      workgroups: plan.workgroups,
    });
    scratch?.dispose();
  }
  if (reduction === 'none') return { loss: rowLoss, dlogits, count: null };
  const loss = Tensor.empty(rt, [1], 'f32');
  rt.dispatch(K_REDUCE, {
    buffers: [rowLoss, targets, loss],
    params: [B, i32(ignore), mean ? 1 : 0],
    workgroups: [1],
  });
  rowLoss.dispose();
  return { loss, dlogits, count: null };
}

/** dlogits * gradOutput[0] (gradOutput [1]: the upstream gradient of the scalar loss), one kernel. */
export function crossEntropyBackwardScale(dlogits: Tensor, gradOutput: Tensor): Tensor {
  if (dlogits.dtype !== 'f32' || gradOutput.dtype !== 'f32' || gradOutput.size !== 1) {
    throw new ShapeError(`crossEntropyBackwardScale: dlogits ${fmt(dlogits)} (${dlogits.dtype}) and gradOutput ${fmt(gradOutput)} (${gradOutput.dtype}) must be f32 with a 1-element gradOutput`);
  }
  const rt = dlogits.rt;
  const out = Tensor.empty(rt, dlogits.shape, 'f32');
  rt.dispatch(K_SCALE, {
    buffers: [dlogits, gradOutput, out],
    params: [dlogits.size],
    constants: { WG: 256 },
    workgroups: grid1d(dlogits.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}
