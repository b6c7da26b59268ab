// Batch iterator over a dataset: seeded per-epoch shuffling, per-example seeded transforms, collate, resumable state.
import { GraftError } from '../runtime/errors.js';
import type { Dataset } from './dataset.js';
import { Rng, checkSeed, deriveSeed } from './rng.js';

/** Where the loader is: the next example is position `index` of epoch `epoch`'s order under `seed`. */
export interface LoaderState {
  epoch: number;
  index: number;
  seed: number;
}

/** Handed to collate: a generator for this batch (e.g. MLM masking) and where the batch came from. */
export interface BatchContext {
  rng: Rng;
  epoch: number;
  /** Position of the batch's first example in the epoch order. */
  start: number;
  /** Dataset indices of the batch's examples. */
  indices: Int32Array;
}

export interface DataLoaderOptions<T, B> {
  batchSize: number;
  /** Shuffle every epoch (order = permutation from (seed, epoch)); default false (dataset order). */
  shuffle?: boolean;
  /** Seeds the shuffles, the transforms' and the collate's generators (default 0). */
  seed?: number;
  /** Drop the last batch of an epoch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Per-example transform (augmentation); its rng is derived from (seed, epoch, dataset index). */
  transform?: (example: T, rng: Rng, index: number) => T;
  /** Examples -> batch (type-changing work, e.g. tokenising, belongs here). */
  collate: (examples: T[], ctx: BatchContext) => B;
}

const STREAM_ORDER = 0x0dd3;
const STREAM_TRANSFORM = 0x7a5f;
const STREAM_COLLATE = 0xc011;

/**
 * Iterates batches in a deterministic order: the same seed, epoch and position always give the same batch
 * (same examples, same augmentation, same masking), so training can stop after any batch and resume from
 * `state()` exactly. `for (const b of loader)` runs the rest of the current epoch and then moves to the next;
 * `next()` returns one batch, rolling over into the next epoch as needed.
 */
export class DataLoader<T, B> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private seed: number;
  private epoch = 0;
  private index = 0;
  private cached: { epoch: number; seed: number; order: Int32Array } | null = null;

  constructor(
    readonly dataset: Dataset<T>,
    private readonly opts: DataLoaderOptions<T, B>,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new GraftError(`DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.seed = checkSeed(opts.seed ?? 0, 'DataLoader: seed');
  }

  /** Examples used per epoch (all, or a multiple of batchSize with dropLast). */
  get examplesPerEpoch(): number {
    const n = this.dataset.length;
    return this.dropLast ? n - (n % this.batchSize) : n;
  }

  /** Batches per epoch. */
  get length(): number {
    return Math.ceil(this.examplesPerEpoch / this.batchSize);
  }

  /** Dataset indices in the order of `epoch` (identity without shuffle). */
  order(epoch = this.epoch): Int32Array {
    if (this.cached && this.cached.epoch === epoch && this.cached.seed === this.seed) return this.cached.order;
    const n = this.dataset.length;
    let order: Int32Array;
    if (this.shuffle) order = new Rng(deriveSeed(this.seed, STREAM_ORDER, epoch)).permutation(n);
    else order = Int32Array.from({ length: n }, (_, i) => i);
    this.cached = { epoch, seed: this.seed, order };
    return order;
  }

  state(): LoaderState {
    return { epoch: this.epoch, index: this.index, seed: this.seed };
  }

  /** Resume at a saved position; index may be any position in the epoch, not only a batch boundary. */
  setState(s: LoaderState): void {
    if (!Number.isInteger(s.epoch) || s.epoch < 0) throw new GraftError(`DataLoader.setState: epoch must be a non-negative integer, got ${s.epoch}`);
    if (!Number.isInteger(s.index) || s.index < 0 || s.index > this.examplesPerEpoch) {
      throw new GraftError(`DataLoader.setState: index ${s.index} outside the epoch [0, ${this.examplesPerEpoch}]`);
    }
    this.seed = checkSeed(s.seed, 'DataLoader.setState: seed');
    this.epoch = s.epoch;
    this.index = s.index;
  }

  /** The next batch, continuing into the next epoch when this one is done. */
  next(): B {
    if (this.examplesPerEpoch === 0) throw new GraftError(`DataLoader: no batches (${this.dataset.length} examples, batchSize ${this.batchSize}, dropLast ${this.dropLast})`);
    if (this.index >= this.examplesPerEpoch) {
      this.epoch++;
      this.index = 0;
    }
    return this.take();
  }

  /**
   * The remaining batches of the current epoch (of the next one when the current one is used up); when the
   * loop completes, the state points at the start of the following epoch.
   */
  *[Symbol.iterator](): Generator<B, void, undefined> {
    if (this.index >= this.examplesPerEpoch && this.examplesPerEpoch > 0) {
      this.epoch++;
      this.index = 0;
    }
    const epoch = this.epoch;
    while (this.epoch === epoch && this.index < this.examplesPerEpoch) yield this.take();
    if (this.epoch === epoch) {
      this.epoch++;
      this.index = 0;
    }
  }

  /** Build the batch at the current position and advance past it (before the caller sees it). */
  private take(): B {
    const order = this.order(this.epoch);
    const start = this.index;
    const end = Math.min(start + this.batchSize, this.examplesPerEpoch);
    const indices = order.slice(start, end);
    const epoch = this.epoch;
    this.index = end;
    const t = this.opts.transform;
    const examples: T[] = [];
    for (const i of indices) {
      const ex = this.dataset.get(i);
      examples.push(t ? t(ex, new Rng(deriveSeed(this.seed, STREAM_TRANSFORM, epoch, i)), i) : ex);
    }
    return this.opts.collate(examples, { rng: new Rng(deriveSeed(this.seed, STREAM_COLLATE, epoch, start)), epoch, start, indices });
  }
}
