// Sentence embeddings from BERT hidden states: masked mean pooling (sentence-transformers), [CLS] pooling, L2 normalisation.
import { ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { reduce } from '../kernels/reduce.js';
import { binary } from '../kernels/elementwise.js';
import { free } from './bert-layers.js';

const fmt = (t: Tensor): string => `${t.dtype} [${t.shape.join(', ')}]`;

/**
 * Σ_t h[b, t]·mask[b, t] / max(Σ_t mask[b, t], 1e-9): hidden [B, T, H], mask f32 [B, T] (null: plain
 * mean) -> [B, H]. Differentiable in hidden (the mask is a constant).
 */
export function meanPool(hidden: Tensor, mask: Tensor | null): Tensor {
  if (hidden.rank !== 3) throw new ShapeError(`meanPool: hidden must be [B, T, H], got ${fmt(hidden)}`);
  const [B, T] = hidden.shape as [number, number, number];
  if (!mask) return F.mean(hidden, 1);
  if (mask.dtype !== 'f32' || mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== T) {
    throw new ShapeError(`meanPool: mask must be f32 [${B}, ${T}] for hidden ${fmt(hidden)}, got ${fmt(mask)}`);
  }
  const m3 = F.reshape(mask, [B, T, 1]);
  const masked = F.mul(hidden, m3);
  const summed = F.sum(masked, 1); // [B, H]
  const count = reduce(mask, 'sum', [1], true); // [B, 1]
  const clamped = binary(count, 1e-9, 'max');
  const y = F.div(summed, clamped);
  free(m3, masked, summed, count, clamped);
  return y;
}

/** h[:, 0]: hidden [B, T, H] -> [B, H]. */
export function clsPool(hidden: Tensor): Tensor {
  if (hidden.rank !== 3) throw new ShapeError(`clsPool: hidden must be [B, T, H], got ${fmt(hidden)}`);
  const [B, , H] = hidden.shape as [number, number, number];
  const first = F.slice(hidden, [0, 0, 0], [B, 1, H]);
  const y = F.reshape(first, [B, H]);
  first.dispose();
  return y;
}

/** x / max(‖x‖₂, eps) along the last dim (torch F.normalize; eps enters as √(Σx² + eps²)). */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  const sq = F.square(x);
  const ss = F.sum(sq, -1, true);
  const se = F.add(ss, eps * eps);
  const inv = F.rsqrt(se);
  const y = F.mul(x, inv);
  free(sq, ss, se, inv);
  return y;
}
