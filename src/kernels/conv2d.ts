// Conv2d forward as an implicit GEMM (NCHW activations, OIHW weights) with a fused bias/ReLU/residual epilogue.
//
// Layout: x [N, C, H, W] (NCHW) and w [K, C/groups, R, S] (OIHW): PyTorch's layout, so torchvision checkpoints
// load without permutation and fixtures compare directly. Output y [N, K, P, Q] with
//   P = floor((H + 2·ph - dh·(R-1) - 1) / sh) + 1, Q likewise.
// Per group g the convolution is the GEMM y[k, col] = W[k, (c,r,s)] × im2col(x)[(c,r,s), col] with
// col = (n, p, q) flattened (the batch is folded into the GEMM columns); the im2col gather is computed on the fly
// in the shader, never materialised. Epilogue: y = act(conv + bias) + residual.
//
// Variants (conv2d-variants.ts, shaders/conv2d_*.wgsl): reg8x4 (register-blocked, no workgroup memory, portable),
// sg32x2 (same, weights shared by subgroup broadcasts), row32x4 (reuses inputs along output rows), pw32x4 (1×1 =
// GEMM over channels), dw8 (depthwise), tiled64 (workgroup-memory tiles, for GPUs).
// Selection: `opts.variant` if given; else the tuning cache's choice for conv2dTuneClass (modes 'cache' / 'on', see
// tune-cache.ts; ignored when that variant does not apply here); else the deterministic rule `chooseVariant`:
// depthwise -> dw8; GPU -> tiled64; CPU adapter with subgroups -> pw32x4 for 1×1, row32x4 otherwise; else reg8x4.
import { GraftError, ShapeError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { convGeom, outputSize, flops, type Pair, type ConvGeom } from './conv2d-geom.js';
import { VARIANTS, chooseVariant, type ConvCaps, type ConvVariant } from './conv2d-variants.js';
import { conv2dTuneClass, convTuneShape } from './conv2d-tune.js';
import { tunedVariant } from './tune-cache.js';
import { conv2dGemm } from './conv2d-gemm.js';

export type { Pair } from './conv2d-geom.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /** groups = C = K gives depthwise. */
  groups?: number;
  /** [K] */
  bias?: Tensor;
  /** Fused epilogue, after bias. */
  activation?: 'none' | 'relu';
  /** [N, K, P, Q], added after the activation: out = act(conv + bias) + residual. */
  residual?: Tensor;
  /** Force a tile variant (tests/benchmarks); one of CONV2D_VARIANTS. */
  variant?: string;
}

/** Every variant name (not all apply to every shape or adapter). */
export const CONV2D_VARIANTS: readonly string[] = VARIANTS.map((v) => v.name);

/** Output [P, Q] of a conv over an h×w input with an r×s kernel. */
export function conv2dOutputSize(h: number, w: number, r: number, s: number, opts: Conv2dOptions = {}): [number, number] {
  return outputSize(h, w, r, s, opts);
}

/** 2·N·K·P·Q·(C/groups)·R·S. */
export function conv2dFlops(n: number, c: number, h: number, w: number, k: number, r: number, s: number, opts: Conv2dOptions = {}): number {
  return flops(n, c, h, w, k, r, s, opts);
}

/** What this runtime's adapter offers the conv variants (cached in rt.tuning under 'conv2d.caps'; tests may override). */
export function conv2dCaps(rt: Runtime): ConvCaps {
  const hit = rt.tuning.get('conv2d.caps') as ConvCaps | undefined;
  if (hit) return hit;
  const info = rt.adapter.info;
  const names = `${info.architecture} ${info.description} ${info.device}`;
  const caps: ConvCaps = {
    subgroups8: rt.features.subgroups && (info.subgroupMinSize ?? 0) >= 8,
    cpuLike: info.isFallbackAdapter || /\b(software|cpu)\b|llvmpipe|lavapipe|swiftshader|warp/i.test(names),
    maxPerDim: rt.limits.maxComputeWorkgroupsPerDimension,
  };
  rt.tuning.set('conv2d.caps', caps);
  return caps;
}

