// Deterministic embedding backward: CPU reference vs finite differences, GPU vs CPU with repeated ids, padding
// index and out-of-range ids; bit-exact against an in-order f32 sum and across runs.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { embeddingBackward } from '../src/kernels/embedding-backward.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray, rng } from './helpers/rand.js';
import { dot, embeddingBackwardRef, embeddingRef, numericGrad } from './ref/transformer-backward.js';

const rt = useRuntime();

/** ids drawn from a small "hot" set (heavy repetition) mixed with uniform ids in [0, V). */
function makeIds(N: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  const hot = [0, 1, Math.floor(V / 2), V - 1].map((v) => Math.min(V - 1, v));
  return Int32Array.from({ length: N }, () => (r() < 0.5 ? hot[Math.floor(r() * hot.length)]! : Math.floor(r() * V)));
}

/** Sum of dy rows per id in ascending position order, rounding to f32 after each add (what the GPU must do). */
function inOrderF32(ids: ArrayLike<number>, dy: Float32Array, V: number, D: number, pad?: number): Float32Array {
  const g = new Float32Array(V * D);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === pad || id < 0 || id >= V) continue;
    for (let d = 0; d < D; d++) g[id * D + d] = Math.fround(g[id * D + d]! + dy[i * D + d]!);
  }
  return g;
}

describe('embedding backward', () => {
  it('CPU reference matches central differences (repeated ids, padding index)', () => {
    const V = 6;
    const D = 3;
    const ids = [1, 4, 1, 0, 5, 1, 0];
    const table = Float64Array.from(randArray(V * D, 1));
    const dy = Float64Array.from(randArray(ids.length * D, 2));
    const num = numericGrad((t) => dot(dy, embeddingRef(t, ids, D)), table, [...Array(V * D).keys()]);
    expectClose(embeddingBackwardRef(ids, dy, V, D), num, { atol: 1e-9, rtol: 1e-6 });
    // padding_idx: forward unchanged, that row receives no gradient.
    const padded = embeddingBackwardRef(ids, dy, V, D, 1);
    for (let d = 0; d < D; d++) expect(padded[1 * D + d]).toBe(0);
    expectClose(padded.slice(0, D), num.slice(0, D), { atol: 1e-9, rtol: 1e-6 });
  });

  it('GPU matches the CPU reference and the in-order f32 sum bit for bit', async () => {
    const cases: [number[], number, number, number | undefined][] = [
      [[1], 1, 1, undefined],
      [[3], 5, 3, undefined],
      [[2, 17], 100, 128, 0],
      [[3, 33], 1000, 768, 1],
      [[4, 128], 30522, 128, 0],
      [[2, 3, 5], 7, 17, 3],
    ];
    for (const [idShape, V, D, pad] of cases) {
      const N = idShape.reduce((a, b) => a * b, 1);
      const ids = makeIds(N, V, N + V);
      const dy = randArray(N * D, N + D);
      const tids = Tensor.from(rt(), ids, idShape, 'i32');
      const tdy = Tensor.from(rt(), dy, [...idShape, D]);
      const g = embeddingBackward(tids, tdy, V, pad);
      expect(g.shape).toEqual([V, D]);
      const got = await g.read();
      const what = `ids [${idShape}] V=${V} D=${D} pad=${pad}`;
      expectClose(got, embeddingBackwardRef(ids, dy, V, D, pad), { atol: 1e-5, rtol: 1e-5 }, what);
      expectClose(got, inOrderF32(ids, dy, V, D, pad), { atol: 0, rtol: 0 }, `${what} (in-order f32)`);
      for (const t of [tids, tdy, g]) t.dispose();
    }
  });

  it('is bit-identical across runs with one id repeated a thousand times', async () => {
    const N = 2000;
    const V = 50;
    const D = 33;
    const r = rng(5);
    const ids = Int32Array.from({ length: N }, (_, i) => (i % 2 === 0 ? 7 : Math.floor(r() * V)));
    const dy = randArray(N * D, 6, -100, 100); // wide range: sum order changes the rounding
    const tids = Tensor.from(rt(), ids, [N], 'i32');
    const tdy = Tensor.from(rt(), dy, [N, D]);
    const bits = async () => {
      const g = embeddingBackward(tids, tdy, V);
      const b = Array.from(new Uint32Array((await g.read()).buffer));
      g.dispose();
      return b;
    };
    const a = await bits();
    expect(await bits()).toEqual(a);
    expect(await bits()).toEqual(a);
    expect(new Uint32Array(Float32Array.from(inOrderF32(ids, dy, V, D)).buffer)).toEqual(new Uint32Array(Float32Array.from(a.map((u) => new Float32Array(new Uint32Array([u]).buffer)[0]!)).buffer));
    tids.dispose();
    tdy.dispose();
  });

  it('ignores ids outside [0, V) and the padding index', async () => {
    const V = 4;
    const D = 2;
    const ids = [0, -1, 3, 4, 2, 2, 100];
    const dy = randArray(ids.length * D, 7);
    const tids = Tensor.from(rt(), ids, [ids.length], 'i32');
    const tdy = Tensor.from(rt(), dy, [ids.length, D]);
    const g = embeddingBackward(tids, tdy, V, 2);
    expectClose(await g.read(), embeddingBackwardRef(ids, dy, V, D, 2), { atol: 0, rtol: 0 });
    for (const t of [tids, tdy, g]) t.dispose();
  });

  it('no positions (or only padding) give an all-zero table', async () => {
    const dyE = Tensor.from(rt(), [], [0, 3]);
    const idsE = Tensor.from(rt(), [], [0], 'i32');
    const gE = embeddingBackward(idsE, dyE, 5);
    expect(Array.from(await gE.read())).toEqual(new Array(15).fill(0));
    const idsP = Tensor.from(rt(), [2, 2], [2], 'i32');
    const dyP = Tensor.from(rt(), [1, 2, 3, 4, 5, 6], [2, 3]);
    const gP = embeddingBackward(idsP, dyP, 5, 2);
    expect(Array.from(await gP.read())).toEqual(new Array(15).fill(0));
    for (const t of [dyE, idsE, gE, idsP, dyP, gP]) t.dispose();
  });

  it('rejects bad shapes and dtypes', () => {
    const ids = Tensor.from(rt(), [0, 1, 2], [3], 'i32');
    const idsF = Tensor.from(rt(), [0, 1, 2], [3]);
    const dy = Tensor.from(rt(), randArray(6, 1), [3, 2]);
    const dyBad = Tensor.from(rt(), randArray(6, 1), [2, 3]);
    expect(() => embeddingBackward(idsF, dy, 5)).toThrow(/i32/);
    expect(() => embeddingBackward(ids, dyBad, 5)).toThrow(ShapeError);
    expect(() => embeddingBackward(ids, dy, 0)).toThrow(/vocabSize/);
    for (const t of [ids, idsF, dy, dyBad]) t.dispose();
  });
});
