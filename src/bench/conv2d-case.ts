// The graft conv2d benchmark case: input and weights uploaded once, record() enqueues one conv2d.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, keep } from '../tensor.js';
import { conv2d, conv2dFlops } from '../kernels/conv2d.js';
import { makeCase, type GraftCase } from './cases.js';
import { conv2dHostData, type Conv2dShape } from './shapes.js';

/** conv2d(x, w) with x [n, c, h, w] and w [k, c/groups, r, s]. */
export function conv2dCase(
  rt: Runtime,
  s: Conv2dShape,
  opts: { variant?: string; data?: { x: Float32Array; w: Float32Array } } = {},
): GraftCase {
  const d = opts.data ?? conv2dHostData(s);
  const x = keep(Tensor.from(rt, d.x, [s.n, s.c, s.h, s.w]));
  const w = keep(Tensor.from(rt, d.w, [s.k, s.c / s.groups, s.r, s.s]));
  const co = {
    stride: s.stride,
    padding: s.pad,
    dilation: s.dilation,
    groups: s.groups,
    ...(opts.variant === undefined ? {} : { variant: opts.variant }),
  };
  const flops = conv2dFlops(s.n, s.c, s.h, s.w, s.k, s.r, s.s, co);
  return makeCase(flops, [x, w], () => conv2d(x, w, co));
}
