// Classification metrics on the CPU: argmax of logits, confusion matrix, accuracy, macro-F1.
import { ShapeError } from '../runtime/errors.js';

/** Row-wise argmax of logits [N, C] (flat, row-major) -> [N] class ids (first maximum wins). */
export function argmaxRows(logits: ArrayLike<number>, numClasses: number): Int32Array {
  if (numClasses < 1 || logits.length % numClasses) throw new ShapeError(`argmaxRows: ${logits.length} values are not rows of ${numClasses}`);
  const n = logits.length / numClasses;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = logits[i * numClasses]!;
    for (let c = 1; c < numClasses; c++) {
      const v = logits[i * numClasses + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

function checkPair(what: string, pred: ArrayLike<number>, target: ArrayLike<number>): void {
  if (pred.length !== target.length) throw new ShapeError(`${what}: predictions [${pred.length}] and targets [${target.length}] differ`);
}

/** counts[t * C + p] = examples of true class t predicted as p; [C, C]. */
export function confusionMatrix(pred: ArrayLike<number>, target: ArrayLike<number>, numClasses: number): Int32Array {
  checkPair('confusionMatrix', pred, target);
  const m = new Int32Array(numClasses * numClasses);
  for (let i = 0; i < pred.length; i++) {
    const t = target[i]!;
    const p = pred[i]!;
    if (t < 0 || t >= numClasses || p < 0 || p >= numClasses) throw new ShapeError(`confusionMatrix: example ${i} has target ${t} / prediction ${p} outside [0, ${numClasses})`);
    m[t * numClasses + p]!++;
  }
  return m;
}

/** Fraction of predictions equal to their target (0 for no examples). */
export function accuracy(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  checkPair('accuracy', pred, target);
  if (!pred.length) return 0;
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === target[i]) hit++;
  return hit / pred.length;
}

/**
 * Unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN), over the classes that occur as a target or
 * a prediction (sklearn's f1_score(average='macro') with labels = those present; a present class with no
 * true positive counts as 0).
 */
export function macroF1(pred: ArrayLike<number>, target: ArrayLike<number>, numClasses: number): number {
  const m = confusionMatrix(pred, target, numClasses);
  let sum = 0;
  let present = 0;
  for (let c = 0; c < numClasses; c++) {
    const tp = m[c * numClasses + c]!;
    let row = 0;
    let col = 0;
    for (let k = 0; k < numClasses; k++) {
      row += m[c * numClasses + k]!;
      col += m[k * numClasses + c]!;
    }
    const denom = row + col; // 2·TP + FP + FN
    if (!denom) continue;
    present++;
    sum += (2 * tp) / denom;
  }
  return present ? sum / present : 0;
}

export interface EvalMetrics {
  /** Mean cross-entropy over the examples. */
  loss: number;
  accuracy: number;
  macroF1: number;
  examples: number;
}

/** Accumulates predictions and summed losses batch by batch. */
export class MetricAccumulator {
  private preds: number[] = [];
  private targets: number[] = [];
  private lossSum = 0;

  constructor(readonly numClasses: number) {}

  /** logits [B, C] (flat), targets [B], summed (not mean) loss of the batch. */
  add(logits: ArrayLike<number>, targets: ArrayLike<number>, lossSum: number): void {
    const p = argmaxRows(logits, this.numClasses);
    checkPair('MetricAccumulator.add', p, targets);
    for (let i = 0; i < p.length; i++) {
      this.preds.push(p[i]!);
      this.targets.push(targets[i]!);
    }
    this.lossSum += lossSum;
  }

  result(): EvalMetrics {
    const n = this.preds.length;
    return {
      loss: n ? this.lossSum / n : NaN,
      accuracy: accuracy(this.preds, this.targets),
      macroF1: macroF1(this.preds, this.targets, this.numClasses),
      examples: n,
    };
  }
}
