// Dropout with a counter-based RNG (Philox-4x32-10): the mask is a pure function of (seed, offset + index),
// so backward regenerates it instead of storing it (shaders/dropout.wgsl). Host twin for tests.
import src from '../../shaders/dropout.wgsl';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { f32 } from '../runtime/params.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';

const K = { name: 'dropout', code: src };
const TWO32 = 4294967296;

interface MaskParams {
  thresh: number;
  dropAll: boolean;
  scale: number;
  seed: [number, number];
}

function check(op: string, p: number, seed: number, offset: number): MaskParams {
  if (!(p >= 0 && p <= 1)) throw new GraftError(`${op}: p must be in [0, 1], got ${p}`);
  for (const [name, v] of [['seed', seed], ['offset', offset]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new GraftError(`${op}: ${name} must be a non-negative safe integer, got ${v}`);
  }
  return {
    thresh: Math.min(TWO32 - 1, Math.floor(p * TWO32)),
    dropAll: p >= 1,
    scale: p >= 1 ? 0 : 1 / (1 - p),
    seed: [seed % TWO32, Math.floor(seed / TWO32)],
  };
}

/** A seed read at every replay of a captured step (see runtime/capture.ts): forward and backward share one. */
export type SeedSource = () => number;

function run(op: string, x: Tensor, p: number, seed: number, offset: number, seedAt?: SeedSource): Tensor {
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: expected an f32 tensor, got ${x.dtype} [${x.shape.join(', ')}]`);
  const m = check(op, p, seed, offset);
  const rt = x.rt;
  const y = Tensor.empty(rt, x.shape, 'f32');
  if (x.size === 0) return y;
  const g0 = Math.floor(offset / 4);
  const r = offset % 4;
  const threads = Math.ceil((x.size + r) / 4);
  const params = (s: [number, number]) => [x.size, g0 % TWO32, Math.floor(g0 / TWO32), r, s[0], s[1], m.thresh, m.dropAll ? 1 : 0, f32(m.scale)];
  rt.dispatch(K, {
    buffers: [x, y],
    params: params(m.seed),
    dynamic: seedAt ? () => params(check(op, p, seedAt(), offset).seed) : undefined,
    constants: { WG: 256 },
    workgroups: grid1d(threads, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return y;
}

/**
 * y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) from Philox(seed) at element offset + i (same
 * shape as x). Advance `offset` by x.size between calls that share a seed to get fresh masks.
 */
export function dropout(x: Tensor, p: number, seed: number, offset = 0, seedAt?: SeedSource): Tensor {
  return run('dropout', x, p, seed, offset, seedAt);
}

/**
 * dx = dy * keep / (1 - p) with the mask of the forward call that used the same (p, seed, offset).
 * `seedAt` (captured steps only): the seed each replay uses instead of `seed`, re-read per replay.
 */
export function dropoutBackward(dy: Tensor, p: number, seed: number, offset = 0, seedAt?: SeedSource): Tensor {
  return run('dropoutBackward', dy, p, seed, offset, seedAt);
}

// ---- host twin of the shader's RNG ----

function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const m1 = ah * bl;
  const m2 = al * bh;
  const mid = (ll >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (ah * bh + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox-4x32-10 (Salmon et al., SC'11): four 32-bit words from a 128-bit counter and 64-bit key. */
export function philox4x32(ctr: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0) as [number, number, number, number];
  let [k0, k1] = key.map((v) => v >>> 0) as [number, number];
  for (let i = 0; i < 10; i++) {
    const hi0 = mulhi(0xd2511f53, c0);
    const lo0 = Math.imul(0xd2511f53, c0) >>> 0;
    const hi1 = mulhi(0xcd9e8d57, c2);
    const lo1 = Math.imul(0xcd9e8d57, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** The keep mask (1 = kept) that dropout(x, p, seed, offset) applies to x's n elements. */
export function dropoutMaskHost(n: number, p: number, seed: number, offset = 0): Uint8Array {
  const m = check('dropoutMaskHost', p, seed, offset);
  const out = new Uint8Array(n);
  if (m.dropAll) return out;
  let g = -1;
  let words: number[] = [];
  for (let i = 0; i < n; i++) {
    const j = offset + i;
    const gj = Math.floor(j / 4);
    if (gj !== g) {
      g = gj;
      words = philox4x32([gj % TWO32, Math.floor(gj / TWO32), 0, 0], m.seed);
    }
    out[i] = words[j % 4]! >= m.thresh ? 1 : 0;
  }
  return out;
}
