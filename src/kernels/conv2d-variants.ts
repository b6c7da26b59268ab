// Conv2d tile variants: shader, override constants, which shapes/adapters each handles, launch grid, and the rule
// that picks one.
import regSrc from '../../shaders/conv2d_reg.wgsl';
import sgSrc from '../../shaders/conv2d_sg.wgsl';
import rowSrc from '../../shaders/conv2d_row.wgsl';
import pwSrc from '../../shaders/conv2d_pw.wgsl';
import dwSrc from '../../shaders/conv2d_dw.wgsl';
import tiledSrc from '../../shaders/conv2d_tiled.wgsl';
import type { KernelDef, Constants } from '../runtime/pipelines.js';
import { ceilDiv } from './grid.js';
import type { ConvGeom } from './conv2d-geom.js';
import { gemmApplies } from './conv2d-gemm.js';

const K_REG: KernelDef = { name: 'conv2d_reg', code: regSrc };
const K_SG: KernelDef = { name: 'conv2d_sg', code: sgSrc };
const K_ROW: KernelDef = { name: 'conv2d_row', code: rowSrc };
const K_PW: KernelDef = { name: 'conv2d_pw', code: pwSrc };
const K_DW: KernelDef = { name: 'conv2d_dw', code: dwSrc };
const K_TILED: KernelDef = { name: 'conv2d_tiled', code: tiledSrc };

/** What the adapter offers that variants care about. */
export interface ConvCaps {
  /** subgroups enabled and every subgroup has at least 8 invocations. */
  subgroups8: boolean;
  /** A CPU implementation (lavapipe, SwiftShader, WARP...): workgroup memory and barriers are expensive there. */
  cpuLike: boolean;
  maxPerDim: number;
}

export interface ConvLaunch {
  kernel: KernelDef;
  /** Scalars of the shader's Params struct, in order, without the trailing epilogue `flags`. */
  params: number[];
  constants: Constants;
  workgroups: [number, number, number];
}

export interface ConvVariant {
  name: string;
  /** Whether this variant can compute this convolution on this adapter. */
  applies(g: ConvGeom, caps: ConvCaps): boolean;
  launch(g: ConvGeom, caps: ConvCaps): ConvLaunch;
  /** Not one dispatch: conv2d runs it as im2row + matmul (conv2d-gemm.ts); `launch` is not used. */
  lowered?: true;
}

/** Column blocks spread over grid x (and z when x would pass the per-dimension limit); y = channel blocks. */
function grid(blocks: number, y: number, maxPerDim: number): [number, number, number] {
  const z = Math.max(1, ceilDiv(blocks, maxPerDim));
  return [ceilDiv(blocks, z), y, z];
}
const fits = (gr: [number, number, number], caps: ConvCaps) => gr.every((d) => d <= caps.maxPerDim);

/** Inputs one invocation loads per kernel row in the row-reuse shaders (TN adjacent outputs along q). */
const rowSpan = (g: ConvGeom, TN: number) => (TN - 1) * g.sw + (g.S - 1) * g.dw + 1;
const LMAX = 32;

/** Invocations per workgroup along columns for the register-blocked shaders: small, since CPU adapters run a
 * workgroup as a loop over SIMD chunks (16 = two 8-wide chunks) and small images then waste few lanes. */
const WG = 16;

/** General implicit GEMM, TM channels × TN columns per invocation (conv2d_reg / conv2d_sg). */
function general(name: string, TM: number, TN: number, sg: boolean): ConvVariant {
  const gr = (g: ConvGeom, caps: ConvCaps) => grid(ceilDiv(g.N * g.P * g.Q, WG * TN), g.groups * ceilDiv(g.Kg, TM), caps.maxPerDim);
  return {
    name,
    applies: (g, caps) => (!sg || caps.subgroups8) && fits(gr(g, caps), caps),
    launch: (g, caps) => ({
      kernel: sg ? K_SG : K_REG,
      params: [g.N, g.C, g.H, g.W, g.K, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Cg, g.Kg, ceilDiv(g.Kg, TM), TM],
      constants: { TM, TN, WG },
      workgroups: gr(g, caps),
    }),
  };
}

/** Row reuse: TM channels × TN adjacent outputs of a row per invocation (conv2d_row, subgroups). */
function row(name: string, TM: number, TN: number): ConvVariant {
  const gr = (g: ConvGeom, caps: ConvCaps) => grid(ceilDiv(g.N * g.P * ceilDiv(g.Q, TN), WG), g.groups * ceilDiv(g.Kg, TM), caps.maxPerDim);
  return {
    name,
    // Kernel width, stride and dilation along w are pipeline constants: limit them to the common combinations
    // (S >= 2, stride 1-2, no dilation along w) so few pipelines get compiled; the rest go to sg32x2.
    applies: (g, caps) => caps.subgroups8 && g.S >= 2 && g.sw <= 2 && g.dw === 1 && rowSpan(g, TN) <= LMAX && fits(gr(g, caps), caps),
    launch: (g, caps) => ({
      kernel: K_ROW,
      params: [g.N, g.C, g.H, g.W, g.K, g.P, g.Q, g.R, g.sh, g.ph, g.pw, g.dh, g.Cg, g.Kg, ceilDiv(g.Kg, TM), ceilDiv(g.Q, TN), TM],
      constants: { TM, TN, WG, S: g.S, SW: g.sw, DW: g.dw },
      workgroups: gr(g, caps),
    }),
  };
}

