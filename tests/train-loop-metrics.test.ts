// Classification metrics (argmax, confusion matrix, accuracy, macro-F1, accumulator) against hand-computed values.
import { describe, expect, it } from 'vitest';
import { MetricAccumulator, accuracy, argmaxRows, confusionMatrix, macroF1 } from '../src/train/metrics.js';

describe('train metrics', () => {
  it('argmaxRows picks the first maximum of each row', () => {
    expect([...argmaxRows([0, 2, 1, 5, 5, 0, -1, -2, -3], 3)]).toEqual([1, 0, 0]);
    expect(() => argmaxRows([1, 2, 3], 2)).toThrow(/rows of 2/);
  });

  it('confusion matrix, accuracy and macro-F1 by hand', () => {
    // targets 0 0 1 1 2 2, preds 0 1 1 1 0 2
    const t = [0, 0, 1, 1, 2, 2];
    const p = [0, 1, 1, 1, 0, 2];
    expect([...confusionMatrix(p, t, 3)]).toEqual([1, 1, 0, 0, 2, 0, 1, 0, 1]);
    expect(accuracy(p, t)).toBeCloseTo(4 / 6, 12);
    // class 0: tp 1, fp 1, fn 1 -> 2/4; class 1: tp 2, fp 1, fn 0 -> 4/5; class 2: tp 1, fp 0, fn 1 -> 2/3
    expect(macroF1(p, t, 3)).toBeCloseTo((0.5 + 0.8 + 2 / 3) / 3, 12);
  });

  it('macro-F1 averages only over classes present as target or prediction; a missed class counts 0', () => {
    // 4 classes declared, class 3 never occurs; class 2 is a target never predicted.
    const t = [0, 1, 2];
    const p = [0, 1, 1];
    // class 0: 1; class 1: tp 1, fp 1 -> 2/3; class 2: 0
    expect(macroF1(p, t, 4)).toBeCloseTo((1 + 2 / 3 + 0) / 3, 12);
    expect(macroF1([], [], 4)).toBe(0);
    expect(accuracy([], [])).toBe(0);
    expect(() => confusionMatrix([4], [0], 4)).toThrow(/outside/);
    expect(() => accuracy([1, 2], [1])).toThrow(/differ/);
  });

  it('accumulator: loss is the mean of summed batch losses, metrics over all batches', () => {
    const acc = new MetricAccumulator(2);
    acc.add([1, 0, 0, 1], [0, 0], 3);
    acc.add([0, 1], [1], 1);
    const r = acc.result();
    expect(r.examples).toBe(3);
    expect(r.loss).toBeCloseTo(4 / 3, 12);
    expect(r.accuracy).toBeCloseTo(2 / 3, 12);
    // class 0: tp 1, fn 1 -> 2/3; class 1: tp 1, fp 1 -> 2/3
    expect(r.macroF1).toBeCloseTo(2 / 3, 12);
  });
});
