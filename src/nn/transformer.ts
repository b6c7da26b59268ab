// Self-attention and the post-norm transformer encoder layer, with torch.nn.MultiheadAttention /
// TransformerEncoderLayer parameter names (batch_first layout).
import type { Runtime } from '../runtime/runtime.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { Rng, toRng } from '../autograd/random.js';
import { Module } from './module.js';
import { Linear, LayerNorm } from './layers.js';
import { Dropout } from './simple.js';
import { constant, xavierUniform } from './init.js';
import { zeroInto } from '../autograd/accumulate.js';

export interface AttentionCallOpts {
  /** [B, T]: 1 = token, 0 = padding (the inverse of torch's key_padding_mask). */
  mask?: Tensor | null;
  causal?: boolean;
}

/** Dispose every argument (intermediates inside a forward; the graph keeps its own references). */
function free(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

/**
 * Multi-head self-attention on x [B, T, E]: one fused projection in_proj_weight [3E, E] /
 * in_proj_bias [3E] (q, k, v rows in that order, as torch), flash attention, out_proj (Linear E→E).
 * Attention-probability dropout is not supported (the fused kernel never forms the probabilities).
 */
export class MultiheadSelfAttention extends Module {
  in_proj_weight: Tensor;
  in_proj_bias: Tensor | null;
  out_proj: Linear;
  readonly headDim: number;

  constructor(
    rt: Runtime,
    readonly embedDim: number,
    readonly numHeads: number,
    opts: { bias?: boolean; rng?: Rng | number } = {},
  ) {
    super();
    if (embedDim % numHeads) throw new GraftError(`MultiheadSelfAttention: embedDim ${embedDim} is not divisible by numHeads ${numHeads}`);
    this.headDim = embedDim / numHeads;
    const rng = toRng(opts.rng);
    const bias = opts.bias ?? true;
    // torch: xavier_uniform_(in_proj_weight), zero in_proj_bias and out_proj.bias; out_proj.weight keeps Linear's init.
    this.in_proj_weight = this.registerParameter('in_proj_weight', xavierUniform(rt, [3 * embedDim, embedDim], 1, rng));
    this.in_proj_bias = this.registerParameter('in_proj_bias', bias ? constant(rt, [3 * embedDim], 0) : null);
    this.out_proj = new Linear(rt, embedDim, embedDim, { bias, rng });
    if (this.out_proj.bias) zeroInto(this.out_proj.bias);
  }

  forward(x: Tensor, opts: AttentionCallOpts = {}): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.embedDim) {
      throw new ShapeError(`MultiheadSelfAttention: x must be [B, T, ${this.embedDim}], got [${x.shape.join(', ')}]`);
    }
    const [B, T] = x.shape as [number, number, number];
    const H = this.numHeads;
    const D = this.headDim;
    const qkv = F.linear(x, this.in_proj_weight, this.in_proj_bias); // [B, T, 3E]
    const r = F.reshape(qkv, [B, T, 3, H, D]);
    const p = F.permute(r, [2, 0, 3, 1, 4]); // [3, B, H, T, D]
    free(qkv, r);
    const parts = F.split(p, 1, 0); // 3 × [1, B, H, T, D]
    free(p);
    const [q, k, v] = parts.map((t) => F.reshape(t, [B, H, T, D]));
    free(...parts);
    const o = F.scaledDotProductAttention(q!, k!, v!, { mask: opts.mask, causal: opts.causal }); // [B, H, T, D]
    free(q!, k!, v!);
    const ot = F.permute(o, [0, 2, 1, 3]); // [B, T, H, D]
    const merged = F.reshape(ot, [B, T, this.embedDim]);
    free(o, ot);
    const y = this.out_proj.forward(merged);
    free(merged);
    return y;
  }
}

export interface EncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: 'relu' | 'gelu';
  layerNormEps?: number;
  /** Pre-norm (torch's norm_first); default false = post-norm. */
  normFirst?: boolean;
  bias?: boolean;
  rng?: Rng | number;
}

/**
 * torch.nn.TransformerEncoderLayer with batch_first = true. Post-norm:
 *   x = norm1(x + dropout1(self_attn(x)));  x = norm2(x + dropout2(linear2(dropout(act(linear1(x))))))
 * Children: self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2. Unlike torch,
 * `dropout` is not applied to the attention probabilities (the fused attention never forms them).
 * `rng` (an Rng or a seed) draws every initial weight and every dropout seed, so runs reproduce.
 */
export class TransformerEncoderLayer extends Module {
  self_attn: MultiheadSelfAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly activation: 'relu' | 'gelu';
  readonly normFirst: boolean;

  constructor(rt: Runtime, dModel: number, nHead: number, opts: EncoderLayerOptions = {}) {
    super();
    const rng = toRng(opts.rng);
    const ff = opts.dimFeedforward ?? 2048;
    const p = opts.dropout ?? 0.1;
    const eps = opts.layerNormEps ?? 1e-5;
    const bias = opts.bias ?? true;
    this.activation = opts.activation ?? 'relu';
    this.normFirst = opts.normFirst ?? false;
    this.self_attn = new MultiheadSelfAttention(rt, dModel, nHead, { bias, rng });
    this.linear1 = new Linear(rt, dModel, ff, { bias, rng });
    this.dropout = new Dropout(p, { rng });
    this.linear2 = new Linear(rt, ff, dModel, { bias, rng });
    this.norm1 = new LayerNorm(rt, dModel, eps, { bias });
    this.norm2 = new LayerNorm(rt, dModel, eps, { bias });
    this.dropout1 = new Dropout(p, { rng });
    this.dropout2 = new Dropout(p, { rng });
  }

  private attnBlock(x: Tensor, opts: AttentionCallOpts): Tensor {
    const a = this.self_attn.forward(x, opts);
    const d = this.dropout1.forward(a);
    if (d !== a) a.dispose();
    return d;
  }

  private ffBlock(x: Tensor): Tensor {
    const h = this.activation === 'relu' ? this.linear1.forwardRelu(x) : geluOf(this.linear1.forward(x));
    const hd = this.dropout.forward(h);
    if (hd !== h) h.dispose();
    const o = this.linear2.forward(hd);
    hd.dispose();
    const od = this.dropout2.forward(o);
    if (od !== o) o.dispose();
    return od;
  }

  /** x [B, T, dModel] -> same shape. */
  forward(x: Tensor, opts: AttentionCallOpts = {}): Tensor {
    if (this.normFirst) {
      const n1 = this.norm1.forward(x);
      const a = this.attnBlock(n1, opts);
      const h = F.add(x, a);
      free(n1, a);
      const n2 = this.norm2.forward(h);
      const f = this.ffBlock(n2);
      const y = F.add(h, f);
      free(n2, f, h);
      return y;
    }
    const a = this.attnBlock(x, opts);
    const s1 = F.add(x, a);
    a.dispose();
    const h = this.norm1.forward(s1);
    s1.dispose();
    const f = this.ffBlock(h);
    const s2 = F.add(h, f);
    free(h, f);
    const y = this.norm2.forward(s2);
    s2.dispose();
    return y;
  }
}

function geluOf(t: Tensor): Tensor {
  const g = F.gelu(t);
  t.dispose();
  return g;
}
