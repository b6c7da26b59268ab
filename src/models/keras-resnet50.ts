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
import { FoldCache, type ConvBn, type ResidualBlock } from './resnet-block.js';
import { runBlock, runStem } from './resnet-run.js';
import type { KerasConvBnSpec, KerasResNetSpec } from './keras-resnet-spec.js';
import type { Pool2dOptions } from '../kernels/pool2d.js';

/** [conv layer name, BN layer name]: pairs are looked up by name at each forward, so a conv replaced in place (applyLora) takes effect. */
type PairNames = [string, string];

interface Parts {
  stem: PairNames;
  pool: Pool2dOptions;
  blocks: { main: PairNames[]; shortcut: PairNames | null }[];
  /** Index of the first block of each residual stage (a stage starts at each projection-shortcut block). */
  stageStarts: number[];
  /** Residual stage (1-based) of each conv / BN layer name; 0 for the stem. */
  stageOfLayer: Map<string, number>;
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
    const stageOfLayer = new Map<string, number>();
    let stage = 0;
    const pair = (p: KerasConvBnSpec): PairNames => {
      const c = p.conv;
      const conv = new Conv2d(rt, c.inChannels, c.filters, c.kernel, { stride: c.stride, padding: c.padding, bias: c.useBias, rng });
      const bn = new BatchNorm2d(rt, p.bn.channels, { eps: p.bn.eps });
      this.attach(c.name, conv);
      this.attach(p.bn.name, bn);
      stageOfLayer.set(c.name, stage);
      stageOfLayer.set(p.bn.name, stage);
      return [c.name, p.bn.name];
    };
    const stemPair = pair(spec.stem);
    const stageStarts: number[] = [];
    const blocks = spec.blocks.map((b, i) => {
      if (b.shortcut || i === 0) {
        stageStarts.push(i);
        stage = stageStarts.length;
      }
      return { main: b.main.map(pair), shortcut: b.shortcut ? pair(b.shortcut) : null };
    });
    const d = spec.dense;
    const fc = new Linear(rt, d.inFeatures, d.units, { bias: d.useBias, rng });
    this.attach(d.name, fc);
    this.parts = { stem: stemPair, pool: { kernel: spec.pool.kernel, stride: spec.pool.stride, padding: spec.pool.padding }, blocks, stageStarts, stageOfLayer, fc };
  }

  /** The conv + BN registered under these names now. */
  private pairOf([c, b]: PairNames): ConvBn {
    const conv: unknown = Reflect.get(this, c);
    const bn: unknown = Reflect.get(this, b);
    if (!(conv instanceof Conv2d) || !(bn instanceof BatchNorm2d)) throw new GraftError(`KerasResNet: '${c}' / '${b}' are no longer a Conv2d and a BatchNorm2d`);
    return { conv, bn };
  }

  private block(i: number): ResidualBlock {
    const b = this.parts.blocks[i]!;
    return { main: b.main.map((p) => this.pairOf(p)), shortcut: b.shortcut ? this.pairOf(b.shortcut) : null };
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
    const fc: unknown = Reflect.get(this, this.arch.dense.name);
    return fc instanceof Linear ? fc : this.parts.fc;
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

  /** Residual stages (4 for ResNet50: Keras stages 2..5 are graft stages 1..4). */
  get numStages(): number {
    return this.parts.stageStarts.length;
  }

  /**
   * Residual stage (1-based) of a module or parameter name ('res5a_branch2a.lora_A' → 4, 'bn_conv1.weight' → 0),
   * or -1 for the head and unknown names.
   */
  stageOf(name: string): number {
    return this.parts.stageOfLayer.get(name.split('.')[0]!) ?? -1;
  }

  private checkStage(stage: number): void {
    if (!Number.isInteger(stage) || stage < 1 || stage > this.numStages) throw new GraftError(`KerasResNet: stage must be 1..${this.numStages}, got ${stage}`);
  }

  /** Run blocks [from, to) on h (h is not disposed). */
  private runBlocks(h: Tensor, from: number, to: number): Tensor {
    let cur = h;
    for (let i = from; i < to; i++) {
      const next = runBlock(cur, this.block(i), this.folds);
      if (cur !== h) cur.dispose();
      cur = next;
    }
    return cur === h ? F.mul(h, 1) : cur;
  }

  /** The activation entering residual stage `stage` (1-based) [N, C, H', W']: the stem and the stages before it. */
  forwardTo(x: Tensor, stage: number): Tensor {
    this.checkStage(stage);
    const h = runStem(x, this.pairOf(this.parts.stem), this.parts.pool, this.folds);
    if (stage === 1) return h;
    const y = this.runBlocks(h, 0, this.parts.stageStarts[stage - 1]!);
    h.dispose();
    return y;
  }

  /** Logits [N, numClasses] from the activation entering `stage` (what forwardTo returns); h is not disposed. */
  forwardFrom(h: Tensor, stage: number): Tensor {
    this.checkStage(stage);
    const y = this.runBlocks(h, this.parts.stageStarts[stage - 1]!, this.parts.blocks.length);
    const pooled = F.globalAvgPool2d(y);
    y.dispose();
    const logits = this.classifier.forward(pooled);
    pooled.dispose();
    return logits;
  }

  /** Pooled backbone features [N, numFeatures]. */
  features(x: Tensor): Tensor {
    let h = runStem(x, this.pairOf(this.parts.stem), this.parts.pool, this.folds);
    for (let i = 0; i < this.parts.blocks.length; i++) {
      const next = runBlock(h, this.block(i), this.folds);
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
    const y = this.classifier.forward(f);
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
