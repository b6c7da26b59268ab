// Matmul batch broadcasting: numpy-style output batch shape and per-operand strides, merged into as few levels as possible.
import { ShapeError } from '../runtime/errors.js';
import type { Shape } from '../tensor.js';

/** One batch level: its size and the element stride of each operand (0 where that operand is broadcast). */
export interface BatchLevel {
  d: number;
  a: number;
  b: number;
}

export interface BatchPlan {
  /** Broadcast batch dims of the output. */
  outBatch: number[];
  /** Equivalent levels, outermost first, size-1 dims dropped and mergeable neighbours merged. */
  levels: BatchLevel[];
}

/** Element strides of each batch dim of a dense operand whose matrices hold `mat` elements. */
function denseStrides(batch: Shape, mat: number): number[] {
  const s = new Array<number>(batch.length);
  let acc = mat;
  for (let i = batch.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= batch[i]!;
  }
  return s;
}

/**
 * Broadcast batch dims aBatch and bBatch (right-aligned, numpy rules). aMat / bMat are the element
 * counts of one matrix of each operand. `what` names the op and both full shapes for errors.
 */
export function planBatch(aBatch: Shape, bBatch: Shape, aMat: number, bMat: number, what: string): BatchPlan {
  const rank = Math.max(aBatch.length, bBatch.length);
  const aStr = denseStrides(aBatch, aMat);
  const bStr = denseStrides(bBatch, bMat);
  const outBatch: number[] = [];
  const levels: BatchLevel[] = [];
  for (let i = 0; i < rank; i++) {
    const ia = i - (rank - aBatch.length);
    const ib = i - (rank - bBatch.length);
    const da = ia >= 0 ? aBatch[ia]! : 1;
    const db = ib >= 0 ? bBatch[ib]! : 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`${what}: batch dims do not broadcast (${da} vs ${db})`);
    const d = Math.max(da, db);
    outBatch.push(d);
    if (d === 1) continue;
    levels.push({ d, a: da === 1 ? 0 : aStr[ia]!, b: db === 1 ? 0 : bStr[ib]! });
  }
  // merge level i into i + 1 when walking both as one dim gives the same offsets
  const merged: BatchLevel[] = [];
  for (const l of levels) {
    const prev = merged[merged.length - 1];
    if (prev && prev.a === l.a * l.d && prev.b === l.b * l.d) {
      merged[merged.length - 1] = { d: prev.d * l.d, a: l.a, b: l.b };
    } else merged.push(l);
  }
  return { outBatch, levels: merged };
}
