// Seeded PRNG (mulberry32) and seed derivation, so every shuffle, split and augmentation is reproducible.
import { GraftError } from '../runtime/errors.js';

/** murmur3's 32-bit finaliser: a bijective avalanche mix of one u32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A seed must be an integer; it is taken modulo 2^32 (negative seeds wrap). */
export function checkSeed(seed: number, what = 'seed'): number {
  if (!Number.isInteger(seed)) throw new GraftError(`${what} must be an integer, got ${seed}`);
  return seed >>> 0;
}

/**
 * An independent u32 seed for the stream named by `keys` (e.g. (seed, epoch), (seed, epoch, example)):
 * the same inputs always give the same seed, changing any key gives an unrelated one.
 */
export function deriveSeed(seed: number, ...keys: number[]): number {
  let h = fmix32(checkSeed(seed) ^ 0x9e3779b9);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (!Number.isInteger(k)) throw new GraftError(`deriveSeed: key ${i} must be an integer, got ${k}`);
    // Keys may exceed 2^32 (large example counters): fold the high part in as well.
    const hi = Math.floor(k / 4294967296) >>> 0;
    h = fmix32(h ^ fmix32((k >>> 0) + Math.imul(i + 1, 0x632be5ab)));
    if (hi !== 0) h = fmix32(h ^ hi ^ 0x5bd1e995);
  }
  return h;
}

/** mulberry32: a small, fast 32-bit generator with period 2^32; plenty for shuffles and augmentation. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = checkSeed(seed);
  }

  /** A generator for the stream (seed, ...keys); see deriveSeed. */
  static derive(seed: number, ...keys: number[]): Rng {
    return new Rng(deriveSeed(seed, ...keys));
  }

  /** Uniform u32. */
  uint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling), for 1 <= n <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new GraftError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    let x = this.uint32();
    while (x >= limit) x = this.uint32();
    return x % n;
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.float() < p;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<A extends { length: number; [i: number]: unknown }>(a: A): A {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}
