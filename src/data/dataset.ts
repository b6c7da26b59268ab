// Dataset interfaces (indexable, optionally labelled), example types, array-backed datasets and subsets.
import { GraftError } from '../runtime/errors.js';

/** Random access to `length` examples. get(i) may decode lazily; it must return the same example for the same i. */
export interface Dataset<T> {
  readonly length: number;
  get(i: number): T;
}

/** A dataset whose examples carry a class id in 0..classes.length-1. */
export interface Labelled {
  readonly classes: readonly string[];
  /** Label of example i without building the example (cheap; used by splits). */
  labelOf(i: number): number;
}

export type LabelledDataset<T> = Dataset<T> & Labelled;

/** One image, channels first, float pixels (loaders produce 0..1; transforms may normalise). */
export interface ImageExample {
  /** [channels, height, width] */
  image: Float32Array;
  channels: number;
  height: number;
  width: number;
  label: number;
}

/** One text (optionally a sentence pair) with a class id (-1 when unlabelled). */
export interface TextExample {
  text: string;
  pair?: string;
  label: number;
}

/** A dataset narrowed to `indices` (positions in the parent), keeping its order. */
export interface Subset<T> extends Dataset<T> {
  readonly indices: Int32Array;
}

export function isLabelled<T>(ds: Dataset<T>): ds is LabelledDataset<T> {
  const c = ds as Partial<Labelled>;
  return Array.isArray(c.classes) && typeof c.labelOf === 'function';
}

/** Throws unless i is an integer in [0, length). */
export function checkIndex(i: number, length: number, what = 'dataset'): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) throw new GraftError(`${what}: index ${i} out of range [0, ${length})`);
}

/** Examples held in memory. */
export class ArrayDataset<T> implements Dataset<T> {
  constructor(readonly items: readonly T[]) {}
  get length(): number {
    return this.items.length;
  }
  get(i: number): T {
    checkIndex(i, this.items.length);
    return this.items[i]!;
  }
}

/** In-memory labelled examples: `classes` names the ids found in `example.label`. */
export class LabelledArrayDataset<T extends { label: number }> extends ArrayDataset<T> implements Labelled {
  constructor(
    items: readonly T[],
    readonly classes: readonly string[],
  ) {
    super(items);
    items.forEach((ex, i) => {
      if (!Number.isInteger(ex.label) || ex.label < 0 || ex.label >= classes.length) {
        throw new GraftError(`example ${i}: label ${ex.label} is not a class id in [0, ${classes.length})`);
      }
    });
  }
  labelOf(i: number): number {
    return this.get(i).label;
  }
}

/** `ds` restricted to `indices` (any order, repeats allowed); labelled datasets stay labelled. */
export function subset<T>(ds: LabelledDataset<T>, indices: ArrayLike<number>): Subset<T> & Labelled;
export function subset<T>(ds: Dataset<T>, indices: ArrayLike<number>): Subset<T>;
export function subset<T>(ds: Dataset<T>, indices: ArrayLike<number>): Subset<T> {
  const idx = Int32Array.from(indices);
  for (let k = 0; k < idx.length; k++) {
    if (idx[k] !== indices[k] || idx[k]! < 0 || idx[k]! >= ds.length) {
      throw new GraftError(`subset: index ${indices[k]} (position ${k}) out of range [0, ${ds.length})`);
    }
  }
  const get = (i: number): T => {
    checkIndex(i, idx.length, 'subset');
    return ds.get(idx[i]!);
  };
  if (isLabelled(ds)) {
    const labelled: Subset<T> & Labelled = {
      indices: idx,
      length: idx.length,
      get,
      classes: ds.classes,
      labelOf: (i: number) => {
        checkIndex(i, idx.length, 'subset');
        return ds.labelOf(idx[i]!);
      },
    };
    return labelled;
  }
  return { indices: idx, length: idx.length, get };
}

/** A lazy view applying `fn` to each example (labels are not carried over: fn may change them). */
export function mapDataset<T, U>(ds: Dataset<T>, fn: (example: T, index: number) => U): Dataset<U> {
  return { length: ds.length, get: (i: number) => fn(ds.get(i), i) };
}

/** Labels of every example (labelOf when available, else get(i).label). */
export function labelsOf<T extends { label: number }>(ds: Dataset<T>): Int32Array {
  const out = new Int32Array(ds.length);
  const lab = isLabelled(ds) ? (i: number) => ds.labelOf(i) : (i: number) => ds.get(i).label;
  for (let i = 0; i < ds.length; i++) out[i] = lab(i);
  return out;
}
