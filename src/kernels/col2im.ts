// Col2im gather for the GEMM path of conv2d's input gradient: dcol [n, C·R·S, P·Q] -> dx [N, C, H, W] (no atomics).
import col2imSrc from '../../shaders/conv2d_col2im.wgsl';
import { ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import type { ConvBwdGeom } from './conv2d-backward.js';
import { grid1d } from './grid.js';

const K_COL2IM = { name: 'conv2d_col2im', code: col2imSrc };

/**
 * Write images n0 .. n0 + n - 1 of dx [N, C, H, W] from dcol [n, C·R·S, P·Q] (the GEMM Wᵀ·dY for those images):
 * each dx element sums dcol over the taps (r, s) whose output position (p, q) exists for g's stride, padding and
 * dilation. g.groups must be 1 (dcol rows are c·R·S + r·S + s over all C).
 */
export function col2imInto(dcol: Tensor, g: ConvBwdGeom, dx: Tensor, n0: number, n: number): void {
  const rows = g.C * g.R * g.S;
  if (g.groups !== 1) throw new ShapeError(`col2im: groups must be 1, got ${g.groups}`);
  if (dcol.size !== n * rows * g.P * g.Q || n0 < 0 || n0 + n > g.N || dx.size !== g.N * g.C * g.H * g.W) {
    throw new ShapeError(`col2im: dcol [${dcol.shape.join(', ')}] must hold [${n}, ${rows}, ${g.P * g.Q}] for images ${n0}..${n0 + n - 1} of dx [${dx.shape.join(', ')}]`);
  }
  const plane = g.C * g.H * g.W;
  const total = n * plane;
  if (total === 0) return;
  const rt = dcol.rt;
  rt.dispatch(K_COL2IM, {
    buffers: [dcol, dx],
    params: [g.C, g.H, g.W, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, total, n0 * plane],
    workgroups: grid1d(total, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
}
