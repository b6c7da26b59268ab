// The fine-tune benchmark's BERT classifier training step written in TensorFlow.js (webgpu backend): full, LoRA (query/value) or linear probe, Adam.
import type * as TF from '@tensorflow/tfjs-core';
import type { TfjsPeer } from '../tfjs.js';
import type { FinetuneBenchSpec } from '../finetune-spec.js';
import { GraftError } from '../../runtime/errors.js';
import { bertSize, type BertSize } from './bert-sizes.js';
import { HostRandom, VarBag, tfjsTrainStep, type PeerStepOptions, type PeerTrainStep } from './step.js';

interface Dense {
  w: TF.Variable; // [in, out]
  b: TF.Variable; // [out]
}

interface Lora {
  a: TF.Variable; // [in, r]
  b: TF.Variable; // [r, out]
  scale: number;
}

interface Ln {
  g: TF.Variable; // [H]
  b: TF.Variable; // [H]
}

interface Layer {
  q: Dense;
  k: Dense;
  v: Dense;
  qLora: Lora | null;
  vLora: Lora | null;
  attnOut: Dense;
  ln1: Ln;
  inter: Dense;
  out: Dense;
  ln2: Ln;
}

/**
 * Build the model, AdamW and a fixed synthetic batch (ids [B, S] in [1000, vocab), full attention
 * mask, labels in [0, numClasses)). Full / LoRA train with hidden dropout (embeddings, attention
 * output, FFN output, before the classifier) as graft's train mode; the linear probe runs the
 * backbone in eval mode outside the gradient tape.
 */
export function tfjsBertStep(p: TfjsPeer, spec: FinetuneBenchSpec, o: PeerStepOptions = {}): PeerTrainStep {
  const { tf } = p;
  const cfg: BertSize = bertSize(spec.model);
  const H = cfg.hidden;
  const B = spec.batch;
  const S = spec.seq;
  if (S > cfg.maxPositions) throw new GraftError(`seq ${S} is over BERT's ${cfg.maxPositions} positions`);
  const rnd = new HostRandom(spec.seed);
  const bag = new VarBag(tf);
  const backboneTrains = spec.strategy === 'full';
  const std = 0.02;
  const dense = (i: number, o: number, trainable = backboneTrains): Dense => ({
    w: bag.add(rnd.normal(i * o, std), [i, o], trainable),
    b: bag.add(new Float32Array(o), [o], trainable),
  });
  const ln = (): Ln => ({ g: bag.add(new Float32Array(H).fill(1), [H], backboneTrains), b: bag.add(new Float32Array(H), [H], backboneTrains) });
  const lora = (): Lora | null => {
    if (spec.strategy !== 'lora') return null;
    const r = spec.loraRank;
    // PEFT init: A kaiming-uniform(a=√5) → U(±1/√in), B zeros.
    return { a: bag.add(rnd.uniform(H * r, 1 / Math.sqrt(H)), [H, r], true), b: bag.add(new Float32Array(r * H), [r, H], true), scale: spec.loraAlpha / r };
  };

  const wordEmb = bag.add(rnd.normal(cfg.vocab * H, std), [cfg.vocab, H], backboneTrains);
  const posEmb = bag.add(rnd.normal(cfg.maxPositions * H, std), [cfg.maxPositions, H], backboneTrains);
  const typeEmb = bag.add(rnd.normal(cfg.typeVocab * H, std), [cfg.typeVocab, H], backboneTrains);
  const embLn = ln();
  const layers: Layer[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    layers.push({
      q: dense(H, H),
      k: dense(H, H),
      v: dense(H, H),
      qLora: lora(),
      vLora: lora(),
      attnOut: dense(H, H),
      ln1: ln(),
      inter: dense(H, cfg.intermediate),
      out: dense(cfg.intermediate, H),
      ln2: ln(),
    });
  }
  const pooler = dense(H, H);
  const classifier = dense(H, spec.numClasses, true);

  const ids = tf.tensor2d(rnd.ints(B * S, 1000, cfg.vocab), [B, S], 'int32');
  const types = tf.zeros([B, S], 'int32');
  const positions = tf.range(0, S, 1, 'int32');
  const mask = tf.ones([B, S]); // 1 = token, 0 = padding
  const labelIds = rnd.ints(B, 0, spec.numClasses);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(labelIds, 'int32'), spec.numClasses)); // [B, C]

  const linear = (x: TF.Tensor2D, d: Dense, lo: Lora | null = null): TF.Tensor2D => {
    let y = tf.add(tf.matMul(x, d.w), d.b);
    if (lo) y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, lo.a), lo.b), lo.scale));
    return y as TF.Tensor2D;
  };
  const layerNorm = (x: TF.Tensor2D, n: Ln): TF.Tensor2D => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, cfg.eps))), n.g), n.b) as TF.Tensor2D;
  };
  const gelu = (x: TF.Tensor2D): TF.Tensor2D => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as TF.Tensor2D;
  const pDrop = spec.strategy === 'linear-probe' ? 0 : (o.dropout ?? 0.1);
  const drop = (x: TF.Tensor2D): TF.Tensor2D => (pDrop > 0 ? (tf.dropout(x, pDrop) as TF.Tensor2D) : x);
  const nh = cfg.heads;
  const dh = H / nh;
  const heads = (x: TF.Tensor2D): TF.Tensor4D => tf.transpose(tf.reshape(x, [B, S, nh, dh]), [0, 2, 1, 3]); // [B, nh, S, dh]

  /** Pooled features [B, H] (tanh pooler over the first token). */
  const encode = (): TF.Tensor2D => {
    const maskBias = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [B, 1, 1, S]);
    const emb = tf.add(tf.add(tf.gather(wordEmb, ids), tf.expandDims(tf.gather(posEmb, positions), 0)), tf.gather(typeEmb, types)); // [B, S, H]
    let h = drop(layerNorm(tf.reshape(emb, [B * S, H]), embLn));
    for (const L of layers) {
      const q = heads(linear(h, L.q, L.qLora));
      const k = heads(linear(h, L.k));
      const v = heads(linear(h, L.v, L.vLora));
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), maskBias);
      const ctx = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [B * S, H]) as TF.Tensor2D;
      h = layerNorm(tf.add(drop(linear(ctx, L.attnOut)), h), L.ln1);
      const f = linear(gelu(linear(h, L.inter)), L.out);
      h = layerNorm(tf.add(drop(f), h), L.ln2);
    }
    const first = tf.reshape(tf.slice(tf.reshape(h, [B, S, H]), [0, 0, 0], [B, 1, H]), [B, H]) as TF.Tensor2D;
    return tf.tanh(linear(first, pooler));
  };
  const lossOf = (feat: TF.Tensor2D): TF.Scalar => tf.losses.softmaxCrossEntropy(labels, linear(drop(feat), classifier));

  return tfjsTrainStep(tf, bag, { strategy: spec.strategy, lr: o.lr, features: encode, lossOf, inputs: [ids, types, positions, mask, labels] });
}
