// Shared ResNet execution: conv+BN pairs folded for frozen inference (one fused conv each), or run through autograd.
//
// Eval-mode inference folds each BatchNorm into the conv before it: with s = gamma / sqrt(var + eps),
//   W' = W · s[k]   b' = (b - mean) · s + beta
// so conv → BN → ReLU is one conv2d launch with a bias + ReLU epilogue, and a block's last conv adds the
// shortcut in its epilogue (conv2d computes act(conv + bias) + residual, so the ReLU after the add is one
// more element-wise pass). Training, or eval with gradients wanted, runs the unfused modules through autograd,
// and so does everything when fusion 'bn-fold' is off (src/runtime/fusion.ts): conv, then the eval batch-norm kernel.
import { GraftError } from '../runtime/errors.js';
import { Tensor, keep } from '../tensor.js';
import { conv2d as conv2dKernel } from '../kernels/conv2d.js';
import { binary, scale, unary } from '../kernels/elementwise.js';
import type { Pool2dOptions } from '../kernels/pool2d.js';
import * as F from '../autograd/functional.js';
import { isGradEnabled } from '../autograd/grad-mode.js';
import { fusionEnabled } from '../runtime/fusion.js';
import type { BatchNorm2d, Conv2d } from '../nn/layers.js';

/** A convolution and the batch norm that follows it. */
export interface ConvBn {
  conv: Conv2d;
  bn: BatchNorm2d;
}

/** A residual block: main path pairs (ReLU after all but the last), optional projection shortcut. */
export interface ResidualBlock {
  main: ConvBn[];
  shortcut: ConvBn | null;
}

interface Folded {
  w: Tensor;
  b: Tensor;
}

/**
 * Folded (W', b') per conv, computed on the GPU on first use. Owners clear it whenever parameters may
 * have changed: loadStateDict, train()/eval(), and any forward that recorded a graph through the pair
 * (an optimizer step may follow). Writing parameter data by hand needs an explicit clear().
 */
export class FoldCache {
  private readonly map = new Map<Conv2d, Folded>();

  get(p: ConvBn): Folded {
    const hit = this.map.get(p.conv);
    if (hit) return hit;
    const f = fold(p);
    this.map.set(p.conv, f);
    return f;
  }

  drop(p: ConvBn): void {
    const f = this.map.get(p.conv);
    if (!f) return;
    f.w.dispose();
    f.b.dispose();
    this.map.delete(p.conv);
  }

  clear(): void {
    for (const f of this.map.values()) {
      f.w.dispose();
      f.b.dispose();
    }
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

/** W' = W·s, b' = (b - mean)·s + beta with s = gamma / sqrt(var + eps) (gamma = 1, beta = 0 when absent). */
function fold({ conv, bn }: ConvBn): Folded {
  const mean = bn.running_mean;
  const variance = bn.running_var;
  if (!mean || !variance) throw new GraftError(`cannot fold a BatchNorm2d without running statistics into a conv`);
  const k = conv.weight.shape[0]!;
  const tmp: Tensor[] = [];
  const t = (x: Tensor): Tensor => (tmp.push(x), x);
  let s = t(unary(t(scale(variance, 1, bn.eps)), 'rsqrt'));
  if (bn.weight) s = t(binary(s, bn.weight, 'mul'));
  const s4 = t(s.reshape([k, 1, 1, 1]));
  const w = binary(conv.weight, s4, 'mul');
  const centred = conv.bias ? t(binary(conv.bias, mean, 'sub')) : t(scale(mean, -1));
  const scaled = binary(centred, s, 'mul');
  const b = bn.bias ? binary(t(scaled), bn.bias, 'add') : scaled;
  for (const x of tmp) x.dispose();
  return { w: keep(w), b: keep(b) };
}

function pairParams(p: ConvBn): Tensor[] {
  return [p.conv.weight, p.conv.bias, p.bn.weight, p.bn.bias].filter((x): x is Tensor => x !== null);
}

/** True when this forward must go through autograd (training, or a gradient is wanted through these pairs), or fusion 'bn-fold' is off. */
export function needsAutograd(x: Tensor, pairs: readonly ConvBn[]): boolean {
  if (pairs.some((p) => p.bn.training)) return true;
  if (!fusionEnabled('bn-fold')) return true;
  if (!isGradEnabled()) return false;
  return x.requiresGrad || pairs.some((p) => pairParams(p).some((t) => t.requiresGrad));
}

/** One conv+BN pair, optionally with ReLU; fused or through autograd. */
export function convBn(x: Tensor, p: ConvBn, folds: FoldCache, relu: boolean): Tensor {
  if (!needsAutograd(x, [p])) {
    const f = folds.get(p);
    return conv2dKernel(x, f.w, { ...p.conv.opts, bias: f.b, activation: relu ? 'relu' : 'none' });
  }
  folds.drop(p);
  const c = p.conv.forward(x);
  const y = relu ? p.bn.forwardRelu(c) : p.bn.forward(c);
  c.dispose();
  return y;
}

/** relu(main(x) + shortcut(x)) where main is conv-BN-ReLU ... conv-BN. */
export function residualBlock(x: Tensor, blk: ResidualBlock, folds: FoldCache): Tensor {
  const pairs = blk.shortcut ? [...blk.main, blk.shortcut] : blk.main;
  return needsAutograd(x, pairs) ? blockAutograd(x, blk, folds) : blockFused(x, blk, folds);
}

function blockFused(x: Tensor, blk: ResidualBlock, folds: FoldCache): Tensor {
  const sc = blk.shortcut ? convBn(x, blk.shortcut, folds, false) : x;
  let h = x;
  const last = blk.main.length - 1;
  blk.main.forEach((p, i) => {
    const f = folds.get(p);
    const next =
      i < last
        ? conv2dKernel(h, f.w, { ...p.conv.opts, bias: f.b, activation: 'relu' })
        : conv2dKernel(h, f.w, { ...p.conv.opts, bias: f.b, residual: sc });
    if (h !== x) h.dispose();
    h = next;
  });
  if (sc !== x) sc.dispose();
  const y = unary(h, 'relu');
  h.dispose();
  return y;
}

function blockAutograd(x: Tensor, blk: ResidualBlock, folds: FoldCache): Tensor {
  let h = x;
  const last = blk.main.length - 1;
  blk.main.forEach((p, i) => {
    const next = convBn(h, p, folds, i < last);
    if (h !== x) h.dispose();
    h = next;
  });
  const sc = blk.shortcut ? convBn(x, blk.shortcut, folds, false) : x;
  const sum = F.add(h, sc);
  h.dispose();
  if (sc !== x) sc.dispose();
  const y = F.relu(sum);
  sum.dispose();
  return y;
}

/** conv-BN-ReLU then max pooling (the ResNet stem). */
export function stem(x: Tensor, p: ConvBn, pool: Pool2dOptions, folds: FoldCache): Tensor {
  const h = convBn(x, p, folds, true);
  const y = F.maxPool2d(h, pool);
  h.dispose();
  return y;
}
