// The Keras/Caffe ResNet v1 (Keras ResNet50(weights='imagenet') and kin) as a graft Module built from a parsed topology.
//
// Differences from torchvision's ResNet: stride 2 on the first 1×1 conv (branch2a) of a downsampling block,
// a bias on every conv, BatchNorm eps 1e-3, and the head's softmax. Parameters are named after the Keras
// layers with PyTorch suffixes: `res2a_branch2a.weight` [out, in, kh, kw] (OIHW), `res2a_branch2a.bias`,
// `bn2a_branch2a.{weight,bias,running_mean,running_var}` (gamma, beta, moving mean/variance), `fc1000.weight`
// [out, in], `fc1000.bias`. Eval mode folds every BN into its conv (resnet-block.ts).
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import type { Rng } from '../autograd/random.js';
import { Module, type Layer, type LoadResult, type StateDictLike } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers.js';
import { FoldCache, residualBlock, stem, type ConvBn, type ResidualBlock } from './resnet-block.js';
import type { KerasConvBnSpec, KerasResNetSpec } from './keras-resnet-spec.js';
import type { Pool2dOptions } from '../kernels/pool2d.js';

interface Parts {
  stem: ConvBn;
  pool: Pool2dOptions;
  blocks: ResidualBlock[];
  fc: Linear;
}

/** forward(x [N, C, H, W], caffe-normalised BGR) -> logits [N, units]; probabilities() applies the softmax. */
export class KerasResNet extends Module implements Layer {
  private readonly folds = new FoldCache();
  private readonly parts: Parts;
  private arch: KerasResNetSpec;

  constructor(rt: Runtime, spec: KerasResNetSpec, opts: { rng?: Rng } = {}) {
    super();
    this.arch = spec;
    const rng = opts.rng;
    const pair = (p: KerasConvBnSpec): ConvBn => {
      const c = p.conv;
      const conv = new Conv2d(rt, c.inChannels, c.filters, c.kernel, { stride: c.stride, padding: c.padding, bias: c.useBias, rng });
      const bn = new BatchNorm2d(rt, p.bn.channels, { eps: p.bn.eps });
      this.attach(c.name, conv);
      this.attach(p.bn.name, bn);
      return { conv, bn };
    };
    const stemPair = pair(spec.stem);
    const blocks = spec.blocks.map((b) => ({ main: b.main.map(pair), shortcut: b.shortcut ? pair(b.shortcut) : null }));
    const d = spec.dense;
    const fc = new Linear(rt, d.inFeatures, d.units, { bias: d.useBias, rng });
    this.attach(d.name, fc);
    this.parts = { stem: stemPair, pool: { kernel: spec.pool.kernel, stride: spec.pool.stride, padding: spec.pool.padding }, blocks, fc };
  }

  /** Register a layer under its Keras name (its parameters become `name.weight`, ...). */
  private attach(name: string, m: Module): void {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new GraftError(`KerasResNet: layer name '${name}' cannot be a parameter prefix`);
    if (name in this) throw new GraftError(`KerasResNet: layer name '${name}' clashes with a KerasResNet property or another layer`);
    Reflect.set(this, name, m);
  }

  /** The architecture (layer names, channels, strides, eps, head). */
  get spec(): KerasResNetSpec {
    return this.arch;
  }

  /** Classes of the head. */
  get numClasses(): number {
    return this.arch.dense.units;
  }

  /** Channels of the pooled features (2048 for ResNet50). */
  get numFeatures(): number {
    return this.arch.dense.inFeatures;
  }

  /** The classifier layer (registered as `spec.dense.name`, e.g. fc1000). */
  get classifier(): Linear {
    return this.parts.fc;
  }

  /**
   * Replace the classifier with a freshly initialised [numClasses, numFeatures] layer under the same name
   * (transfer learning); the old one is freed. The head keeps its activation (softmax in probabilities()).
   */
  resetClassifier(numClasses: number, opts: { rng?: Rng } = {}): Linear {
    const d = this.arch.dense;
    const old = this.parts.fc;
    const fc = new Linear(old.weight.rt, d.inFeatures, numClasses, { bias: d.useBias, rng: opts.rng });
    Reflect.set(this, d.name, fc);
    this.parts.fc = fc;
    this.arch = { ...this.arch, dense: { ...d, units: numClasses } };
    old.dispose();
    return fc;
  }

  /** Pooled backbone features [N, numFeatures]. */
  features(x: Tensor): Tensor {
    const { stem: s, pool, blocks } = this.parts;
    let h = stem(x, s, pool, this.folds);
    for (const b of blocks) {
      const next = residualBlock(h, b, this.folds);
      h.dispose();
      h = next;
    }
    const pooled = F.globalAvgPool2d(h);
    h.dispose();
    return pooled;
  }

  /** Logits [N, numClasses] (before the Keras model's softmax). */
  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const y = this.parts.fc.forward(f);
    f.dispose();
    return y;
  }

  /** What the Keras model outputs: softmax(logits) (or the logits when its head is linear). */
  probabilities(x: Tensor): Tensor {
    const logits = this.forward(x);
    if (this.arch.dense.activation !== 'softmax') return logits;
    const p = F.softmax(logits, -1);
    logits.dispose();
    return p;
  }

  /** Drop the folded inference weights (call after writing parameter data by hand). */
  invalidateFolds(): void {
    this.folds.clear();
  }

  override train(mode = true): this {
    this.folds?.clear();
    return super.train(mode);
  }

  override loadStateDict(dict: StateDictLike, opts: { strict?: boolean } = {}): LoadResult {
    this.folds.clear();
    return super.loadStateDict(dict, opts);
  }

  override dispose(): void {
    this.folds.clear();
    super.dispose();
  }
}
