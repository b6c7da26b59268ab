// BERT building blocks with Hugging Face's module names: embeddings, self-attention, feed-forward, encoder layer, pooler.
//
// Inference (no graph recorded) uses fused kernels when their switches are on (src/runtime/fusion.ts):
// matmul + bias + GELU epilogue ('matmul-epilogue'), layerNormResidual ('layernorm-residual') and the fused
// attention kernel ('attention'). Training runs through autograd (linear, gelu, add, layerNorm,
// scaledDotProductAttention); there the attention, cross-entropy and ReLU-epilogue switches change the
// kernels; a training GELU epilogue would need the matmul to also write its pre-activation (not built).
import type { Runtime } from '../runtime/runtime.js';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { isGradEnabled } from '../autograd/grad-mode.js';
import { Rng } from '../autograd/random.js';
import { matmul } from '../kernels/matmul.js';
import { layerNormResidual } from '../kernels/layernorm.js';
import { fusionEnabled } from '../runtime/fusion.js';
import { Module } from '../nn/module.js';
import { Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { Dropout } from '../nn/simple.js';
import type { BertActivation, BertConfig } from './bert-config.js';

/** Draws nothing (all zeros): modules built this way get their values from a checkpoint or initBertWeights. */
export class ZeroRng extends Rng {
  override next(): number {
    return 0;
  }
  override uniform(): number {
    return 0;
  }
  override normal(): number {
    return 0;
  }
}

export interface BertBuildOptions {
  /** Generator for dropout seeds (default: the global one). */
  rng?: Rng;
  /**
   * Training only: apply attention-probability dropout (attention_probs_dropout_prob) exactly as HF, with
   * an unfused softmax(QKᵀ)·V path. Default false: the fused attention kernel, which has no probability
   * dropout (hidden dropout is always applied in training).
   */
  exactAttentionDropout?: boolean;
}

/** Dispose intermediates (the autograd graph keeps its own references). */
export function free(...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

/** True when an op on these tensors records an autograd graph. */
export function recording(...ts: (Tensor | null | undefined)[]): boolean {
  return isGradEnabled() && ts.some((t) => t?.requiresGrad === true);
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** LayerNorm(x + residual): one fused kernel when no graph is recorded and fusion 'layernorm-residual' is on. */
export function addLayerNorm(x: Tensor, residual: Tensor, ln: LayerNorm): Tensor {
  if (fusionEnabled('layernorm-residual') && !recording(x, residual, ln.weight, ln.bias)) return layerNormResidual(x, residual, ln.weight, ln.bias, ln.eps);
  const s = F.add(x, residual);
  const y = ln.forward(s);
  s.dispose();
  return y;
}

/** act(x·Wᵀ + b): GELU (erf, no graph recorded) and ReLU fused into the matmul epilogue when fusion 'matmul-epilogue' is on. */
export function linearAct(x: Tensor, lin: Linear, act: BertActivation): Tensor {
  if (act === 'relu') return lin.forwardRelu(x); // F.linear consults the switch
  // Fused matmul+GELU only for a plain Linear: subclasses (e.g. LoRA wrappers) must run their own forward.
  if (act === 'gelu' && lin.constructor === Linear && fusionEnabled('matmul-epilogue') && !recording(x, lin.weight, lin.bias)) {
    return matmul(x, lin.weight, { transB: true, bias: lin.bias ?? undefined, activation: 'gelu' });
  }
  const h = lin.forward(x);
  const y = F.gelu(h, act === 'gelu' ? 'none' : 'tanh');
  h.dispose();
  return y;
}

/** dropout(x) that frees x when a new tensor was made (identity in eval mode). */
function dropFree(d: Dropout, x: Tensor): Tensor {
  const y = d.forward(x);
  if (y !== x) x.dispose();
  return y;
}

/** word + position + token-type embeddings → LayerNorm → dropout. Keys embeddings.{word,position,token_type}_embeddings, LayerNorm. */
export class BertEmbeddings extends Module {
  word_embeddings: Embedding;
  position_embeddings: Embedding;
  token_type_embeddings: Embedding;
  LayerNorm: LayerNorm;
  dropout: Dropout;

  constructor(rt: Runtime, readonly config: BertConfig, o: BertBuildOptions = {}) {
    super();
    const z = new ZeroRng();
    const H = config.hiddenSize;
    this.word_embeddings = new Embedding(rt, config.vocabSize, H, { paddingIdx: config.padTokenId, rng: z });
    this.position_embeddings = new Embedding(rt, config.maxPositionEmbeddings, H, { rng: z });
    this.token_type_embeddings = new Embedding(rt, config.typeVocabSize, H, { rng: z });
    this.LayerNorm = new LayerNorm(rt, H, config.layerNormEps);
    this.dropout = new Dropout(config.hiddenDropoutProb, { rng: o.rng });
  }

  /** inputIds, tokenTypeIds: i32 [B, T] (token types default to 0) -> [B, T, H]. Positions are 0..T-1. */
  forward(inputIds: Tensor, tokenTypeIds: Tensor | null = null): Tensor {
    if (inputIds.dtype !== 'i32' || inputIds.rank !== 2) throw new ShapeError(`BertEmbeddings: inputIds must be i32 [B, T], got ${inputIds.dtype} ${fmt(inputIds)}`);
    const [B, T] = inputIds.shape as [number, number];
    if (T > this.config.maxPositionEmbeddings) {
      throw new ShapeError(`BertEmbeddings: sequence length ${T} of inputIds ${fmt(inputIds)} is over max_position_embeddings ${this.config.maxPositionEmbeddings}`);
    }
    if (tokenTypeIds && (tokenTypeIds.dtype !== 'i32' || tokenTypeIds.rank !== 2 || tokenTypeIds.shape[0] !== B || tokenTypeIds.shape[1] !== T)) {
      throw new ShapeError(`BertEmbeddings: tokenTypeIds must be i32 ${fmt(inputIds)} like inputIds, got ${tokenTypeIds.dtype} ${fmt(tokenTypeIds)}`);
    }
    const rt = inputIds.rt;
    const positions = Tensor.from(rt, Int32Array.from({ length: T }, (_, i) => i), [T], 'i32');
    const types = tokenTypeIds ?? Tensor.zeros(rt, [B, T], 'i32');
    const w = this.word_embeddings.forward(inputIds); // [B, T, H]
    const p = this.position_embeddings.forward(positions); // [T, H]
    const t = this.token_type_embeddings.forward(types); // [B, T, H]
    const wp = F.add(w, p); // broadcast over B
    const e = addLayerNorm(wp, t, this.LayerNorm);
    free(w, p, t, wp, positions, types === tokenTypeIds ? null : types);
    return dropFree(this.dropout, e);
  }
}

/** Q, K, V projections and scaled dot-product attention over heads. Keys attention.self.{query,key,value}. */
export class BertSelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  dropout: Dropout;
  readonly numHeads: number;
  readonly headDim: number;
  private readonly exact: boolean;

  constructor(rt: Runtime, config: BertConfig, o: BertBuildOptions = {}) {
    super();
    const z = new ZeroRng();
    const H = config.hiddenSize;
    this.query = new Linear(rt, H, H, { rng: z });
    this.key = new Linear(rt, H, H, { rng: z });
    this.value = new Linear(rt, H, H, { rng: z });
    this.dropout = new Dropout(config.attentionProbsDropoutProb, { rng: o.rng });
    this.numHeads = config.numAttentionHeads;
    this.headDim = H / config.numAttentionHeads;
    this.exact = o.exactAttentionDropout ?? false;
  }

  /** h [B, T, H], mask f32 [B, T] (1 keep, 0 pad) -> context [B, T, H]. */
  forward(h: Tensor, mask: Tensor | null): Tensor {
    const [B, T, H] = h.shape as [number, number, number];
    const heads = (lin: Linear): Tensor => {
      const x = lin.forward(h); // [B, T, H]
      const r = F.reshape(x, [B, T, this.numHeads, this.headDim]);
      const y = F.permute(r, [0, 2, 1, 3]); // [B, nh, T, dh]
      free(x, r);
      return y;
    };
    const q = heads(this.query);
    const k = heads(this.key);
    const v = heads(this.value);
    const o = this.exact && this.training && this.dropout.p > 0 ? this.unfused(q, k, v, mask) : F.scaledDotProductAttention(q, k, v, { mask });
    free(q, k, v);
    const ot = F.permute(o, [0, 2, 1, 3]); // [B, T, nh, dh]
    const y = F.reshape(ot, [B, T, H]);
    free(o, ot);
    return y;
  }

  /** softmax(q kᵀ/√dh + (1 - mask)·min) → dropout → · v, all through autograd. */
  private unfused(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    const [B, , , dh] = q.shape as [number, number, number, number];
    const T = k.shape[2]!;
    const kt = F.transpose(k, 2, 3); // [B, nh, dh, T]
    const s = F.matmul(q, kt); // [B, nh, T, T]
    const scaled = F.mul(s, 1 / Math.sqrt(dh));
    free(kt, s);
    let logits = scaled;
    if (mask) {
      // 1 -> 0, 0 -> -1e30 (HF adds finfo.min; any value that underflows exp() to 0 is the same).
      const m4 = F.reshape(mask, [B, 1, 1, T]);
      const bias = F.affine(m4, 1e30, -1e30);
      logits = F.add(scaled, bias);
      free(m4, bias, scaled);
    }
    const p = F.softmax(logits, -1);
    logits.dispose();
    const pd = dropFree(this.dropout, p);
    const out = F.matmul(pd, v);
    pd.dispose();
    return out;
  }
}

/** dense → dropout → LayerNorm(· + input). HF's BertSelfOutput (attention.output) and BertOutput (output). */
export class BertDenseResidual extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  dropout: Dropout;
  /** Optional module applied to dropout(dense(x)) before the residual + LayerNorm (bottleneck adapters, src/peft/adapters.ts). */
  adapter: (Module & { forward(h: Tensor): Tensor }) | null = null;

  constructor(rt: Runtime, inFeatures: number, config: BertConfig, o: BertBuildOptions = {}) {
    super();
    this.dense = new Linear(rt, inFeatures, config.hiddenSize, { rng: new ZeroRng() });
    this.LayerNorm = new LayerNorm(rt, config.hiddenSize, config.layerNormEps);
    this.dropout = new Dropout(config.hiddenDropoutProb, { rng: o.rng });
  }

  /** x [B, T, in], input [B, T, H] -> [B, T, H]. */
  forward(x: Tensor, input: Tensor): Tensor {
    let d = dropFree(this.dropout, this.dense.forward(x));
    if (this.adapter) {
      const a = this.adapter.forward(d);
      d.dispose();
      d = a;
    }
    const y = addLayerNorm(d, input, this.LayerNorm);
    d.dispose();
    return y;
  }
}

/** attention.self + attention.output. */
export class BertAttention extends Module {
  self: BertSelfAttention;
  output: BertDenseResidual;

  constructor(rt: Runtime, config: BertConfig, o: BertBuildOptions = {}) {
    super();
    this.self = new BertSelfAttention(rt, config, o);
    this.output = new BertDenseResidual(rt, config.hiddenSize, config, o);
  }

  forward(h: Tensor, mask: Tensor | null): Tensor {
    const c = this.self.forward(h, mask);
    const y = this.output.forward(c, h);
    c.dispose();
    return y;
  }
}

/** intermediate.dense + activation (H -> intermediate_size). */
export class BertIntermediate extends Module {
  dense: Linear;

  constructor(rt: Runtime, readonly config: BertConfig) {
    super();
    this.dense = new Linear(rt, config.hiddenSize, config.intermediateSize, { rng: new ZeroRng() });
  }

  forward(h: Tensor): Tensor {
    return linearAct(h, this.dense, this.config.hiddenAct);
  }
}

/** One post-norm encoder layer: attention, intermediate, output. Keys encoder.layer.N.*. */
export class BertLayer extends Module {
  attention: BertAttention;
  intermediate: BertIntermediate;
  output: BertDenseResidual;

  constructor(rt: Runtime, config: BertConfig, o: BertBuildOptions = {}) {
    super();
    this.attention = new BertAttention(rt, config, o);
    this.intermediate = new BertIntermediate(rt, config);
    this.output = new BertDenseResidual(rt, config.intermediateSize, config, o);
  }

  /** h [B, T, H] -> [B, T, H]. */
  forward(h: Tensor, mask: Tensor | null): Tensor {
    const a = this.attention.forward(h, mask);
    const i = this.intermediate.forward(a);
    const y = this.output.forward(i, a);
    free(a, i);
    return y;
  }
}

/** encoder.layer.0 .. encoder.layer.{L-1}. */
export class BertEncoder extends Module {
  layer: BertLayer[];

  constructor(rt: Runtime, config: BertConfig, o: BertBuildOptions = {}) {
    super();
    this.layer = Array.from({ length: config.numHiddenLayers }, () => new BertLayer(rt, config, o));
  }

  /** h [B, T, H] through every layer -> [B, T, H] (a new tensor). */
  forward(h: Tensor, mask: Tensor | null): Tensor {
    let x = h;
    for (const l of this.layer) {
      const y = l.forward(x, mask);
      if (x !== h) x.dispose();
      x = y;
    }
    return x === h ? F.reshape(h, h.shape) : x;
  }
}

/** tanh(dense(h[:, 0])): the [CLS] summary. Keys pooler.dense. */
export class BertPooler extends Module {
  dense: Linear;

  constructor(rt: Runtime, config: BertConfig) {
    super();
    this.dense = new Linear(rt, config.hiddenSize, config.hiddenSize, { rng: new ZeroRng() });
  }

  /** h [B, T, H] -> [B, H]. */
  forward(h: Tensor): Tensor {
    const [B, , H] = h.shape as [number, number, number];
    const first = F.slice(h, [0, 0, 0], [B, 1, H]);
    const cls = F.reshape(first, [B, H]);
    const d = this.dense.forward(cls);
    const y = F.tanh(d);
    free(first, cls, d);
    return y;
  }
}
