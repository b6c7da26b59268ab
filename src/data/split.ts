// Deterministic dataset splits: stratified (per-class proportions kept) and plain random, by fractions or counts.
import { GraftError } from '../runtime/errors.js';
import { isLabelled, labelsOf, subset, type Dataset, type Labelled, type Subset } from './dataset.js';
import { Rng, checkSeed, deriveSeed } from './rng.js';

export interface SplitOptions {
  /** Fraction of the dataset per split (sum ≤ 1; examples left over belong to no split). */
  fractions?: readonly number[];
  /** Number of examples per split (sum ≤ length). */
  counts?: readonly number[];
  seed: number;
}

/** Split sizes from fractions (largest remainder, so they sum to round(n · Σf)) or from counts. */
function splitSizes(n: number, o: SplitOptions, op: string): number[] {
  if ((o.fractions === undefined) === (o.counts === undefined)) throw new GraftError(`${op}: give exactly one of fractions or counts`);
  checkSeed(o.seed, `${op}: seed`);
  if (o.counts) {
    const c = [...o.counts];
    if (!c.length || c.some((k) => !Number.isInteger(k) || k < 0)) throw new GraftError(`${op}: counts must be non-negative integers, got [${c.join(', ')}]`);
    const sum = c.reduce((a, b) => a + b, 0);
    if (sum > n) throw new GraftError(`${op}: counts [${c.join(', ')}] add up to ${sum}, more than the ${n} examples`);
    return c;
  }
  const f = [...o.fractions!];
  const sum = f.reduce((a, b) => a + b, 0);
  if (!f.length || f.some((x) => !(x >= 0)) || sum > 1 + 1e-9) throw new GraftError(`${op}: fractions must be ≥ 0 and add up to at most 1, got [${f.join(', ')}]`);
  const total = Math.min(n, Math.round(n * sum));
  return apportion(f.map((x) => (sum > 0 ? (x / sum) * total : 0)), total);
}

/** Integers close to `ideal` adding up to `total`: floors, then +1 by largest fractional part (ties: lower index). */
function apportion(ideal: readonly number[], total: number, cap?: readonly number[]): number[] {
  const out = ideal.map((x, i) => Math.min(Math.floor(x + 1e-9), cap ? cap[i]! : Infinity));
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = ideal.map((x, i) => i).sort((a, b) => ideal[b]! - out[b]! - (ideal[a]! - out[a]!) || a - b);
  while (left > 0) {
    let moved = false;
    for (const i of order) {
      if (left === 0) break;
      if (cap && out[i]! >= cap[i]!) continue;
      out[i]!++;
      left--;
      moved = true;
    }
    if (!moved) break;
  }
  return out;
}

/**
 * Split positions 0..n-1 by class so every split keeps the class proportions (up to rounding). Each class's
 * members are shuffled with a generator derived from (seed, class) and dealt out to the splits in order;
 * per-class shares are apportioned split by split from what is left, so the split sizes are exact.
 * Returns each split's indices in ascending order.
 */
export function stratifiedIndices(labels: ArrayLike<number>, o: SplitOptions): Int32Array[] {
  const n = labels.length;
  const sizes = splitSizes(n, o, 'stratifiedSplit');
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    let g = byClass.get(l);
    if (!g) byClass.set(l, (g = []));
    g.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const members = classes.map((c) => {
    const g = Int32Array.from(byClass.get(c)!);
    // Labels may be any integers (e.g. -1): fold them into a u32 key.
    return new Rng(deriveSeed(o.seed, 0x5717, c >>> 0)).shuffle(g);
  });
  const remaining = members.map((g) => g.length);
  const taken = members.map(() => 0);
  const out: Int32Array[] = [];
  for (const size of sizes) {
    const left = remaining.reduce((a, b) => a + b, 0);
    const share = apportion(
      remaining.map((r) => (left > 0 ? (size * r) / left : 0)),
      size,
      remaining,
    );
    const idx: number[] = [];
    share.forEach((k, c) => {
      for (let j = 0; j < k; j++) idx.push(members[c]![taken[c]! + j]!);
      taken[c]! += k;
      remaining[c]! -= k;
    });
    out.push(Int32Array.from(idx).sort());
  }
  return out;
}

/** Plain random split of 0..n-1 (one permutation from the seed, cut into consecutive pieces); ascending indices. */
export function randomIndices(n: number, o: SplitOptions): Int32Array[] {
  const sizes = splitSizes(n, o, 'randomSplit');
  const perm = new Rng(deriveSeed(o.seed, 0x7a4d)).permutation(n);
  let at = 0;
  return sizes.map((k) => {
    const s = perm.slice(at, at + k).sort();
    at += k;
    return s;
  });
}

/** Stratified split of a labelled dataset (labelOf, or get(i).label) into subsets. */
export function stratifiedSplit<T extends { label: number }>(ds: Dataset<T> & Labelled, o: SplitOptions): (Subset<T> & Labelled)[];
export function stratifiedSplit<T extends { label: number }>(ds: Dataset<T>, o: SplitOptions): Subset<T>[];
export function stratifiedSplit<T extends { label: number }>(ds: Dataset<T>, o: SplitOptions): Subset<T>[] {
  const parts = stratifiedIndices(labelsOf(ds), o);
  return isLabelled(ds) ? parts.map((p) => subset(ds, p)) : parts.map((p) => subset(ds, p));
}

/** Random (unstratified) split into subsets. */
export function randomSplit<T>(ds: Dataset<T> & Labelled, o: SplitOptions): (Subset<T> & Labelled)[];
export function randomSplit<T>(ds: Dataset<T>, o: SplitOptions): Subset<T>[];
export function randomSplit<T>(ds: Dataset<T>, o: SplitOptions): Subset<T>[] {
  const parts = randomIndices(ds.length, o);
  return isLabelled(ds) ? parts.map((p) => subset(ds, p)) : parts.map((p) => subset(ds, p));
}
