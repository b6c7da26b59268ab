// The graft matmul benchmark case: operands uploaded once, record() enqueues one matmul.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, keep } from '../tensor.js';
import { matmul, matmulFlops } from '../kernels/matmul.js';
import { makeCase, type GraftCase } from './cases.js';
import { matmulHostData, type MatmulShape } from './shapes.js';

/** matmul(a, b) with a [batch, m, k], b [batch, k, n] (rank 2 when batch is 1). */
export function matmulCase(
  rt: Runtime,
  s: MatmulShape,
  opts: { variant?: string; data?: { a: Float32Array; b: Float32Array } } = {},
): GraftCase {
  const d = opts.data ?? matmulHostData(s);
  const lead = s.batch > 1 ? [s.batch] : [];
  const a = keep(Tensor.from(rt, d.a, [...lead, s.m, s.k]));
  const b = keep(Tensor.from(rt, d.b, [...lead, s.k, s.n]));
  const mo = opts.variant === undefined ? {} : { variant: opts.variant };
  return makeCase(matmulFlops(s.m, s.n, s.k, s.batch), [a, b], () => matmul(a, b, mo));
}
