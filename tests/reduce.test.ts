// Parity of reduce (sum / mean / max / min over any axis set), argmax and sumTo with float64 CPU references.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { FlatArena } from '../src/runtime/arena.js';
import { ShapeError } from '../src/runtime/errors.js';
import { argmax, reduce, sumTo, type ReduceOp } from '../src/kernels/reduce.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { absSumRef, argmaxRef, reduceRef } from './ref/reduce.js';

const rt = useRuntime();
const OPS: ReduceOp[] = ['sum', 'mean', 'max', 'min'];
const U = 2 ** -24; // f32 unit roundoff

/**
 * Rounding bound for an f32 sum whose longest accumulation chain has `depth` additions:
 * |got - exact| ≤ depth·u·Σ|x| (Higham, recursive/pairwise summation), plus one rounding of the
 * result (and one of the mean's division). A pass of the kernel chains ≤ 32 (block) + 512/32
 * (blocks per thread) + 8 (tree) = 56 additions, and every reduction here takes at most two passes
 * (a third needs over 67M elements per output): depth 128 covers them with room.
 */
function expectSum(got: Float32Array, ref: Float64Array, absSum: Float64Array, div: number, what: string): void {
  const depth = 128;
  const scaled = (v: ArrayLike<number>) => Float64Array.from(v, (x, i) => x / Math.max(absSum[i]! / div, 1e-30));
  // Compare in units of Σ|x| / div: |Δ| ≤ depth·u + 2u·|ref| / (Σ|x| / div) ≤ (depth + 2)·u.
  expectClose(scaled(got), scaled(ref), { atol: (depth + 2) * U, rtol: 0 }, what);
}

async function check(shape: number[], axes: number[], op: ReduceOp, keepDims: boolean, data: Float32Array, x: Tensor): Promise<void> {
  const y = reduce(x, op, axes, keepDims);
  const norm = axes.map((a) => (a < 0 ? a + shape.length : a));
  const ref = reduceRef(op, data, shape, norm, keepDims);
  expect(y.shape, `${op} ${shape} axes ${axes}`).toEqual(ref.shape);
  const got = await y.read();
  const what = `${op} [${shape}] axes [${axes}]${keepDims ? ' keepDims' : ''}`;
  if (op === 'max' || op === 'min') expectClose(got, ref.data, { atol: 0, rtol: 0 }, what);
  else {
    const R = shape.reduce((s, d, i) => (norm.includes(i) ? s * d : s), 1);
    expectSum(got, ref.data, absSumRef(data, shape, norm), op === 'mean' ? R : 1, what);
  }
  y.dispose();
}

/** Every single axis, every pair of axes, and all axes (as the default and as an explicit list). */
function axisSets(rank: number): (number[] | undefined)[] {
  const sets: (number[] | undefined)[] = [undefined];
  for (let i = 0; i < rank; i++) sets.push([i]);
  for (let i = 0; i < rank; i++) for (let j = i + 1; j < rank; j++) sets.push([i, j]);
  if (rank > 2) sets.push([...Array(rank).keys()]);
  return sets;
}

