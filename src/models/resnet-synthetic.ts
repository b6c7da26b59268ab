// Deterministic counter-based "weights" for ResNet parity tests: hash(tensor key, element index) -> float,
// reproduced bit-for-bit by scripts/fixtures/resnet_parity.py, so no weight file is ever committed.
import { numel } from '../tensor.js';

/** Chris Wellons' lowbias32 integer finaliser (uint32 -> uint32). */
export function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** 32-bit FNV-1a of a string's UTF-8 bytes: the seed of a tensor key. */
export function keySeed(key: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(key)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** Uniform in [0, 1) with 24 bits, from (seed, element index). */
export function hashUniform(seed: number, i: number): number {
  const h = lowbias32((lowbias32(i >>> 0) + Math.imul(seed, 0x9e3779b1)) >>> 0);
  return (h >>> 8) / 16777216;
}

/** n values lo + (hi - lo)·u(seed, i), rounded to float32. */
export function hashUniformArray(seed: number, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * hashUniform(seed, i);
  return out;
}

/**
 * The value range of a ResNet tensor, by key and shape, chosen so activations stay O(1) through
 * 50+ layers with BN running stats that do not match the data: BN gamma [0.3, 0.7], beta and conv /
 * fc bias [-0.1, 0.1], running_mean [-0.2, 0.2], running_var [0.5, 1.5], conv / fc weights
 * ±sqrt(6 / fan_in) (kaiming-uniform, variance 2 / fan_in).
 */
export function synthRange(key: string, shape: readonly number[]): [number, number] {
  if (key.endsWith('running_var')) return [0.5, 1.5];
  if (key.endsWith('running_mean')) return [-0.2, 0.2];
  if (shape.length === 1) return key.endsWith('weight') ? [0.3, 0.7] : [-0.1, 0.1];
  const fanIn = numel(shape.slice(1));
  const a = Math.sqrt(6 / fanIn);
  return [-a, a];
}

/** The deterministic tensor for `key` (see synthRange). */
export function synthTensor(key: string, shape: readonly number[]): Float32Array {
  const [lo, hi] = synthRange(key, shape);
  return hashUniformArray(keySeed(key), numel(shape), lo, hi);
}

/** A deterministic input batch in [-2, 2). */
export function synthInput(shape: readonly number[], name = 'input'): Float32Array {
  return hashUniformArray(keySeed(name), numel(shape), -2, 2);
}

/**
 * The range of a Keras weight by its TF.js name (`layer/kernel`, `layer/gamma`, ...), mirroring synthRange:
 * kernel ±sqrt(6 / fan_in) with fan_in = every dim but the last (HWIO / [in, out]), bias and beta
 * [-0.1, 0.1], gamma [0.3, 0.7], moving_mean [-0.2, 0.2], moving_variance [0.5, 1.5].
 */
export function synthKerasRange(name: string, shape: readonly number[]): [number, number] {
  const kind = name.slice(name.lastIndexOf('/') + 1);
  if (kind === 'moving_variance') return [0.5, 1.5];
  if (kind === 'moving_mean') return [-0.2, 0.2];
  if (kind === 'gamma') return [0.3, 0.7];
  if (kind === 'beta' || kind === 'bias') return [-0.1, 0.1];
  if (kind === 'kernel') {
    const a = Math.sqrt(6 / numel(shape.slice(0, -1)));
    return [-a, a];
  }
  throw new RangeError(`synthKerasRange: unknown weight kind '${kind}' in ${name}`);
}

/** The deterministic Keras weight `name` in its file layout (element index in HWIO / [in, out] order). */
export function synthKeras(name: string, shape: readonly number[]): Float32Array {
  const [lo, hi] = synthKerasRange(name, shape);
  return hashUniformArray(keySeed(name), numel(shape), lo, hi);
}