/** The variants that can run this convolution on this runtime (in CONV2D_VARIANTS order). */
export function conv2dVariantsFor(rt: Runtime, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): string[] {
  const g = convGeom(xShape, wShape, opts);
  const caps = conv2dCaps(rt);
  return VARIANTS.filter((v) => v.applies(g, caps)).map((v) => v.name);
}

/** The variant conv2d picks for this convolution when `opts.variant` is not given. */
export function conv2dDefaultVariant(rt: Runtime, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): string {
  const g = convGeom(xShape, wShape, opts);
  const v = chooseVariant(g, conv2dCaps(rt));
  if (!v) throw new GraftError(`conv2d: no variant applies to x [${xShape.join(', ')}], w [${wShape.join(', ')}] (grid too large)`);
  return v.name;
}

function pick(rt: Runtime, g: ConvGeom, caps: ConvCaps, forced: string | undefined, both: string): ConvVariant {
  const name =
    forced ??
    tunedVariant(rt, 'conv2d', conv2dTuneClass(g), () => convTuneShape(g), (n) => VARIANTS.find((x) => x.name === n)?.applies(g, caps) ?? false);
  if (name !== undefined) {
    const v = VARIANTS.find((x) => x.name === name);
    if (!v) throw new GraftError(`conv2d: unknown variant '${name}' (known: ${CONV2D_VARIANTS.join(', ')})`);
    if (!v.applies(g, caps)) throw new GraftError(`conv2d: variant '${name}' does not apply to ${both} on this adapter`);
    return v;
  }
  const v = chooseVariant(g, caps);
  if (!v) throw new GraftError(`conv2d: no variant applies to ${both} (grid too large for this adapter)`);
  return v;
}

/** y = act(conv2d(x, w) + bias) + residual. x [N,C,H,W], w [K,C/groups,R,S] -> [N,K,P,Q] (f32). */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const g = convGeom(x.shape, w.shape, opts);
  const both = `x [${x.shape.join(', ')}], w [${w.shape.join(', ')}]`;
  if (x.dtype !== 'f32' || w.dtype !== 'f32') throw new ShapeError(`conv2d: f32 tensors only, got x ${x.dtype}, w ${w.dtype} (${both})`);
  const { bias, residual } = opts;
  if (bias && (bias.dtype !== 'f32' || bias.shape.length !== 1 || bias.shape[0] !== g.K)) {
    throw new ShapeError(`conv2d: bias must be f32 [${g.K}], got ${bias.dtype} [${bias.shape.join(', ')}] (${both})`);
  }
  const yShape = [g.N, g.K, g.P, g.Q];
  if (residual && (residual.dtype !== 'f32' || residual.shape.join() !== yShape.join())) {
    throw new ShapeError(`conv2d: residual must be f32 [${yShape.join(', ')}], got ${residual.dtype} [${residual.shape.join(', ')}] (${both})`);
  }
  if (opts.activation !== undefined && opts.activation !== 'none' && opts.activation !== 'relu') {
    throw new GraftError(`conv2d: unknown activation '${String(opts.activation)}'`);
  }
  const rt = x.rt;
  const caps = conv2dCaps(rt);
  const v = pick(rt, g, caps, opts.variant, both);
  if (v.lowered) return conv2dGemm(x, w, g, bias, opts.activation === 'relu', residual);
  const out = Tensor.empty(rt, yShape);
  const l = v.launch(g, caps);
  rt.dispatch(l.kernel, {
    // Absent bias/residual bind x in their place (read-only; the flags param says they are not read).
    buffers: [x, w, bias ?? x, residual ?? x, out],
    params: [...l.params, (bias ? 1 : 0) | (opts.activation === 'relu' ? 2 : 0) | (residual ? 4 : 0)],
    constants: l.constants,
    workgroups: l.workgroups,
  });
  return out;
}
