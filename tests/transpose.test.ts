// Parity of transpose / copy / slice / concat with plain-loop CPU references (exact: they only move bits).
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { FlatArena } from '../src/runtime/arena.js';
import { ShapeError } from '../src/runtime/errors.js';
import { concat, copy, slice, transpose } from '../src/kernels/transpose.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { concatRef, sliceRef, transposeRef } from './ref/transpose.js';

const rt = useRuntime();
const EXACT = { atol: 0, rtol: 0 };
const numel = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  return out;
}

async function checkTranspose(shape: number[], perm: number[] | undefined, seed: number): Promise<void> {
  const data = randArray(numel(shape), seed, -5, 5);
  const x = Tensor.from(rt(), data, shape);
  const y = transpose(x, perm);
  const p = (perm ?? [...shape.keys()].reverse()).map((a) => (a < 0 ? a + shape.length : a));
  const ref = transposeRef(data, shape, p);
  expect(y.shape).toEqual(ref.shape);
  expectClose(await y.read(), ref.data, EXACT, `transpose [${shape}] perm [${perm ?? 'default'}]`);
  x.dispose();
  y.dispose();
}

describe('transpose', () => {
  it('rank 2 over awkward sizes (default perm reverses axes)', async () => {
    for (const [r, c] of [[1, 1], [1, 17], [3, 1], [3, 17], [33, 255], [255, 33], [1000, 3], [17, 1030]]) {
      await checkTranspose([r!, c!], undefined, r! * c!);
      await checkTranspose([r!, c!], [1, 0], r! + c!);
      await checkTranspose([r!, c!], [0, 1], r! - c!);
    }
  });

  it('every permutation of rank 3 and 4', async () => {
    for (const p of permutations(3)) await checkTranspose([3, 17, 5], p, 3);
    for (const p of permutations(4)) await checkTranspose([2, 3, 17, 5], p, 4);
  });

  it('rank 4 NCHW <-> NHWC, attention head splits, rank 5, negative axes, size-1 dims', async () => {
    await checkTranspose([2, 33, 7, 9], [0, 2, 3, 1], 1);
    await checkTranspose([2, 7, 9, 33], [0, 3, 1, 2], 2);
    await checkTranspose([2, 17, 4, 16], [0, 2, 1, 3], 3);
    await checkTranspose([2, 3, 4, 5, 6], [4, 0, 3, 1, 2], 5);
    await checkTranspose([2, 3, 4, 5, 6], [0, 1, 2, 4, 3], 6);
    await checkTranspose([3, 1, 17, 1, 5], [-1, 1, -3, 0, 3], 7);
    await checkTranspose([1, 255, 1], [2, 1, 0], 8);
    await checkTranspose([2, 3, 2, 3, 2, 3, 2], [0, 1, 2, 3, 6, 4, 5], 9); // rank 7, merges to 4 dims
  });

  it('i32 tensors and a launch over 16M elements (2-D workgroup grid)', async () => {
    const xi = Tensor.from(rt(), Int32Array.from({ length: 60 }, (_, i) => i * 7 - 100), [3, 4, 5], 'i32');
    const yi = transpose(xi, [2, 0, 1]);
    expect(yi.dtype).toBe('i32');
    expect(Array.from(await yi.readInt())).toEqual(Array.from(transposeRef(Array.from(await xi.readInt()), [3, 4, 5], [2, 0, 1]).data));
    [xi, yi].forEach((t) => t.dispose());
    const R = 3;
    const C = 5_592_406; // R·C = 16,777,218 > 65535 workgroups of 256
    const data = new Float32Array(R * C);
    for (let i = 0; i < data.length; i++) data[i] = i;
    const x = Tensor.from(rt(), data, [R, C]);
    const y = transpose(x);
    const got = await y.read();
    let bad = -1;
    for (let j = 0; j < C && bad < 0; j++) for (let i = 0; i < R; i++) if (got[j * R + i] !== data[i * C + j]) bad = j * R + i;
    expect(bad, `first mismatch at ${bad}`).toBe(-1);
    [x, y].forEach((t) => t.dispose());
  });

  it('rejects bad permutations, more than 6 unmergeable dims, and f16', () => {
    const x = Tensor.from(rt(), randArray(6, 1), [2, 3]);
    expect(() => transpose(x, [0, 0])).toThrow(ShapeError);
    expect(() => transpose(x, [0])).toThrow(/not a permutation.*\[2, 3\]/);
    expect(() => transpose(x, [0, 2])).toThrow(ShapeError);
    x.dispose();
    // Rank 7 with no axes that stay together is refused (the output buffer is returned to the pool).
    const z = Tensor.from(rt(), randArray(128, 2), [2, 2, 2, 2, 2, 2, 2]);
    const live = rt().pool.stats.live;
    expect(() => transpose(z)).toThrow(/7 dims after merging/);
    expect(rt().pool.stats.live).toBe(live);
    z.dispose();
    if (rt().features.f16) {
      const h = Tensor.from(rt(), [1, 2, 3, 4], [2, 2], 'f16');
      expect(() => transpose(h)).toThrow(/4-byte dtypes/);
      h.dispose();
    }
  });
});

