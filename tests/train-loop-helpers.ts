// Test-only helpers for the trainer tests: a tiny CNN classifier (features + fc) and a Fashion-MNIST preprocessing.
import type { Runtime } from '../src/runtime/runtime.js';
import type { Tensor } from '../src/tensor.js';
import * as F from '../src/autograd/functional.js';
import { Module } from '../src/nn/module.js';
import { BatchNorm2d, Conv2d, Linear } from '../src/nn/layers.js';
import type { ImagePipeline } from '../src/data/image-transforms.js';

/** conv3×3(3→8)/2 → BN → ReLU → conv3×3(8→32)/2 → BN → ReLU → global avg pool → fc. x [N, 3, H, W] -> [N, classes]. */
export class TinyNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  fc: Linear;
  readonly numFeatures = 32;

  constructor(rt: Runtime, classes: number, seed: number) {
    super();
    this.conv1 = new Conv2d(rt, 3, 8, 3, { stride: 2, padding: 1, bias: false, rng: seed });
    this.bn1 = new BatchNorm2d(rt, 8);
    this.conv2 = new Conv2d(rt, 8, 32, 3, { stride: 2, padding: 1, bias: false, rng: seed + 1 });
    this.bn2 = new BatchNorm2d(rt, 32);
    this.fc = new Linear(rt, 32, classes, { rng: seed + 2 });
  }

  features(x: Tensor): Tensor {
    const a = F.relu(this.bn1.forward(this.conv1.forward(x)));
    const b = F.relu(this.bn2.forward(this.conv2.forward(a)));
    return F.globalAvgPool2d(b);
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.features(x));
  }
}

/** Gray 28×28 -> RGB 16×16, torchvision normalisation. */
export const SMALL_PREPROCESS: ImagePipeline = { rgb: true, resize: 16, normalize: 'torchvision' };