describe('reduce', () => {
  const SHAPES = [[1], [3], [17], [1000], [3, 17], [255, 33], [33, 255], [2, 3, 33], [4, 1, 17], [3, 5, 7, 9], [2, 3, 4, 5, 6]];
  for (const shape of SHAPES) {
    it(`every op over single axes, pairs and all axes of [${shape}]`, async () => {
      const n = shape.reduce((s, d) => s * d, 1);
      const data = randArray(n, n + shape.length, -2, 2);
      const x = Tensor.from(rt(), data, shape);
      for (const axes of axisSets(shape.length)) {
        for (const op of OPS) {
          const all = axes ?? [...shape.keys()];
          const y = reduce(x, op, axes);
          const ref = reduceRef(op, data, shape, all);
          expect(y.shape).toEqual(ref.shape);
          const got = await y.read();
          const what = `${op} [${shape}] axes ${axes ? `[${axes}]` : '(default)'}`;
          if (op === 'max' || op === 'min') expectClose(got, ref.data, { atol: 0, rtol: 0 }, what);
          else {
            const R = all.reduce((s, a) => s * shape[a]!, 1);
            expectSum(got, ref.data, absSumRef(data, shape, all), op === 'mean' ? R : 1, what);
          }
          y.dispose();
        }
      }
      x.dispose();
    });
  }

  it('keepDims and negative axes', async () => {
    const shape = [3, 4, 17, 5];
    const data = randArray(3 * 4 * 17 * 5, 77, -3, 3);
    const x = Tensor.from(rt(), data, shape);
    for (const op of OPS) {
      await check(shape, [-1], op, true, data, x);
      await check(shape, [-2, 0], op, true, data, x);
      await check(shape, [1, -1], op, false, data, x);
      await check(shape, [-4, -3, -2, -1], op, true, data, x);
    }
    const y = reduce(x, 'sum', undefined, true);
    expect(y.shape).toEqual([1, 1, 1, 1]);
    [x, y].forEach((t) => t.dispose());
  });

  it('rank 6 with three separate reduced runs', async () => {
    const shape = [2, 3, 4, 3, 2, 5];
    const data = randArray(720, 6, -1, 1);
    const x = Tensor.from(rt(), data, shape);
    for (const op of OPS) {
      await check(shape, [1, 3, 5], op, false, data, x);
      await check(shape, [0, 2, 4], op, true, data, x);
    }
    x.dispose();
  });

  it('sums 1,000,000 values within the f32 rounding bound of a float64 sum', async () => {
    const n = 1_000_000;
    for (const [lo, hi, seed] of [[0, 1, 1], [-1, 1, 2]] as const) {
      const data = randArray(n, seed, lo, hi);
      const x = Tensor.from(rt(), data, [n]);
      const s = reduce(x, 'sum');
      const m = reduce(x, 'mean');
      const ref = reduceRef('sum', data, [n], [0]).data;
      const abs = absSumRef(data, [n], [0]);
      const got = await s.read();
      expectSum(got, ref, abs, 1, `sum of 1e6 in [${lo}, ${hi})`);
      expectSum(await m.read(), Float64Array.of(ref[0]! / n), abs, n, `mean of 1e6 in [${lo}, ${hi})`);
      // For positive data the bound is relative: (128 + 2)·2^-24 ≈ 7.7e-6.
      if (lo === 0) expect(Math.abs(got[0]! - ref[0]!) / ref[0]!).toBeLessThan(130 * U);
      [x, s, m].forEach((t) => t.dispose());
    }
  });

  it('long reductions that split into chunks, along inner and outer axes', async () => {
    for (const [shape, axes] of [
      [[100_000, 3], [0]],
      [[3, 100_000], [1]],
      [[2, 50_000, 3], [1]],
      [[40_000, 7], [0, 1]],
      [[4096, 96], [0]],
    ] as [number[], number[]][]) {
      const n = shape.reduce((s, d) => s * d, 1);
      const data = randArray(n, n, -1, 1);
      const x = Tensor.from(rt(), data, shape);
      for (const op of OPS) await check(shape, axes, op, false, data, x);
      x.dispose();
    }
  });

  it('reads arena views at non-zero byte offsets', async () => {
    const arena = new FlatArena(rt(), [[3], [33, 17]]);
    const x = arena.tensors[1]!;
    const data = randArray(33 * 17, 12, -1, 1);
    x.write(data);
    expect(x.byteOffset).toBeGreaterThan(0);
    for (const op of OPS) for (const axes of [[0], [1], [0, 1]]) await check([33, 17], axes, op, false, data, x);
    const y = argmax(x, 1);
    expect(Array.from(await y.readInt())).toEqual(Array.from(argmaxRef(data, [33, 17], 1)));
    y.dispose();
    arena.dispose();
  });

  it('throws ShapeError for bad axes and too many runs', () => {
    const x = Tensor.from(rt(), randArray(24, 1), [2, 3, 4]);
    expect(() => reduce(x, 'sum', 3)).toThrow(ShapeError);
    expect(() => reduce(x, 'sum', -4)).toThrow(/out of range.*\[2, 3, 4\]/);
    expect(() => reduce(x, 'sum', [1, -2])).toThrow(/repeated/);
    // Size-1 axes do not count as runs: reducing only them is a reshape.
    const z = Tensor.from(rt(), randArray(16, 2), [2, 1, 2, 1, 2, 1, 2, 1]);
    const zr = reduce(z, 'sum', [1, 3, 5, 7]);
    expect(zr.shape).toEqual([2, 2, 2, 2]);
    zr.dispose();
    const w = Tensor.from(rt(), randArray(128, 3), [2, 2, 2, 2, 2, 2, 2]);
    expect(() => reduce(w, 'sum', [0, 2, 4, 6])).toThrow(/at most 3/);
    const i = Tensor.from(rt(), [1, 2], [2], 'i32');
    expect(() => reduce(i, 'sum')).toThrow(ShapeError);
    [x, z, w, i].forEach((t) => t.dispose());
  });
});

