// Conv2d forward lowered to one GEMM for few output columns (late ResNet stages at small inputs, groups = 1):
// rows [N·P·Q, C·R·S] (im2row, or x itself for 1×1 stride-1 unpadded convs on 1×1 maps) · w [K, C·R·S]ᵀ
// = y [N·P·Q, K] with the bias/ReLU epilogue in the matmul, then [N, P·Q, K] -> [N, K, P·Q] and the residual.
import im2rowSrc from '../../shaders/conv2d_im2row.wgsl';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import type { ConvGeom } from './conv2d-geom.js';
import { binary } from './elementwise.js';
import { grid1d } from './grid.js';
import { matmul } from './matmul.js';
import { transpose } from './transpose.js';

const K_IM2ROW = { name: 'conv2d_im2row', code: im2rowSrc };

/** Largest im2row scratch (elements) the lowering accepts. */
export const GEMM_MAX_SCRATCH = 1 << 24;

/** Whether the GEMM lowering can run this geometry. */
export function gemmApplies(g: ConvGeom): boolean {
  return g.groups === 1 && g.N * g.P * g.Q * g.C * g.R * g.S <= GEMM_MAX_SCRATCH;
}

const isPlain1x1 = (g: RowGeom): boolean =>
  g.R === 1 && g.S === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0 && g.H === 1 && g.W === 1;

/** The geometry fields im2row reads (a forward ConvGeom or a backward ConvBwdGeom). */
export type RowGeom = Pick<ConvGeom, 'N' | 'C' | 'H' | 'W' | 'P' | 'Q' | 'R' | 'S' | 'sh' | 'sw' | 'ph' | 'pw' | 'dh' | 'dw'>;

/** x as rows [N·P·Q, C·R·S]: a free reshape for 1×1 stride-1 unpadded convs on 1×1 maps, else im2row. */
export function asRows(rt: Runtime, x: Tensor, g: RowGeom): Tensor {
  return isPlain1x1(g) ? x.reshape([g.N * g.P * g.Q, g.C]) : im2row(rt, x, g);
}

/** im2row: x [N, C, H, W] -> [N·P·Q, C·R·S] (zeros where a tap falls in the padding). */
export function im2row(rt: Runtime, x: Tensor, g: RowGeom): Tensor {
  const cols = g.N * g.P * g.Q;
  const CRS = g.C * g.R * g.S;
  const out = Tensor.empty(rt, [cols, CRS]);
  const total = cols * CRS;
  if (total === 0) return out;
  rt.dispatch(K_IM2ROW, {
    buffers: [x, out],
    params: [g.C, g.H, g.W, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, total],
    workgroups: grid1d(total, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/** y [N, K, P, Q] = act(conv2d(x, w) + bias) + residual through one matmul. */
export function conv2dGemm(x: Tensor, w: Tensor, g: ConvGeom, bias: Tensor | undefined, relu: boolean, residual: Tensor | undefined): Tensor {
  const rt = x.rt;
  const PQ = g.P * g.Q;
  const cols = g.N * PQ;
  const rows = asRows(rt, x, g);
  const wm = w.reshape([g.K, g.C * g.R * g.S]);
  const res1 = PQ === 1 && residual ? residual.reshape([cols, g.K]) : undefined;
  const yT = matmul(rows, wm, { transB: true, bias, activation: relu ? 'relu' : 'none', residual: res1 });
  rows.dispose();
  wm.dispose();
  res1?.dispose();
  if (PQ === 1) {
    const y = yT.reshape([g.N, g.K, 1, 1]);
    yT.dispose();
    return y;
  }
  const y3 = yT.reshape([g.N, PQ, g.K]);
  const yc = transpose(y3, [0, 2, 1]);
  y3.dispose();
  yT.dispose();
  const y = yc.reshape([g.N, g.K, g.P, g.Q]);
  yc.dispose();
  if (!residual) return y;
  const out = binary(y, residual, 'add');
  y.dispose();
  return out;
}