/** 1×1 kernels without padding: a GEMM over channels (conv2d_pw, subgroups). */
function pointwise(name: string, TM: number, TN: number): ConvVariant {
  const gr = (g: ConvGeom, caps: ConvCaps) => grid(ceilDiv(g.N * g.P * g.Q, WG * TN), g.groups * ceilDiv(g.Kg, TM), caps.maxPerDim);
  return {
    name,
    applies: (g, caps) => caps.subgroups8 && g.R === 1 && g.S === 1 && g.ph === 0 && g.pw === 0 && fits(gr(g, caps), caps),
    launch: (g, caps) => ({
      kernel: K_PW,
      params: [g.N, g.C, g.H, g.W, g.K, g.P, g.Q, g.sh, g.sw, g.Cg, g.Kg, ceilDiv(g.Kg, TM), TM],
      constants: { TM, TN, WG },
      workgroups: gr(g, caps),
    }),
  };
}

/** Depthwise (C/groups = 1): TN adjacent outputs of one channel's row per invocation (conv2d_dw). */
function depthwise(name: string, TN: number): ConvVariant {
  const gr = (g: ConvGeom, caps: ConvCaps) => grid(ceilDiv(g.N * g.P * ceilDiv(g.Q, TN), WG), g.K, caps.maxPerDim);
  return {
    name,
    applies: (g, caps) => g.Cg === 1 && rowSpan(g, TN) <= LMAX && fits(gr(g, caps), caps),
    launch: (g, caps) => ({
      kernel: K_DW,
      params: [g.N, g.C, g.H, g.W, g.K, g.P, g.Q, g.R, g.sh, g.ph, g.pw, g.dh, g.Kg, ceilDiv(g.Q, TN)],
      constants: { TN, WG, S: g.S, SW: g.sw, DW: g.dw },
      workgroups: gr(g, caps),
    }),
  };
}

/** Workgroup-memory tiled GEMM, 64×64 tiles, BK 16 (conv2d_tiled): the GPU form. */
function tiled(name: string): ConvVariant {
  const gr = (g: ConvGeom, caps: ConvCaps) => grid(ceilDiv(g.N * g.P * g.Q, 64), g.groups * ceilDiv(g.Kg, 64), caps.maxPerDim);
  return {
    name,
    applies: (g, caps) => fits(gr(g, caps), caps),
    launch: (g, caps) => ({
      kernel: K_TILED,
      params: [g.N, g.C, g.H, g.W, g.K, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.Cg, g.Kg, ceilDiv(g.Kg, 64), 16],
      constants: {},
      workgroups: gr(g, caps),
    }),
  };
}

/** Lowered to im2row + one matmul (conv2d-gemm.ts): for few output columns, where the tile variants idle lanes. */
function gemm(name: string): ConvVariant {
  return {
    name,
    lowered: true,
    applies: (g) => gemmApplies(g),
    launch: () => {
      throw new Error(`conv2d variant '${name}' is lowered to a matmul and has no single launch`);
    },
  };
}

/**
 * CPU adapters: at or below this many GEMM columns N·P·Q the GEMM lowering is the default. Measured on lavapipe
 * (ResNet-50 stage 3–4 convs: 4–32 columns 2–15× faster than the tile variants; mixed at 64–128) in bench/README.md; the tuner can choose otherwise per adapter.
 */
export const GEMM_MAX_COLS = 32;

export const VARIANTS: readonly ConvVariant[] = [
  general('reg8x4', 8, 4, false),
  general('sg32x2', 32, 2, true),
  row('row32x4', 32, 4),
  pointwise('pw32x4', 32, 4),
  depthwise('dw8', 8),
  tiled('tiled64'),
  gemm('gemm'),
];

const byName = new Map(VARIANTS.map((v) => [v.name, v]));

/**
 * The selection rule (deterministic, from the shape and the adapter class only):
 *  1. depthwise-like (C/groups = 1)                            -> dw8
 *  1b. CPU adapter, N·P·Q <= GEMM_MAX_COLS, groups = 1          -> gemm (im2row + matmul)
 *  2. a GPU (not a CPU adapter)                                -> tiled64
 *  3. CPU adapter with subgroups >= 8: 1×1 without padding     -> pw32x4
 *                                      other kernels           -> row32x4 (sg32x2 if its row span is too wide)
 *  4. otherwise                                                -> reg8x4
 * Each step falls through to the next when its variant does not apply (e.g. grid limits).
 */
export function chooseVariant(g: ConvGeom, caps: ConvCaps): ConvVariant | undefined {
  const order: string[] = [];
  if (g.Cg === 1) order.push('dw8');
  if (caps.cpuLike && g.N * g.P * g.Q <= GEMM_MAX_COLS) order.push('gemm');
  if (!caps.cpuLike) order.push('tiled64');
  if (caps.subgroups8) order.push(g.R === 1 && g.S === 1 ? 'pw32x4' : 'row32x4', 'sg32x2');
  order.push('reg8x4', 'tiled64');
  return order.map((n) => byName.get(n)!).find((v) => v.applies(g, caps));
}
