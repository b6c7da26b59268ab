// Seeded random numbers (mulberry32) for parameter init and dropout seeds, so runs reproduce.
import { GraftError } from '../runtime/errors.js';

/** A small seeded generator: uniform, normal and 32-bit integer draws. */
export class Rng {
  private s: number;
  private spare: number | null = null;

  constructor(seed = 0) {
    if (!Number.isInteger(seed)) throw new GraftError(`Rng: seed must be an integer, got ${seed}`);
    this.s = seed >>> 0;
  }

  /** A uint32. */
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box–Muller, pairs cached). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return mean + std * v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** A seed for a child generator or a dropout call (53-bit safe integer). */
  seed(): number {
    return this.nextU32() * 2097152 + (this.nextU32() >>> 11);
  }
}

let global = new Rng(0);

/** The process-wide generator used when no Rng is passed (like torch's default generator). */
export function defaultRng(): Rng {
  return global;
}

/** Reset the process-wide generator (torch.manual_seed). */
export function manualSeed(seed: number): void {
  global = new Rng(seed);
}

/** An Rng from a seed, an existing Rng, or the default generator when omitted. */
export function toRng(r?: Rng | number): Rng {
  if (r === undefined) return global;
  return typeof r === 'number' ? new Rng(r) : r;
}
