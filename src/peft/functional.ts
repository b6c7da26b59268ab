// Differentiable LoRA ops: the fused primitive (one kernel forward) or the same math from separate autograd ops.
import { apply1 } from '../autograd/engine.js';
import * as F from '../autograd/functional.js';
import type { LoraFusedVariant } from '../kernels/lora.js';
import type { Tensor } from '../tensor.js';
import { fusedByDefault } from './config.js';

export interface LoraLinearOptions {
  /** s = alpha / r (alpha / √r with rsLoRA). */
  scaling: number;
  /** Dropout probability on the adapter branch's input (applied only when > 0; pass 0 in eval mode). */
  dropout?: number;
  /** Dropout mask seed and element offset (as F.dropout). */
  seed?: number;
  offset?: number;
  /** Fused kernel (true) or separate ops (false); default fusedByDefault() (env GRAFT_FUSE_LORA). */
  fused?: boolean;
  /** Fused path only: force the kernel path / variant (tests, benchmarks). */
  path?: 'fused' | 'matmul';
  variant?: LoraFusedVariant;
}

/**
 * PEFT's LoRA linear: x [..., in]·weight [out, in]ᵀ + bias + scaling·(dropout(x)·a [r, in]ᵀ)·b [out, r]ᵀ.
 * Fused: one primitive (forward in one kernel; backward never forms dW unless weight requires grad).
 * Unfused: linear + dropout + linear + linear + scale + add through autograd (the reference path).
 */
export function loraLinear(x: Tensor, weight: Tensor, a: Tensor, b: Tensor, bias: Tensor | null, o: LoraLinearOptions): Tensor {
  const p = o.dropout ?? 0;
  const seed = o.seed ?? 0;
  const offset = o.offset ?? 0;
  if (o.fused ?? fusedByDefault()) {
    const inputs = bias ? [x, weight, a, b, bias] : [x, weight, a, b];
    return apply1('loraLinear', inputs, { scaling: o.scaling, dropout: p, seed, offset, path: o.path, variant: o.variant });
  }
  const base = F.linear(x, weight, bias);
  const xd = p > 0 ? F.dropout(x, p, true, seed, offset) : x;
  const u = F.linear(xd, a);
  if (xd !== x) xd.dispose();
  const l = F.linear(u, b);
  u.dispose();
  const ls = F.mul(l, o.scaling);
  l.dispose();
  const y = F.add(base, ls);
  base.dispose();
  ls.dispose();
  return y;
}

export interface LoraConv2dOptions {
  scaling: number;
  dropout?: number;
  seed?: number;
  offset?: number;
  /** Base convolution geometry; lora_A uses the same kernel, stride and padding, lora_B is 1×1. */
  stride?: F.Conv2dOpts['stride'];
  padding?: F.Conv2dOpts['padding'];
}

/**
 * PEFT's LoRA Conv2d: conv(x, weight) + bias + scaling·conv1x1(conv(dropout(x), a [r, in, kh, kw], stride,
 * padding), b [out, r, 1, 1]), through autograd (no fused kernel).
 */
export function loraConv2d(x: Tensor, weight: Tensor, a: Tensor, b: Tensor, bias: Tensor | null, o: LoraConv2dOptions): Tensor {
  const geom = { stride: o.stride, padding: o.padding };
  const p = o.dropout ?? 0;
  const base = F.conv2d(x, weight, bias, geom);
  const xd = p > 0 ? F.dropout(x, p, true, o.seed ?? 0, o.offset ?? 0) : x;
  const h = F.conv2d(xd, a, null, geom);
  if (xd !== x) xd.dispose();
  const l = F.conv2d(h, b, null);
  h.dispose();
  const ls = F.mul(l, o.scaling);
  l.dispose();
  const y = F.add(base, ls);
  base.dispose();
  ls.dispose();
  return y;
}
