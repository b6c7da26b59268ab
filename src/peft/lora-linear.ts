// LoraLinear: a Linear whose frozen weight [out, in] gets PEFT's low-rank update, lora_B [out, r] · lora_A [r, in] · s.
import { GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import { Rng } from '../autograd/random.js';
import * as F from '../autograd/functional.js';
import { Linear } from '../nn/layers.js';
import { loraLinear } from './functional.js';
import { addDelta, deltaWeight, initAdapter, layerState, type LoraLayerOptions, type LoraLayerState } from './layer.js';

/**
 * y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ. Keeps the wrapped Linear's weight and bias tensors under the same
 * names (so `….query.weight` stays a valid key) and adds the children lora_A (Linear in→r, no bias) and
 * lora_B (Linear r→out, no bias): keys `….query.lora_A.weight`, `….query.lora_B.weight` as PEFT.
 * Still a Linear (instanceof, forwardRelu), so code written against Linear keeps working.
 */
export class LoraLinear extends Linear {
  override readonly inFeatures: number;
  override readonly outFeatures: number;
  lora_A: Linear;
  lora_B: Linear;
  /** Adapter settings: r, alpha, scaling, dropout, rsLoRA, rng. */
  readonly lora: LoraLayerState;
  /** Fused kernel (true), separate ops (false), or undefined: env GRAFT_FUSE_LORA, else fused. */
  fused: boolean | undefined;
  /** Skip the adapter (forward = the base layer) without merging. */
  disabled = false;
  private isMerged = false;
  readonly #base: Linear;

  constructor(base: Linear, o: LoraLayerOptions) {
    // the Linear constructor makes a zero-size placeholder weight (no random draws), replaced by base's
    super(base.weight.rt, 0, base.outFeatures, { bias: false, rng: new Rng(0) });
    if (base instanceof LoraLinear) throw new GraftError('LoraLinear: the layer already has a LoRA adapter');
    this.weight.dispose();
    this.weight = base.weight;
    this.bias = base.bias;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.training = base.training;
    this.#base = base;
    this.lora = layerState('LoraLinear', o);
    this.fused = o.fused;
    const rt = base.weight.rt;
    this.lora_A = new Linear(rt, this.inFeatures, o.r, { bias: false, rng: this.lora.rng });
    this.lora_B = new Linear(rt, o.r, this.outFeatures, { bias: false, rng: this.lora.rng });
    this.lora_A.training = this.lora_B.training = this.training;
    initAdapter(this.lora_A.weight, this.lora_B.weight, o.initLoraWeights, o.r, this.lora.rng);
  }

  /** True while s·B·A is added into the weight (forward then uses the weight alone). */
  get merged(): boolean {
    return this.isMerged;
  }

  override forward(x: Tensor): Tensor {
    if (this.isMerged || this.disabled) return F.linear(x, this.weight, this.bias);
    const p = this.training ? this.lora.dropout : 0;
    return loraLinear(x, this.weight, this.lora_A.weight, this.lora_B.weight, this.bias, {
      scaling: this.lora.scaling,
      dropout: p,
      seed: p > 0 ? this.lora.rng.seed() : 0,
      fused: this.fused,
    });
  }

  override forwardRelu(x: Tensor): Tensor {
    const y = this.forward(x);
    const r = F.relu(y);
    y.dispose();
    return r;
  }

  /** s·B·A [out, in] (a new tensor, no graph). */
  deltaWeight(): Tensor {
    return deltaWeight(this.weight, this.lora_A.weight, this.lora_B.weight, this.lora.r, this.lora.scaling);
  }

  /** W += s·B·A in place (PEFT's merge); a second call does nothing. */
  merge(): void {
    if (this.isMerged) return;
    addDelta(this.weight, this.lora_A.weight, this.lora_B.weight, this.lora.r, this.lora.scaling, 1);
    this.isMerged = true;
  }

  /** W −= s·B·A in place (PEFT's unmerge; equal to the weight before merge up to float rounding). */
  unmerge(): void {
    if (!this.isMerged) return;
    addDelta(this.weight, this.lora_A.weight, this.lora_B.weight, this.lora.r, this.lora.scaling, -1);
    this.isMerged = false;
  }

  /** The wrapped Linear (same weight and bias tensors), for unloading. */
  baseLayer(): Linear {
    return this.#base;
  }
}
