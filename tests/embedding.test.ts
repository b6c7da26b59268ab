// Embedding gather parity with a CPU reference: repeated ids, awkward widths, batch dims, out-of-range ids.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { embedding } from '../src/kernels/embedding.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray, rng } from './helpers/rand.js';
import { embeddingRef } from './ref/nn.js';

const rt = useRuntime();

async function check(idShape: number[], v: number, d: number, seed: number, ids?: number[]): Promise<void> {
  const r = rt();
  const n = idShape.reduce((a, b) => a * b, 1);
  const next = rng(seed);
  const idv = ids ?? Array.from({ length: n }, () => Math.floor(next() * v));
  const tab = randArray(v * d, seed + 1, -1, 1);
  const idT = Tensor.from(r, idv, idShape, 'i32');
  const tT = Tensor.from(r, tab, [v, d]);
  const y = embedding(idT, tT);
  expect(y.shape).toEqual([...idShape, d]);
  // A gather is exact: atol 0, rtol 0.
  expectClose(await y.read(), embeddingRef(idv, tab, v, d), { atol: 0, rtol: 0 }, `embedding ids [${idShape}] table [${v}, ${d}]`);
  [idT, tT, y].forEach((t) => t.dispose());
}

describe('embedding', () => {
  it('D = 1, 3, 128, 768 with batch dims and repeated ids', async () => {
    let seed = 1;
    for (const d of [1, 3, 128, 768]) {
      await check([17], 5, d, seed++); // 17 ids over 5 rows: many repeats
      await check([2, 33], 1000, d, seed++);
    }
    await check([3], 4, 3, 50, [2, 2, 2]);
  });

  it('BERT-sized: 8 × 128 tokens from a 30522 × 128 table; a single id; a scalar id', async () => {
    await check([8, 128], 30522, 128, 60);
    await check([1], 1, 768, 61);
    await check([], 7, 3, 62, [6]);
  });

  it('out-of-range ids (negative or >= V) give zero rows', async () => {
    await check([6], 4, 5, 70, [0, -1, 3, 4, 1000000, -2147483648]);
  });

  it('rejects bad dtypes and table shapes with ShapeError naming both shapes', () => {
    const r = rt();
    const ids = Tensor.from(r, [0, 1], [2], 'i32');
    const fids = Tensor.from(r, [0, 1], [2]);
    const t3 = Tensor.zeros(r, [2, 3, 4]);
    const t2 = Tensor.zeros(r, [2, 3]);
    expect(() => embedding(fids, t2)).toThrow(ShapeError);
    expect(() => embedding(ids, t3)).toThrow(/table must be \[V, D\], got shape \[2, 3, 4\] \(ids \[2\]\)/);
    [ids, fids, t3, t2].forEach((t) => t.dispose());
  });
});
