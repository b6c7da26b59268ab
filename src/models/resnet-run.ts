// Runs a ResNet block or stem whose convs may be wrapped (e.g. LoRA): module forwards for wrapped convs, the shared fused/autograd executor otherwise.
//
// The folded fast path (resnet-block.ts) computes conv(x, W') from the conv's own weight, so a Conv2d subclass
// that adds to its output (LoraConv2d: + s·B(A(x))) would be silently skipped there. Blocks holding such a conv
// run conv.forward → bn.forward(Relu) → add → ReLU instead; blocks of plain Conv2d keep the old path unchanged.
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { Conv2d } from '../nn/layers.js';
import type { Pool2dOptions } from '../kernels/pool2d.js';
import { residualBlock, stem, type ConvBn, type FoldCache, type ResidualBlock } from './resnet-block.js';

/** True when the pair's conv is a subclass of Conv2d (its forward may differ from conv(x, weight) + bias). */
export function isWrapped(p: ConvBn): boolean {
  return Object.getPrototypeOf(p.conv) !== Conv2d.prototype;
}

function pairForward(x: Tensor, p: ConvBn, relu: boolean): Tensor {
  const c = p.conv.forward(x);
  const y = relu ? p.bn.forwardRelu(c) : p.bn.forward(c);
  c.dispose();
  return y;
}

/** relu(main(x) + shortcut(x)); x is not disposed. */
export function runBlock(x: Tensor, blk: ResidualBlock, folds: FoldCache): Tensor {
  const pairs = blk.shortcut ? [...blk.main, blk.shortcut] : blk.main;
  if (!pairs.some(isWrapped)) return residualBlock(x, blk, folds);
  let h = x;
  const last = blk.main.length - 1;
  blk.main.forEach((p, i) => {
    const next = pairForward(h, p, i < last);
    if (h !== x) h.dispose();
    h = next;
  });
  const sc = blk.shortcut ? pairForward(x, blk.shortcut, false) : x;
  const sum = F.add(h, sc);
  h.dispose();
  if (sc !== x) sc.dispose();
  const y = F.relu(sum);
  sum.dispose();
  return y;
}

/** conv-BN-ReLU then max pooling; x is not disposed. */
export function runStem(x: Tensor, p: ConvBn, pool: Pool2dOptions, folds: FoldCache): Tensor {
  if (!isWrapped(p)) return stem(x, p, pool, folds);
  const h = pairForward(x, p, true);
  const y = F.maxPool2d(h, pool);
  h.dispose();
  return y;
}
