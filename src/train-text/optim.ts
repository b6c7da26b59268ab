// Shared optimizer set-up for the text loops: AdamW with HF's no-decay groups (biases, LayerNorm), warm-up + linear decay.
import type { Tensor } from '../tensor.js';
import { GraftError } from '../runtime/errors.js';
import type { Module } from '../nn/module.js';
import { AdamW, linearWarmupDecay, type LambdaLR } from '../optim/index.js';

export interface TextOptim {
  opt: AdamW;
  sched: LambdaLR;
  /** The trainable tensors (requiresGrad at set-up). */
  params: Tensor[];
}

/**
 * AdamW over the trainable parameters of `model` (requiresGrad true): weight decay `weightDecay`
 * except on biases and LayerNorm weights (as HF's Trainer), lr warmed up over `warmup` steps and decayed
 * linearly to 0 at `total`. `head` puts the parameters whose name matches its pattern in their own group at their own lr
 * (no weight decay): e.g. a freshly initialised classifier trained faster than a pretrained encoder.
 */
export function textOptimizer(model: Module, o: { lr: number; weightDecay?: number; warmup: number; total: number; head?: { pattern: RegExp; lr: number } }): TextOptim {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  const head: Tensor[] = [];
  for (const [name, t] of model.namedParameters()) {
    if (!t.requiresGrad) continue;
    if (o.head && o.head.pattern.test(name)) head.push(t);
    else if (/(^|\.)bias$|LayerNorm\.weight$/.test(name)) noDecay.push(t);
    else decay.push(t);
  }
  if (!decay.length && !noDecay.length && !head.length) throw new GraftError('textOptimizer: the model has no trainable parameters');
  const groups = [
    ...(decay.length ? [{ params: decay, name: 'decay', weightDecay: o.weightDecay ?? 0.01 }] : []),
    ...(noDecay.length ? [{ params: noDecay, name: 'no-decay', weightDecay: 0 }] : []),
    ...(head.length && o.head ? [{ params: head, name: 'head', lr: o.head.lr, weightDecay: 0 }] : []),
  ];
  const opt = new AdamW(groups, { lr: o.lr });
  const total = Math.max(1, o.total);
  const sched = linearWarmupDecay(opt, Math.min(o.warmup, total), total);
  return { opt, sched, params: [...decay, ...noDecay, ...head] };
}
