// LoraConv2d: a Conv2d whose frozen weight [out, in, kh, kw] gets PEFT's update: lora_B (1×1, r→out) ∘ lora_A (in→r, the base's kernel, stride, padding).
import { GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import { Rng } from '../autograd/random.js';
import * as F from '../autograd/functional.js';
import { Conv2d } from '../nn/layers.js';
import { loraConv2d } from './functional.js';
import { addDelta, deltaWeight, initAdapter, layerState, type LoraLayerOptions, type LoraLayerState } from './layer.js';

/**
 * y = conv(x, W) + b + s·B(A(dropout(x))) with A = Conv2d(in, r, kernel, stride, padding, bias = false) and
 * B = Conv2d(r, out, 1, bias = false), as PEFT. Keeps the base weight/bias names; adds lora_A.weight
 * [r, in, kh, kw] and lora_B.weight [out, r, 1, 1]. Groups and dilation other than 1 are rejected (PEFT's
 * lora_A takes neither). Forward through separate autograd ops (no fused kernel).
 */
export class LoraConv2d extends Conv2d {
  lora_A: Conv2d;
  lora_B: Conv2d;
  readonly lora: LoraLayerState;
  /** Skip the adapter without merging. */
  disabled = false;
  private isMerged = false;
  readonly #base: Conv2d;

  constructor(base: Conv2d, o: LoraLayerOptions) {
    const [outC, inC, kh, kw] = base.weight.shape as [number, number, number, number];
    const g = base.opts;
    // a zero-size placeholder weight (no random draws), replaced by base's
    super(base.weight.rt, inC, 0, [kh, kw], { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: 1, bias: false, rng: new Rng(0) });
    if (base instanceof LoraConv2d) throw new GraftError('LoraConv2d: the layer already has a LoRA adapter');
    const dil = typeof g.dilation === 'number' ? [g.dilation, g.dilation] : (g.dilation ?? [1, 1]);
    if ((g.groups ?? 1) !== 1) throw new GraftError(`LoraConv2d: groups ${g.groups} is not supported (PEFT's lora_A is an ungrouped convolution)`);
    if (dil[0] !== 1 || dil[1] !== 1) throw new GraftError(`LoraConv2d: dilation [${dil.join(', ')}] is not supported (PEFT's lora_A has no dilation)`);
    this.weight.dispose();
    this.weight = base.weight;
    this.bias = base.bias;
    this.training = base.training;
    this.#base = base;
    this.lora = layerState('LoraConv2d', o);
    const rt = base.weight.rt;
    this.lora_A = new Conv2d(rt, inC, o.r, [kh, kw], { stride: g.stride, padding: g.padding, bias: false, rng: this.lora.rng });
    this.lora_B = new Conv2d(rt, o.r, outC, 1, { bias: false, rng: this.lora.rng });
    this.lora_A.training = this.lora_B.training = this.training;
    initAdapter(this.lora_A.weight, this.lora_B.weight, o.initLoraWeights, o.r, this.lora.rng);
  }

  get merged(): boolean {
    return this.isMerged;
  }

  override forward(x: Tensor): Tensor {
    if (this.isMerged || this.disabled) return F.conv2d(x, this.weight, this.bias, this.opts);
    const p = this.training ? this.lora.dropout : 0;
    return loraConv2d(x, this.weight, this.lora_A.weight, this.lora_B.weight, this.bias, {
      scaling: this.lora.scaling,
      dropout: p,
      seed: p > 0 ? this.lora.rng.seed() : 0,
      stride: this.opts.stride,
      padding: this.opts.padding,
    });
  }

  override forwardRelu(x: Tensor): Tensor {
    const y = this.forward(x);
    const r = F.relu(y);
    y.dispose();
    return r;
  }

  /** s·B·A as a [out, in, kh, kw] kernel (a new tensor, no graph). */
  deltaWeight(): Tensor {
    return deltaWeight(this.weight, this.lora_A.weight, this.lora_B.weight, this.lora.r, this.lora.scaling);
  }

  merge(): void {
    if (this.isMerged) return;
    addDelta(this.weight, this.lora_A.weight, this.lora_B.weight, this.lora.r, this.lora.scaling, 1);
    this.isMerged = true;
  }

  unmerge(): void {
    if (!this.isMerged) return;
    addDelta(this.weight, this.lora_A.weight, this.lora_B.weight, this.lora.r, this.lora.scaling, -1);
    this.isMerged = false;
  }

  baseLayer(): Conv2d {
    return this.#base;
  }
}
