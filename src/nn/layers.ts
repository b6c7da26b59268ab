// Basic layers mirroring torch.nn: Linear, Conv2d, BatchNorm2d, LayerNorm, Embedding (checkpoint-compatible names).
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import type { Pair } from '../kernels/conv2d-backward.js';
import * as F from '../autograd/functional.js';
import { Rng, toRng } from '../autograd/random.js';
import { Module, type Layer } from './module.js';
import { biasUniform, constant, kaimingUniform } from './init.js';

/** y = x·Wᵀ + b. weight [out, in], bias [out]; kaiming-uniform(a=√5) weight, uniform(±1/√in) bias. */
export class Linear extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;

  constructor(
    rt: Runtime,
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; rng?: Rng | number } = {},
  ) {
    super();
    const rng = toRng(opts.rng);
    this.weight = this.registerParameter('weight', kaimingUniform(rt, [outFeatures, inFeatures], Math.sqrt(5), rng));
    this.bias = this.registerParameter('bias', opts.bias === false ? null : biasUniform(rt, outFeatures, inFeatures, rng));
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }

  /** linear + relu in one kernel (what Sequential(Linear, ReLU) would compute). */
  forwardRelu(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias, 'relu');
  }
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  rng?: Rng | number;
}

/** NCHW convolution. weight [out, in/groups, kh, kw], bias [out]; torch's default init. */
export class Conv2d extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly opts: F.Conv2dOpts;

  constructor(rt: Runtime, inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new GraftError(`Conv2d: groups ${groups} must divide in ${inChannels} and out ${outChannels} channels`);
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const rng = toRng(opts.rng);
    const shape = [outChannels, inChannels / groups, kh, kw];
    this.weight = this.registerParameter('weight', kaimingUniform(rt, shape, Math.sqrt(5), rng));
    this.bias = this.registerParameter('bias', opts.bias === false ? null : biasUniform(rt, outChannels, (inChannels / groups) * kh * kw, rng));
    this.opts = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, this.opts);
  }

  /** conv + bias + relu in one kernel. */
  forwardRelu(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { ...this.opts, activation: 'relu' });
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * Batch norm over C of x [N, C, H, W]: batch statistics in training (running stats updated),
 * running statistics in eval. weight/bias [C] (ones/zeros), buffers running_mean/running_var.
 */
export class BatchNorm2d extends Module implements Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  running_mean: Tensor | null;
  running_var: Tensor | null;
  readonly eps: number;
  readonly momentum: number;

  constructor(rt: Runtime, readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    const affine = opts.affine ?? true;
    const track = opts.trackRunningStats ?? true;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = this.registerParameter('weight', affine ? constant(rt, [numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', affine ? constant(rt, [numFeatures], 0) : null);
    this.running_mean = this.registerBuffer('running_mean', track ? constant(rt, [numFeatures], 0) : null);
    this.running_var = this.registerBuffer('running_var', track ? constant(rt, [numFeatures], 1) : null);
  }

  forward(x: Tensor): Tensor {
    return F.batchNorm2d(x, this.running_mean, this.running_var, this.weight, this.bias, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }

  /** batch norm + relu (fused into one kernel in eval mode). */
  forwardRelu(x: Tensor): Tensor {
    return F.batchNorm2d(x, this.running_mean, this.running_var, this.weight, this.bias, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
      activation: 'relu',
    });
  }
}

/** Layer norm over the trailing normalizedShape dims; weight/bias ones/zeros. */
export class LayerNorm extends Module implements Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];

  constructor(rt: Runtime, normalizedShape: number | number[], readonly eps = 1e-5, opts: { elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const affine = opts.elementwiseAffine ?? true;
    this.weight = this.registerParameter('weight', affine ? constant(rt, this.normalizedShape, 1) : null);
    this.bias = this.registerParameter('bias', affine && opts.bias !== false ? constant(rt, this.normalizedShape, 0) : null);
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

/** Lookup table weight [num, dim] ~ N(0, 1); the paddingIdx row starts at zero and gets no gradient. */
export class Embedding extends Module {
  weight: Tensor;
  readonly paddingIdx: number | undefined;

  constructor(
    rt: Runtime,
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { paddingIdx?: number; rng?: Rng | number } = {},
  ) {
    super();
    const rng = toRng(opts.rng);
    const p = opts.paddingIdx;
    if (p !== undefined && !(Number.isInteger(p) && p >= 0 && p < numEmbeddings)) {
      throw new GraftError(`Embedding: paddingIdx ${p} is outside [0, ${numEmbeddings})`);
    }
    this.paddingIdx = p;
    const data = new Float32Array(numEmbeddings * embeddingDim);
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    if (p !== undefined) data.fill(0, p * embeddingDim, (p + 1) * embeddingDim);
    this.weight = this.registerParameter('weight', Tensor.from(rt, data, [numEmbeddings, embeddingDim]));
  }

  /** ids: i32, any shape -> [...ids, dim]. */
  forward(ids: Tensor): Tensor {
    return F.embedding(ids, this.weight, this.paddingIdx);
  }
}
