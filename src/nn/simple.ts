// Parameter-free layers mirroring torch.nn: activations, Dropout, Flatten, pooling, Identity, and Sequential.
import type { Tensor } from '../tensor.js';
import type { Pool2dOptions } from '../kernels/pool2d.js';
import * as F from '../autograd/functional.js';
import { Rng, toRng } from '../autograd/random.js';
import { Module, type Layer } from './module.js';

export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class GELU extends Module implements Layer {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.gelu(x, this.approximate);
  }
}

export class Tanh extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

export class Sigmoid extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

/** Returns its input unchanged (the same tensor object). */
export class Identity extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Inverted dropout in training mode, identity (the input object itself) in eval mode. Each call
 * draws a fresh mask seed from `rng` (default: the global generator, see manualSeed).
 */
export class Dropout extends Module implements Layer {
  private readonly rng: Rng;
  constructor(
    readonly p = 0.5,
    opts: { rng?: Rng | number } = {},
  ) {
    super();
    this.rng = toRng(opts.rng);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return F.dropout(x, this.p, true, this.rng.seed());
  }
}

/** Flatten dims startDim..endDim (default 1..-1, as nn.Flatten). */
export class Flatten extends Module implements Layer {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.flatten(x, this.startDim, this.endDim);
  }
}

export class MaxPool2d extends Module implements Layer {
  constructor(readonly opts: Pool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.opts);
  }
}

export class AvgPool2d extends Module implements Layer {
  constructor(readonly opts: Pool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.opts);
  }
}

/** Output size 1 only: [N, C, H, W] -> [N, C, 1, 1]. */
export class AdaptiveAvgPool2d extends Module implements Layer {
  constructor(readonly outputSize: 1 | [1, 1] = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
}

/**
 * Runs its layers in order; children are named "0", "1", ... (torch keys `0.weight`). Each
 * intermediate result is freed once the next layer has consumed it (the graph keeps what
 * backward needs), so only the final output is returned to the caller.
 */
export class Sequential extends Module implements Layer {
  constructor(...layers: (Module & Layer)[]) {
    super();
    layers.forEach((m, i) => Reflect.set(this, String(i), m));
    this.length = layers.length;
  }

  readonly length: number;

  /** Layer i (read from attribute "i", so assigning seq[i] replaces it). */
  at(i: number): Module & Layer {
    const m: unknown = Reflect.get(this, String(i));
    if (!isLayer(m)) throw new RangeError(`Sequential: no layer ${i} (length ${this.length})`);
    return m;
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (let i = 0; i < this.length; i++) {
      const next = this.at(i).forward(h);
      if (h !== x && next !== h) h.dispose();
      h = next;
    }
    return h;
  }
}

function isLayer(m: unknown): m is Module & Layer {
  return m instanceof Module && typeof Reflect.get(m, 'forward') === 'function';
}