describe('argmax', () => {
  it('first maximum along every axis, with ties', async () => {
    for (const shape of [[1], [17], [1000], [3, 17], [255, 33], [2, 3, 33], [3, 5, 7, 9], [2, 3, 1, 5, 4]]) {
      const n = shape.reduce((s, d) => s * d, 1);
      // Values quantised to quarters so maxima repeat.
      const data = randArray(n, n + 11, -2, 2).map((v) => Math.round(v * 4) / 4);
      const x = Tensor.from(rt(), data, shape);
      for (let axis = -shape.length; axis < shape.length; axis++) {
        const a = axis < 0 ? axis + shape.length : axis;
        const y = argmax(x, axis);
        expect(y.dtype).toBe('i32');
        expect(y.shape).toEqual(shape.filter((_, i) => i !== a));
        expect(Array.from(await y.readInt()), `argmax [${shape}] axis ${axis}`).toEqual(Array.from(argmaxRef(data, shape, a)));
        y.dispose();
      }
      x.dispose();
    }
  });

  it('long rows and few outputs', async () => {
    for (const shape of [[200_000], [2, 70_000], [50_000, 2]]) {
      const n = shape.reduce((s, d) => s * d, 1);
      const data = randArray(n, n, -1, 1).map((v) => Math.round(v * 1000) / 1000);
      const x = Tensor.from(rt(), data, shape);
      for (let a = 0; a < shape.length; a++) {
        const y = argmax(x, a);
        expect(Array.from(await y.readInt()), `argmax [${shape}] axis ${a}`).toEqual(Array.from(argmaxRef(data, shape, a)));
        y.dispose();
      }
      x.dispose();
    }
  });
});

describe('sumTo', () => {
  it('sums a broadcast result back to each operand shape', async () => {
    const shape = [2, 3, 17, 5];
    const data = randArray(2 * 3 * 17 * 5, 5, -1, 1);
    const x = Tensor.from(rt(), data, shape);
    const targets: [number[], number[]][] = [
      [[5], [0, 1, 2]],
      [[17, 1], [0, 1, 3]],
      [[3, 1, 1], [0, 2, 3]],
      [[1], [0, 1, 2, 3]],
      [[2, 1, 17, 5], [1]],
      [[1, 3, 1, 5], [0, 2]],
      [[], [0, 1, 2, 3]],
    ];
    for (const [target, axes] of targets) {
      const y = sumTo(x, target);
      expect(y.shape).toEqual(target);
      const ref = reduceRef('sum', data, shape, axes);
      expectSum(await y.read(), ref.data, absSumRef(data, shape, axes), 1, `sumTo [${target}]`);
      y.dispose();
    }
    const same = sumTo(x, shape);
    expectClose(await same.read(), data, { atol: 0, rtol: 0 });
    same.dispose();
    expect(() => sumTo(x, [4])).toThrow(ShapeError);
    expect(() => sumTo(x, [3, 17, 5, 1, 1])).toThrow(/\[2, 3, 17, 5\].*\[3, 17, 5, 1, 1\]/);
    expect(() => sumTo(x, [2, 17, 5])).toThrow(ShapeError);
    x.dispose();
  });
});
