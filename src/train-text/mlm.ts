// Domain-adaptive masked-LM pretraining of a BertForMaskedLM on unlabelled text (80/10/10 masking), saved as a HF folder.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { Tensor, scope } from '../tensor.js';
import { backward } from '../autograd/engine.js';
import { clipGradNorm } from '../optim/index.js';
import { Rng } from '../data/rng.js';
import { mlmBatch } from '../data/mlm.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import { BertForMaskedLM, saveBertForMaskedLM } from '../models/bert-mlm.js';
import { textOptimizer } from './optim.js';

export interface PretrainMlmOptions {
  model: BertForMaskedLM;
  tokenizer: WordPieceTokenizer;
  /** Unlabelled training texts. */
  texts: readonly string[];
  /** Optimizer steps (default: `epochs` passes over the texts, or 1 epoch). */
  steps?: number;
  epochs?: number;
  /** Texts per step (default 16). */
  batch?: number;
  /** Longest sequence in tokens, [CLS]/[SEP] included (default 128); batches pad to their longest row. */
  seq?: number;
  /** Peak learning rate (default 1e-3, right for a small model from scratch). */
  lr?: number;
  weightDecay?: number;
  /** Warm-up steps (default 6% of the steps). */
  warmup?: number;
  /** Gradient-norm clip (default 1; 0 = off). */
  clip?: number;
  /** Masking probability (default 0.15). */
  maskProb?: number;
  /** Shuffling and masking seed (default 0). */
  seed?: number;
  /** Save the trained model here (HF folder) when given. */
  out?: string;
  /** Copied as vocab.txt into `out` (default: written from the tokenizer). */
  vocabPath?: string;
  /** Called after every step with the step number (1-based), the total and the loss. */
  onStep?: (step: number, total: number, loss: number) => void;
}

export interface PretrainMlmResult {
  steps: number;
  /** Loss of each step (mean over its masked positions; NaN for a step with no masked token). */
  losses: number[];
  /** Mean loss of the first and last min(10, steps/4) steps. */
  firstLoss: number;
  lastLoss: number;
  seconds: number;
  out: string | null;
}

const meanOf = (xs: readonly number[]): number => {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
};

/**
 * Train `model` with BERT's MLM objective: each step takes the next `batch` texts of a seeded shuffle
 * (reshuffled every epoch), masks 15% of the non-special tokens (80% [MASK], 10% random, 10% kept),
 * and takes one AdamW step (warm-up + linear decay, clipping). The model is left in eval mode.
 */
export async function pretrainMlm(o: PretrainMlmOptions): Promise<PretrainMlmResult> {
  const { model, tokenizer } = o;
  if (!o.texts.length) throw new GraftError('pretrainMlm: no texts');
  const batch = o.batch ?? 16;
  const seq = Math.min(o.seq ?? 128, model.config.maxPositionEmbeddings);
  if (!Number.isInteger(batch) || batch < 1) throw new GraftError(`pretrainMlm: batch must be a positive integer, got ${batch}`);
  if (tokenizer.size > model.config.vocabSize) throw new GraftError(`pretrainMlm: tokenizer has ${tokenizer.size} tokens, the model's vocabulary ${model.config.vocabSize}`);
  const perEpoch = Math.ceil(o.texts.length / batch);
  const steps = o.steps ?? perEpoch * (o.epochs ?? 1);
  if (!Number.isInteger(steps) || steps < 1) throw new GraftError(`pretrainMlm: steps must be a positive integer, got ${steps}`);
  const seed = o.seed ?? 0;
  const rt: Runtime = model.bert.embeddings.word_embeddings.weight.rt;
  const { opt, sched } = textOptimizer(model, { lr: o.lr ?? 1e-3, weightDecay: o.weightDecay, warmup: o.warmup ?? Math.round(0.06 * steps), total: steps });
  const clip = o.clip ?? 1;
  const orderRng = new Rng(seed);
  const maskRng = Rng.derive(seed, 0x3a5c);
  let order = orderRng.permutation(o.texts.length);
  let at = 0;
  const losses: number[] = [];
  const t0 = performance.now();
  model.train();
  try {
    for (let step = 1; step <= steps; step++) {
      const ex = [];
      for (let i = 0; i < batch; i++) {
        if (at >= order.length) {
          order = orderRng.permutation(o.texts.length);
          at = 0;
        }
        ex.push({ text: o.texts[order[at++]!]!, label: -1 });
      }
      const b = mlmBatch(tokenizer, ex, maskRng, { maxLength: seq, padding: 'longest', prob: o.maskProb });
      opt.zeroGrad();
      const loss = scope(rt, () => {
        const [B, T] = b.shape;
        const inputIds = Tensor.from(rt, b.inputIds, [B, T], 'i32');
        const attentionMask = Tensor.from(rt, b.attentionMask, [B, T]);
        const tokenTypeIds = Tensor.from(rt, b.tokenTypeIds, [B, T], 'i32');
        return model.loss({ inputIds, attentionMask, tokenTypeIds }, b.labels);
      });
      if (!loss) {
        losses.push(NaN);
        o.onStep?.(step, steps, NaN);
        continue;
      }
      backward(loss);
      if (clip > 0) clipGradNorm(opt, clip).dispose();
      opt.step();
      sched.step();
      const v = (await loss.read())[0]!;
      loss.dispose();
      losses.push(v);
      o.onStep?.(step, steps, v);
    }
  } finally {
    opt.dispose();
    model.eval();
  }
  const k = Math.max(1, Math.min(10, Math.floor(steps / 4)));
  if (o.out) await saveBertForMaskedLM(model, o.out, { tokenizer, vocabPath: o.vocabPath });
  return { steps, losses, firstLoss: meanOf(losses.slice(0, k)), lastLoss: meanOf(losses.slice(-k)), seconds: (performance.now() - t0) / 1000, out: o.out ?? null };
}
