// Small trainable models (MLP, SmallCNN, TinyEncoder) built from graft.nn with PyTorch key names, for training tests and `graft bench train-step`.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { Rng, toRng } from '../autograd/random.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Embedding, Linear } from '../nn/layers.js';
import { TransformerEncoderLayer } from '../nn/transformer.js';

/** Dispose intermediates inside a forward (the autograd graph keeps what backward needs). */
function free(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

/**
 * Multi-layer perceptron: Linear → ReLU → … → Linear, keys `layers.<i>.weight` / `layers.<i>.bias`
 * (as a torch ModuleList named `layers`). sizes = [in, hidden…, out]; x [B, in] -> logits [B, out].
 */
export class MLP extends Module {
  layers: Linear[];

  constructor(rt: Runtime, readonly sizes: readonly number[], opts: { rng?: Rng | number } = {}) {
    super();
    if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
      throw new GraftError(`MLP: sizes must be at least [in, out] positive integers, got [${sizes.join(', ')}]`);
    }
    const rng = toRng(opts.rng);
    this.layers = sizes.slice(1).map((out, i) => new Linear(rt, sizes[i]!, out, { rng }));
  }

  forward(x: Tensor): Tensor {
    let h = x;
    this.layers.forEach((l, i) => {
      const next = i < this.layers.length - 1 ? l.forwardRelu(h) : l.forward(h); // linear + relu in one kernel
      if (h !== x) h.dispose();
      h = next;
    });
    return h;
  }
}

export interface SmallCNNOptions {
  inChannels?: number;
  /** Conv channels (default 8). */
  channels?: number;
  /** Input height = width (default 16; must be even). */
  imageSize?: number;
  classes?: number;
  rng?: Rng | number;
}

/**
 * scripts/fixtures/train_parity.py's SmallCNN: conv 3×3 pad 1 → BatchNorm2d → ReLU → max-pool 2 →
 * flatten → Linear. Keys conv.*, bn.* (running stats included), fc.*. x [B, 3, 16, 16] -> [B, 10].
 */
export class SmallCNN extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  fc: Linear;
  readonly inChannels: number;
  readonly imageSize: number;

  constructor(rt: Runtime, opts: SmallCNNOptions = {}) {
    super();
    const rng = toRng(opts.rng);
    const c = opts.channels ?? 8;
    this.inChannels = opts.inChannels ?? 3;
    this.imageSize = opts.imageSize ?? 16;
    if (this.imageSize % 2 || this.imageSize < 2) throw new GraftError(`SmallCNN: imageSize must be even and >= 2, got ${this.imageSize}`);
    const half = this.imageSize / 2;
    this.conv = new Conv2d(rt, this.inChannels, c, 3, { padding: 1, rng });
    this.bn = new BatchNorm2d(rt, c);
    this.fc = new Linear(rt, c * half * half, opts.classes ?? 10, { rng });
  }

  forward(x: Tensor): Tensor {
    const s = this.imageSize;
    if (x.rank !== 4 || x.shape[1] !== this.inChannels || x.shape[2] !== s || x.shape[3] !== s) {
      throw new ShapeError(`SmallCNN: x must be [B, ${this.inChannels}, ${s}, ${s}], got [${x.shape.join(', ')}]`);
    }
    const c = this.conv.forward(x); // [B, C, s, s]
    const b = this.bn.forward(c);
    const r = F.relu(b);
    const p = F.maxPool2d(r, { kernel: 2 }); // [B, C, s/2, s/2]
    const f = F.flatten(p, 1); // [B, C·s²/4]
    free(c, b, r, p);
    const y = this.fc.forward(f);
    f.dispose();
    return y;
  }
}

export interface TinyEncoderOptions {
  vocab?: number;
  dModel?: number;
  heads?: number;
  dimFeedforward?: number;
  layers?: number;
  maxLen?: number;
  classes?: number;
  rng?: Rng | number;
}

/**
 * scripts/fixtures/train_parity.py's TinyEncoder: token + position embeddings → post-norm
 * TransformerEncoderLayers (batch_first, ReLU, no dropout) → Linear head on position 0.
 * Keys tok.weight, pos.weight, layers.<i>.self_attn.in_proj_weight, …, head.*.
 */
export class TinyEncoder extends Module {
  tok: Embedding;
  pos: Embedding;
  layers: TransformerEncoderLayer[];
  head: Linear;
  readonly dModel: number;

  constructor(rt: Runtime, opts: TinyEncoderOptions = {}) {
    super();
    const rng = toRng(opts.rng);
    const d = (this.dModel = opts.dModel ?? 32);
    this.tok = new Embedding(rt, opts.vocab ?? 50, d, { rng });
    this.pos = new Embedding(rt, opts.maxLen ?? 16, d, { rng });
    this.layers = Array.from(
      { length: opts.layers ?? 2 },
      () => new TransformerEncoderLayer(rt, d, opts.heads ?? 4, { dimFeedforward: opts.dimFeedforward ?? 64, dropout: 0, activation: 'relu', rng }),
    );
    this.head = new Linear(rt, d, opts.classes ?? 3, { rng });
  }

  /** ids i32 [B, T], mask f32 [B, T] (1 token, 0 padding; torch's key padding mask is mask == 0) -> logits [B, classes]. */
  forward(ids: Tensor, mask: Tensor | null = null): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'i32') throw new ShapeError(`TinyEncoder: ids must be i32 [B, T], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    const [B, T] = ids.shape as [number, number];
    const D = this.dModel;
    const maxLen = this.pos.numEmbeddings;
    if (T > maxLen) throw new ShapeError(`TinyEncoder: sequence length ${T} of ids [${ids.shape.join(', ')}] exceeds the ${maxLen} positions of pos.weight [${maxLen}, ${D}]`);
    const tok = this.tok.forward(ids); // [B, T, D]
    const pos = F.slice(this.pos.weight, [0, 0], [T, D]); // pos(arange(T)) = pos.weight[:T], [T, D]
    let h = F.add(tok, pos); // broadcast over B
    free(tok, pos);
    for (const layer of this.layers) {
      const next = layer.forward(h, { mask });
      h.dispose();
      h = next;
    }
    const first = F.slice(h, [0, 0, 0], [B, 1, D]); // h[:, 0]
    const flat = F.reshape(first, [B, D]);
    free(h, first);
    const y = this.head.forward(flat);
    flat.dispose();
    return y;
  }
}
