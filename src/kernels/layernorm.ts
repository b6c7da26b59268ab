// Layer norm over the last dim, optionally fused with a residual add (shaders/layernorm.wgsl).
import src from '../../shaders/layernorm.wgsl';
import { f32 } from '../runtime/params.js';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { planRows } from './rowplan.js';

const K = { name: 'layernorm', code: src };

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

function run(
  op: string,
  x: Tensor,
  residual: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  force?: { wg?: number; t?: number },
): Tensor {
  if (x.rank === 0) throw new ShapeError(`${op}: x needs at least one dimension, got shape []`);
  const d = x.shape[x.rank - 1]!;
  for (const [name, t] of [['x', x], ['residual', residual], ['weight', weight], ['bias', bias]] as const) {
    if (t && t.dtype !== 'f32') throw new ShapeError(`${op}: ${name} must be f32, got ${t.dtype} ${fmt(t)}`);
  }
  if (residual && (residual.rank !== x.rank || residual.shape.some((s, i) => s !== x.shape[i]))) {
    throw new ShapeError(`${op}: residual shape ${fmt(residual)} does not match x shape ${fmt(x)}`);
  }
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== d)) {
      throw new ShapeError(`${op}: ${name} shape ${fmt(t)} must be [${d}], the last dim of x shape ${fmt(x)}`);
    }
  }
  if (!(eps >= 0)) throw new ShapeError(`${op}: eps must be >= 0, got ${eps}`);
  const out = Tensor.empty(x.rt, x.shape, 'f32');
  if (x.size === 0) return out;
  const rows = x.size / d;
  const plan = planRows(x.rt, rows, d, force);
  x.rt.dispatch(K, {
    buffers: [x, residual ?? x, weight ?? x, bias ?? x, out],
    params: [rows, d, f32(eps)],
    constants: { WG: plan.wg, T: plan.t, HAS_RES: !!residual, HAS_W: !!weight, HAS_B: !!bias },
    workgroups: plan.workgroups,
  });
  return out;
}

/**
 * Layer norm over the last dim D of x [..., D]: (x - mean) / sqrt(var + eps) * weight + bias with
 * the biased variance (PyTorch). weight, bias: [D] or null (identity). Same shape as x.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return run('layerNorm', x, null, weight, bias, eps);
}

/** layerNorm(x + residual) in one kernel (BERT's LayerNorm(h + input)); residual has x's shape. */
export function layerNormResidual(x: Tensor, residual: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return run('layerNormResidual', x, residual, weight, bias, eps);
}

/** For tests and benchmarks: layer norm with a forced launch plan (threads per workgroup / per row). */
export function layerNormWithPlan(
  x: Tensor,
  residual: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  force: { wg?: number; t?: number },
): Tensor {
  return run(residual ? 'layerNormResidual' : 'layerNorm', x, residual, weight, bias, eps, force);
}
