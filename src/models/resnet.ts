// torchvision's ResNet family (resnet18/34/50/101/152): BasicBlock / Bottleneck v1.5, checkpoint keys exactly torchvision's.
//
// Stem conv1 7×7/2 (no bias) → bn1 → ReLU → 3×3/2 max pool; layer1..layer4 of residual blocks (the first
// block of layer2..4 has stride 2, on the 3×3 conv in Bottleneck, and a 1×1 conv + BN `downsample`); global
// average pool → fc. BatchNorm eps 1e-5. Eval mode folds each BN into its conv (see resnet-block.ts);
// training mode runs through autograd with batch statistics.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import type { Rng } from '../autograd/random.js';
import { Module, type Layer, type LoadResult, type StateDictLike } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers.js';
import { Sequential } from '../nn/simple.js';
import { FoldCache, type ConvBn, type ResidualBlock } from './resnet-block.js';
import { runBlock, runStem } from './resnet-run.js';

export type ResNetDepth = 18 | 34 | 50 | 101 | 152;
export type BlockKind = 'basic' | 'bottleneck';

/** Block type and blocks per stage of each torchvision depth. */
export const RESNET_CONFIGS: Record<ResNetDepth, { block: BlockKind; layers: [number, number, number, number] }> = {
  18: { block: 'basic', layers: [2, 2, 2, 2] },
  34: { block: 'basic', layers: [3, 4, 6, 3] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

export interface ResNetOptions {
  /** Classes of the fc head (default 1000). */
  numClasses?: number;
  /** Generator for the random initial weights (default: the global one, see manualSeed). */
  rng?: Rng;
}

const EPS = 1e-5;
const POOL = { kernel: 3, stride: 2, padding: 1 } as const;

/** Output channels of a block = width · expansion. */
const expansion = (b: BlockKind): number => (b === 'basic' ? 1 : 4);

/** Two 3×3 convs (ResNet-18/34). Keys conv1, bn1, conv2, bn2, downsample.{0,1}. */
export class BasicBlock extends Module implements Layer {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Sequential | null;

  constructor(rt: Runtime, inPlanes: number, planes: number, stride: number, private readonly folds: FoldCache, rng?: Rng) {
    super();
    this.conv1 = new Conv2d(rt, inPlanes, planes, 3, { stride, padding: 1, bias: false, rng });
    this.bn1 = new BatchNorm2d(rt, planes, { eps: EPS });
    this.conv2 = new Conv2d(rt, planes, planes, 3, { padding: 1, bias: false, rng });
    this.bn2 = new BatchNorm2d(rt, planes, { eps: EPS });
    this.downsample = makeDownsample(rt, inPlanes, planes, stride, rng);
  }

  /** The pairs as registered now (a conv replaced in place, e.g. by applyLora, takes effect). */
  private get blk(): ResidualBlock {
    return { main: [{ conv: this.conv1, bn: this.bn1 }, { conv: this.conv2, bn: this.bn2 }], shortcut: shortcutPair(this.downsample) };
  }

  forward(x: Tensor): Tensor {
    return runBlock(x, this.blk, this.folds);
  }
}

/** 1×1 reduce → 3×3 (stride here: v1.5) → 1×1 expand ×4 (ResNet-50/101/152). Keys conv1..3, bn1..3, downsample.{0,1}. */
export class Bottleneck extends Module implements Layer {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  downsample: Sequential | null;

  constructor(rt: Runtime, inPlanes: number, planes: number, stride: number, private readonly folds: FoldCache, rng?: Rng) {
    super();
    const out = planes * 4;
    this.conv1 = new Conv2d(rt, inPlanes, planes, 1, { bias: false, rng });
    this.bn1 = new BatchNorm2d(rt, planes, { eps: EPS });
    this.conv2 = new Conv2d(rt, planes, planes, 3, { stride, padding: 1, bias: false, rng });
    this.bn2 = new BatchNorm2d(rt, planes, { eps: EPS });
    this.conv3 = new Conv2d(rt, planes, out, 1, { bias: false, rng });
    this.bn3 = new BatchNorm2d(rt, out, { eps: EPS });
    this.downsample = makeDownsample(rt, inPlanes, out, stride, rng);
  }

  /** The pairs as registered now (a conv replaced in place, e.g. by applyLora, takes effect). */
  private get blk(): ResidualBlock {
    return {
      main: [
        { conv: this.conv1, bn: this.bn1 },
        { conv: this.conv2, bn: this.bn2 },
        { conv: this.conv3, bn: this.bn3 },
      ],
      shortcut: shortcutPair(this.downsample),
    };
  }

  forward(x: Tensor): Tensor {
    return runBlock(x, this.blk, this.folds);
  }
}

/** 1×1 conv (stride) + BN when the block changes resolution or width, else null (identity shortcut). */
function makeDownsample(rt: Runtime, inPlanes: number, out: number, stride: number, rng?: Rng): Sequential | null {
  if (stride === 1 && inPlanes === out) return null;
  return new Sequential(new Conv2d(rt, inPlanes, out, 1, { stride, bias: false, rng }), new BatchNorm2d(rt, out, { eps: EPS }));
}

function shortcutPair(ds: Sequential | null): ConvBn | null {
  if (!ds) return null;
  const conv = ds.at(0);
  const bn = ds.at(1);
  if (!(conv instanceof Conv2d) || !(bn instanceof BatchNorm2d)) throw new GraftError('downsample must be Sequential(Conv2d, BatchNorm2d)');
  return { conv, bn };
}

/** torchvision.models.ResNet. forward(x [N, 3, H, W]) -> logits [N, numClasses]. */
export class ResNet extends Module implements Layer {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  fc: Linear;
  readonly depth: ResNetDepth;
  /** Channels of the pooled features fed to fc (512 or 2048). */
  readonly numFeatures: number;
  private readonly folds = new FoldCache();

  constructor(rt: Runtime, depth: ResNetDepth, opts: ResNetOptions = {}) {
    super();
    const cfg = RESNET_CONFIGS[depth];
    if (!cfg) throw new GraftError(`ResNet: unsupported depth ${String(depth)} (known: ${Object.keys(RESNET_CONFIGS).join(', ')})`);
    const numClasses = opts.numClasses ?? 1000;
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new GraftError(`ResNet: numClasses must be a positive integer, got ${numClasses}`);
    this.depth = depth;
    const rng = opts.rng;
    this.conv1 = new Conv2d(rt, 3, 64, 7, { stride: 2, padding: 3, bias: false, rng });
    this.bn1 = new BatchNorm2d(rt, 64, { eps: EPS });
    let inPlanes = 64;
    const stage = (planes: number, blocks: number, stride: number): Sequential => {
      const list: (BasicBlock | Bottleneck)[] = [];
      for (let i = 0; i < blocks; i++) {
        const s = i === 0 ? stride : 1;
        list.push(cfg.block === 'basic' ? new BasicBlock(rt, inPlanes, planes, s, this.folds, rng) : new Bottleneck(rt, inPlanes, planes, s, this.folds, rng));
        inPlanes = planes * expansion(cfg.block);
      }
      return new Sequential(...list);
    };
    this.layer1 = stage(64, cfg.layers[0], 1);
    this.layer2 = stage(128, cfg.layers[1], 2);
    this.layer3 = stage(256, cfg.layers[2], 2);
    this.layer4 = stage(512, cfg.layers[3], 2);
    this.numFeatures = inPlanes;
    this.fc = new Linear(rt, inPlanes, numClasses, { rng });
  }

  /** Classes of the fc head. */
  get numClasses(): number {
    return this.fc.outFeatures;
  }

  /** Replace fc with a freshly initialised [numClasses, numFeatures] head (transfer learning); the old one is freed. */
  resetClassifier(numClasses: number, opts: { rng?: Rng } = {}): Linear {
    const old = this.fc;
    this.fc = new Linear(old.weight.rt, this.numFeatures, numClasses, { rng: opts.rng });
    old.dispose();
    return this.fc;
  }

  /** Residual stages layer1..layer4. */
  get numStages(): number {
    return 4;
  }

  /** Residual stage (1-based) of a module or parameter name ('layer4.0.conv1' → 4, 'bn1.weight' → 0), or -1 for fc and unknown names. */
  stageOf(name: string): number {
    const m = /^layer([1-4])(\.|$)/.exec(name);
    if (m) return Number(m[1]);
    return /^(conv1|bn1)(\.|$)/.test(name) ? 0 : -1;
  }

  private stages(): Sequential[] {
    return [this.layer1, this.layer2, this.layer3, this.layer4];
  }

  private checkStage(stage: number): void {
    if (!Number.isInteger(stage) || stage < 1 || stage > 4) throw new GraftError(`ResNet: stage must be 1..4, got ${stage}`);
  }

  /** The activation entering layer`stage` [N, C, H', W']: the stem and the layers before it. */
  forwardTo(x: Tensor, stage: number): Tensor {
    this.checkStage(stage);
    let h = runStem(x, { conv: this.conv1, bn: this.bn1 }, POOL, this.folds);
    for (const layer of this.stages().slice(0, stage - 1)) {
      const next = layer.forward(h);
      h.dispose();
      h = next;
    }
    return h;
  }

  /** Logits [N, numClasses] from the activation entering layer`stage` (what forwardTo returns); h is not disposed. */
  forwardFrom(h: Tensor, stage: number): Tensor {
    this.checkStage(stage);
    let cur = h;
    for (const layer of this.stages().slice(stage - 1)) {
      const next = layer.forward(cur);
      if (cur !== h) cur.dispose();
      cur = next;
    }
    const pooled = F.globalAvgPool2d(cur);
    cur.dispose();
    const y = this.fc.forward(pooled);
    pooled.dispose();
    return y;
  }

  /** Pooled backbone features [N, numFeatures] (what fc sees). */
  features(x: Tensor): Tensor {
    let h = runStem(x, { conv: this.conv1, bn: this.bn1 }, POOL, this.folds);
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      const next = layer.forward(h);
      h.dispose();
      h = next;
    }
    const pooled = F.globalAvgPool2d(h);
    h.dispose();
    return pooled;
  }

  /** Logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const y = this.fc.forward(f);
    f.dispose();
    return y;
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

export const resnet18 = (rt: Runtime, opts?: ResNetOptions): ResNet => new ResNet(rt, 18, opts);
export const resnet34 = (rt: Runtime, opts?: ResNetOptions): ResNet => new ResNet(rt, 34, opts);
export const resnet50 = (rt: Runtime, opts?: ResNetOptions): ResNet => new ResNet(rt, 50, opts);
export const resnet101 = (rt: Runtime, opts?: ResNetOptions): ResNet => new ResNet(rt, 101, opts);
export const resnet152 = (rt: Runtime, opts?: ResNetOptions): ResNet => new ResNet(rt, 152, opts);

/**
 * Every torchvision state-dict key of resnet{depth} with its shape, in torchvision's order (without
 * num_batches_tracked), computed without a GPU: what `graft convert --from torchvision` validates against.
 */
export function torchvisionResnetShapes(depth: ResNetDepth, numClasses = 1000): Map<string, number[]> {
  const cfg = RESNET_CONFIGS[depth];
  if (!cfg) throw new GraftError(`unsupported ResNet depth ${String(depth)}`);
  const m = new Map<string, number[]>();
  const conv = (k: string, o: number, i: number, r: number) => m.set(`${k}.weight`, [o, i, r, r]);
  const bn = (k: string, c: number) => {
    for (const s of ['weight', 'bias', 'running_mean', 'running_var']) m.set(`${k}.${s}`, [c]);
  };
  conv('conv1', 64, 3, 7);
  bn('bn1', 64);
  let inPlanes = 64;
  [64, 128, 256, 512].forEach((planes, si) => {
    for (let b = 0; b < cfg.layers[si]!; b++) {
      const p = `layer${si + 1}.${b}`;
      const stride = b === 0 && si > 0 ? 2 : 1;
      const out = planes * expansion(cfg.block);
      if (cfg.block === 'basic') {
        conv(`${p}.conv1`, planes, inPlanes, 3);
        bn(`${p}.bn1`, planes);
        conv(`${p}.conv2`, planes, planes, 3);
        bn(`${p}.bn2`, planes);
      } else {
        conv(`${p}.conv1`, planes, inPlanes, 1);
        bn(`${p}.bn1`, planes);
        conv(`${p}.conv2`, planes, planes, 3);
        bn(`${p}.bn2`, planes);
        conv(`${p}.conv3`, out, planes, 1);
        bn(`${p}.bn3`, out);
      }
      if (stride !== 1 || inPlanes !== out) {
        conv(`${p}.downsample.0`, out, inPlanes, 1);
        bn(`${p}.downsample.1`, out);
      }
      inPlanes = out;
    }
  });
  m.set('fc.weight', [numClasses, inPlanes]);
  m.set('fc.bias', [numClasses]);
  return m;
}
