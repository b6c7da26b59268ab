// Pooling backward: CPU references vs float64 finite differences, then GPU max/avg/global backward vs the CPU reference.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { ShapeError } from '../src/runtime/errors.js';
import { avgPool2dBackward, globalAvgPool2dBackward, maxPool2dBackward, type PoolOpts } from '../src/kernels/pool2d-backward.js';
import {
  avgPool2dBackwardRef, avgPool2dRef, dot, finiteDiff, globalAvgPool2dBackwardRef, globalAvgPool2dRef,
  maxPool2dBackwardRef, maxPool2dRef, poolG, rand64,
} from './ref/cnn-backward.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray, rng } from './helpers/rand.js';

const rt = useRuntime();

type S4 = [number, number, number, number];
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Distinct values (a shuffled ramp with spacing 1/n ≫ the FD step), so no max-pool window has a near tie. */
function distinct(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const v = Float64Array.from({ length: n }, (_, i) => (i - n / 2) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return v;
}

describe('pooling CPU reference vs finite differences (float64)', () => {
  const x5: S4 = [2, 3, 5, 5];
  const tol = { atol: 1e-8, rtol: 1e-6 };
  const maxCases: { name: string; x: S4; o: PoolOpts }[] = [
    { name: 'kernel 2 (stride 2)', x: x5, o: { kernel: 2 } },
    { name: 'kernel 3 stride 2 padding 1', x: x5, o: { kernel: 3, stride: 2, padding: 1 } },
    { name: 'kernel 3 stride 1 dilation 2 padding 2', x: x5, o: { kernel: 3, stride: 1, dilation: 2, padding: 2 } },
    { name: 'kernel 2 stride 2 ceil mode', x: x5, o: { kernel: 2, ceilMode: true } },
    { name: 'rect kernel [3, 2] stride [2, 1] padding [1, 0]', x: x5, o: { kernel: [3, 2], stride: [2, 1], padding: [1, 0] } },
  ];
  for (const c of maxCases) {
    it(`max pool: ${c.name}`, () => {
      const x = distinct(numel(c.x), 1);
      const G = rand64(numel(maxPool2dRef(x, c.x, c.o).shape), 2);
      const fd = finiteDiff(x, () => dot(maxPool2dRef(x, c.x, c.o).y, G));
      expectClose(maxPool2dBackwardRef(G, x, c.x, c.o), fd, tol);
    });
  }
  const avgCases: { name: string; x: S4; o: PoolOpts }[] = [
    { name: 'kernel 3 stride 2 padding 1, count pad', x: x5, o: { kernel: 3, stride: 2, padding: 1 } },
    { name: 'kernel 3 stride 2 padding 1, exclude pad', x: x5, o: { kernel: 3, stride: 2, padding: 1, countIncludePad: false } },
    { name: 'ceil mode, window past the padding (6×6 k3 s2 p1)', x: [2, 3, 6, 6], o: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
    { name: 'ceil mode, exclude pad', x: [2, 3, 6, 6], o: { kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false } },
    { name: 'kernel 2 stride 1 dilation 2', x: x5, o: { kernel: 2, stride: 1, dilation: 2 } },
  ];
  for (const c of avgCases) {
    it(`avg pool: ${c.name}`, () => {
      const x = rand64(numel(c.x), 3);
      const G = rand64(numel(avgPool2dRef(x, c.x, c.o).shape), 4);
      const fd = finiteDiff(x, () => dot(avgPool2dRef(x, c.x, c.o).y, G));
      expectClose(avgPool2dBackwardRef(G, c.x, c.o), fd, tol);
    });
  }
  it('avg pool divisor follows PyTorch: padding taps count, taps past the padding do not', () => {
    // 6×6, k3 s2 p1 ceil: output 4×4; the last window covers padded rows 6..8 of 0..7, so 2 rows count.
    const xs: S4 = [1, 1, 6, 6];
    const ones = new Float64Array(36).fill(1);
    const inc = avgPool2dRef(ones, xs, { kernel: 3, stride: 2, padding: 1, ceilMode: true }).y;
    expect(inc[0]).toBeCloseTo(4 / 9, 12); // corner: 2×2 real taps of a 3×3 window
    expect(inc[15]).toBeCloseTo(1 / 4, 12); // last: 1×1 real tap of a 2×2 counted window (one row/col is padding)
    const exc = avgPool2dRef(ones, xs, { kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }).y;
    expect(Array.from(exc).every((v) => Math.abs(v - 1) < 1e-12)).toBe(true);
  });
  it('global average pool', () => {
    const x = rand64(numel(x5), 5);
    const G = rand64(6, 6);
    const fd = finiteDiff(x, () => dot(globalAvgPool2dRef(x, x5), G));
    expectClose(globalAvgPool2dBackwardRef(G, x5), fd, tol);
  });
});

describe('pooling backward GPU vs CPU reference', () => {
  const cases: { name: string; x: S4; o: PoolOpts }[] = [
    { name: '1×1 input, kernel 1', x: [1, 1, 1, 1], o: { kernel: 1 } },
    { name: 'N3 C3 17×17 k2 s2 (drops last row/col)', x: [3, 3, 17, 17], o: { kernel: 2 } },
    { name: 'ResNet stem pool k3 s2 p1, C17 33×33', x: [1, 17, 33, 33], o: { kernel: 3, stride: 2, padding: 1 } },
    { name: 'k3 s1 p2 dilation 2, 33×5', x: [3, 3, 33, 5], o: { kernel: 3, stride: 1, padding: 2, dilation: 2 } },
    { name: 'k3 s2 ceil mode, 17×17', x: [3, 3, 17, 17], o: { kernel: 3, stride: 2, ceilMode: true } },
    { name: 'k3 s2 p1 ceil, window past padding, 6×6', x: [3, 17, 6, 6], o: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
    { name: 'rect k[2,3] s[1,2] p[1,1] ceil, 5×33', x: [1, 3, 5, 33], o: { kernel: [2, 3], stride: [1, 2], padding: [1, 1], ceilMode: true } },
    { name: 'k5 s3 p2, 33×33', x: [3, 3, 33, 33], o: { kernel: 5, stride: 3, padding: 2 } },
    { name: 'stride 3 > kernel 2 (gaps), 17×5', x: [3, 1, 17, 5], o: { kernel: 2, stride: 3 } },
  ];
  cases.forEach((c, ci) => {
    it(c.name, async () => {
      const r = rt();
      const xd = randArray(numel(c.x), 10 + ci);
      const ys = maxPool2dRef(xd, c.x, c.o).shape;
      const dyd = randArray(numel(ys), 50 + ci);
      const x = Tensor.from(r, xd, c.x);
      const dy = Tensor.from(r, dyd, ys);
      const dxMax = maxPool2dBackward(dy, x, c.o);
      expectClose(await dxMax.read(), maxPool2dBackwardRef(dyd, xd, c.x, c.o), { atol: 1e-6, rtol: 1e-6 }, 'max');
      for (const countIncludePad of [true, false]) {
        const o = { ...c.o, countIncludePad };
        const dxAvg = avgPool2dBackward(dy, c.x, o);
        expectClose(await dxAvg.read(), avgPool2dBackwardRef(dyd, c.x, o), { atol: 1e-6, rtol: 1e-5 }, `avg (countIncludePad ${countIncludePad})`);
        dxAvg.dispose();
      }
      for (const t of [x, dy, dxMax]) t.dispose();
    });
  });

  it('max pool with many ties routes each window to its first max (row-major), like PyTorch', async () => {
    const r = rt();
    const xs: S4 = [3, 17, 17, 17];
    const o: PoolOpts = { kernel: 3, stride: 2, padding: 1 };
    const xd = Float32Array.from(randArray(numel(xs), 77), (v) => Math.floor((v + 1) * 1.5)); // values 0, 1, 2
    const ys = maxPool2dRef(xd, xs, o).shape;
    const dyd = randArray(numel(ys), 78);
    const x = Tensor.from(r, xd, xs);
    const dy = Tensor.from(r, dyd, ys);
    const dx = maxPool2dBackward(dy, x, o);
    expectClose(await dx.read(), maxPool2dBackwardRef(dyd, xd, xs, o), { atol: 1e-6, rtol: 1e-6 });
    for (const t of [x, dy, dx]) t.dispose();
  });

  it('global average pool backward', async () => {
    const r = rt();
    for (const xs of [[1, 1, 1, 1], [3, 17, 5, 5], [1, 3, 33, 33], [3, 1, 17, 1]] as S4[]) {
      const dyd = randArray(xs[0] * xs[1], xs[2] + xs[3]);
      const dy = Tensor.from(r, dyd, [xs[0], xs[1]]);
      const dx = globalAvgPool2dBackward(dy, xs);
      expectClose(await dx.read(), globalAvgPool2dBackwardRef(dyd, xs), { atol: 1e-7, rtol: 1e-6 }, `[${xs}]`);
      const dy4 = dy.reshape([xs[0], xs[1], 1, 1]);
      const dx4 = globalAvgPool2dBackward(dy4, xs);
      expectClose(await dx4.read(), globalAvgPool2dBackwardRef(dyd, xs), { atol: 1e-7, rtol: 1e-6 }, `[${xs}] with dy [N, C, 1, 1]`);
      for (const t of [dy, dx, dy4, dx4]) t.dispose();
    }
  });

  it('accepts unbatched [C, H, W] like the forward op', async () => {
    const r = rt();
    const xs: S4 = [1, 3, 17, 17];
    const o: PoolOpts = { kernel: 3, stride: 2, padding: 1 };
    const xd = randArray(numel(xs), 31);
    const ys = maxPool2dRef(xd, xs, o).shape;
    const dyd = randArray(numel(ys), 32);
    const x = Tensor.from(r, xd, xs.slice(1));
    const dy = Tensor.from(r, dyd, ys.slice(1));
    const dxMax = maxPool2dBackward(dy, x, o);
    const dxAvg = avgPool2dBackward(dy, xs.slice(1), o);
    expect(dxMax.shape).toEqual([3, 17, 17]);
    expectClose(await dxMax.read(), maxPool2dBackwardRef(dyd, xd, xs, o), { atol: 1e-6, rtol: 1e-6 }, 'max');
    expectClose(await dxAvg.read(), avgPool2dBackwardRef(dyd, xs, o), { atol: 1e-6, rtol: 1e-5 }, 'avg');
    expect(() => maxPool2dBackward(dy, Tensor.zeros(r, [3, 16, 16]), o)).toThrow(/dy must be \[3, 8, 8\]/);
    for (const t of [x, dy, dxMax, dxAvg]) t.dispose();
  });

  it('rejects bad shapes and options with ShapeError', () => {
    const r = rt();
    const x = Tensor.zeros(r, [1, 3, 8, 8]);
    const dy = Tensor.zeros(r, [1, 3, 4, 4]);
    expect(() => maxPool2dBackward(dy, x, { kernel: 3 })).toThrow(/dy must be \[1, 3, 2, 2\]/);
    expect(() => maxPool2dBackward(dy, x, { kernel: 2, padding: 2 })).toThrow(ShapeError);
    expect(() => avgPool2dBackward(dy, [3, 8], { kernel: 2 })).toThrow(ShapeError);
    expect(() => avgPool2dBackward(dy, [3, 8, 8], { kernel: 2 })).toThrow(ShapeError);
    expect(() => globalAvgPool2dBackward(dy, [1, 3, 8, 8])).toThrow(/dy \[1, 3, 4, 4\]/);
    expect(poolG([1, 3, 8, 8], { kernel: 2 }).P).toBe(4);
    for (const t of [x, dy]) t.dispose();
  });
});