describe('arena views', () => {
  it('transpose, slice, concat and copy read from and honour non-zero byte offsets', async () => {
    const arena = new FlatArena(rt(), [[3], [5, 17], [2, 17]]);
    const [, a, b] = arena.tensors as [Tensor, Tensor, Tensor];
    const ad = randArray(85, 1);
    const bd = randArray(34, 2);
    a.write(ad);
    b.write(bd);
    expect(a.byteOffset).toBeGreaterThan(0);
    const t = transpose(a);
    expectClose(await t.read(), transposeRef(ad, [5, 17], [1, 0]).data, EXACT);
    const s = slice(a, [1, 0], [3, 17]);
    expectClose(await s.read(), sliceRef(ad, [5, 17], [1, 0], [3, 17]), EXACT);
    const c = concat([a, b], 0);
    expectClose(await c.read(), concatRef([{ data: ad, shape: [5, 17] }, { data: bd, shape: [2, 17] }], 0).data, EXACT);
    const d = copy(b);
    expectClose(await d.read(), bd, EXACT);
    [t, s, c, d].forEach((x) => x.dispose());
    arena.dispose();
  });
});

describe('copy', () => {
  it('copies into independent storage', async () => {
    for (const n of [1, 3, 17, 1001]) {
      const data = randArray(n, n);
      const x = Tensor.from(rt(), data, [n]);
      const v = x.reshape([1, n]);
      const y = copy(v);
      expect(y.shape).toEqual([1, n]);
      expect(y.buffer).not.toBe(x.buffer);
      x.dispose();
      v.dispose();
      expectClose(await y.read(), data, EXACT);
      y.dispose();
    }
  });
});

describe('slice', () => {
  it('boxes of every kind, including contiguous ones and negative indices', async () => {
    const cases: [number[], number[], number[]][] = [
      [[17], [3], [16]],
      [[1000], [0], [1000]],
      [[255, 33], [10, 0], [20, 33]], // contiguous rows: one buffer copy
      [[255, 33], [0, 5], [255, 6]], // one column
      [[3, 17, 5], [1, 2, 1], [3, 17, 4]],
      [[2, 3, 17, 5], [1, 0, 4, 0], [2, 3, 9, 5]],
      [[2, 3, 17, 5], [0, 1, 1, 1], [2, 2, 16, 4]],
      [[2, 3, 4, 5, 6], [1, 1, 1, 1, 1], [2, 3, 4, 5, 6]],
      [[4, 17], [-3, -17], [-1, 17]],
      [[4, 17], [2, 5], [2, 9]], // empty box
    ];
    for (const [shape, starts, ends] of cases) {
      const data = randArray(numel(shape), numel(shape) + 1);
      const x = Tensor.from(rt(), data, shape);
      const y = slice(x, starts, ends);
      const s = starts.map((v, i) => (v < 0 ? v + shape[i]! : v));
      const e = ends.map((v, i) => (v < 0 ? v + shape[i]! : v));
      expect(y.shape).toEqual(s.map((v, i) => e[i]! - v));
      expectClose(await y.read(), sliceRef(data, shape, s, e), EXACT, `slice [${shape}] ${starts}:${ends}`);
      x.dispose();
      y.dispose();
    }
  });

  it('throws ShapeError for boxes outside the tensor', () => {
    const x = Tensor.from(rt(), randArray(12, 1), [3, 4]);
    expect(() => slice(x, [0, 0], [4, 4])).toThrow(ShapeError);
    expect(() => slice(x, [2, 0], [1, 4])).toThrow(/\[3, 4\]/);
    expect(() => slice(x, [0], [3])).toThrow(ShapeError);
    x.dispose();
  });
});

describe('concat', () => {
  it('along every axis, with several inputs of different lengths', async () => {
    const cases: [number[][], number][] = [
      [[[3], [17], [1]], 0],
      [[[3, 17], [5, 17]], 0], // contiguous blocks: buffer copies
      [[[3, 17], [3, 1], [3, 33]], 1],
      [[[2, 3, 5], [2, 4, 5], [2, 1, 5]], 1],
      [[[2, 3, 5], [2, 3, 7]], -1],
      [[[2, 3, 4, 5], [2, 3, 4, 5]], 2],
      [[[1, 255], [1, 255]], 0],
      [[[4, 0, 3], [4, 2, 3]], 1], // an empty input
    ];
    let seed = 1;
    for (const [shapes, axis] of cases) {
      const inputs = shapes.map((s) => ({ data: randArray(numel(s), seed++), shape: s }));
      const ts = inputs.map((i) => Tensor.from(rt(), i.data, i.shape));
      const y = concat(ts, axis);
      const ref = concatRef(inputs, axis < 0 ? axis + shapes[0]!.length : axis);
      expect(y.shape).toEqual(ref.shape);
      expectClose(await y.read(), ref.data, EXACT, `concat ${JSON.stringify(shapes)} axis ${axis}`);
      [...ts, y].forEach((t) => t.dispose());
    }
  });

  it('throws ShapeError naming mismatched shapes', () => {
    const a = Tensor.from(rt(), randArray(12, 1), [3, 4]);
    const b = Tensor.from(rt(), randArray(10, 2), [2, 5]);
    expect(() => concat([a, b], 0)).toThrow(/\[2, 5\].*\[3, 4\]/);
    expect(() => concat([a, b], 2)).toThrow(ShapeError);
    expect(() => concat([], 0)).toThrow(ShapeError);
    [a, b].forEach((t) => t.dispose());
  });
});
