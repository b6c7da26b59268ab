// Max / average / global-average pooling parity (NCHW, PyTorch semantics) with a float64 CPU reference.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions } from '../src/kernels/pool2d.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { globalAvgPoolRef, pool2dRef } from './ref/nn.js';

const rt = useRuntime();
const TOL = { atol: 1e-6, rtol: 1e-5 };

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

async function check(mode: 'max' | 'avg', shape: number[], o: Pool2dOptions, seed: number): Promise<void> {
  const n = shape.reduce((a, b) => a * b, 1);
  const xs = randArray(n, seed, -5, 5);
  const x = Tensor.from(rt(), xs, shape);
  const y = mode === 'max' ? maxPool2d(x, o) : avgPool2d(x, o);
  const shape4 = shape.length === 3 ? [1, ...shape] : shape;
  const ref = pool2dRef(xs, shape4, mode, {
    kernel: pair(o.kernel),
    stride: pair(o.stride ?? o.kernel),
    padding: pair(o.padding ?? 0),
    dilation: pair(o.dilation ?? 1),
    ceilMode: !!o.ceilMode,
    countIncludePad: o.countIncludePad ?? true,
  });
  const what = `${mode}Pool2d [${shape}] ${JSON.stringify(o)}`;
  expect(y.shape, what).toEqual(shape.length === 3 ? ref.shape.slice(1) : ref.shape);
  expectClose(await y.read(), ref.data, TOL, what);
  x.dispose();
  y.dispose();
}

const SHAPES = [[2, 3, 7, 7], [1, 2, 17, 13], [3, 1, 4, 5], [1, 1, 1, 1], [2, 1, 2, 9]];
const OPTS: Pool2dOptions[] = [
  { kernel: 2 },
  { kernel: 3 },
  { kernel: 2, stride: 1 },
  { kernel: 3, stride: 1, padding: 1 },
  { kernel: 3, stride: 2, padding: 1 },
  { kernel: 2, stride: 2, padding: 1 },
  { kernel: 3, stride: 2, ceilMode: true },
  { kernel: 3, stride: 2, padding: 1, ceilMode: true },
  { kernel: 2, stride: 2, padding: 1, ceilMode: true },
  { kernel: [3, 2], stride: [2, 1], padding: [1, 0] },
  { kernel: 1 },
];

describe('pooling', () => {
  it('maxPool2d: kernel 2/3, stride 1/2, padding 0/1, ceilMode, rectangular, odd sizes', async () => {
    let seed = 1;
    for (const shape of SHAPES) {
      for (const o of OPTS) {
        const [kh, kw] = pair(o.kernel);
        const [ph, pw] = pair(o.padding ?? 0);
        if (shape[2]! + 2 * ph < kh || shape[3]! + 2 * pw < kw) continue; // no output window fits
        await check('max', shape, o, seed++);
      }
    }
  });

  it('maxPool2d: dilation 2 (incl. with padding and ceilMode) and [C, H, W] input', async () => {
    await check('max', [2, 3, 9, 9], { kernel: 2, dilation: 2 }, 100);
    await check('max', [1, 2, 11, 8], { kernel: 3, stride: 2, padding: 1, dilation: 2 }, 101);
    await check('max', [1, 2, 10, 10], { kernel: 3, stride: 2, dilation: 2, ceilMode: true }, 102);
    await check('max', [1, 1, 5, 5], { kernel: 2, stride: 3, padding: 1, dilation: 3, ceilMode: true }, 104);
    await check('max', [3, 8, 8], { kernel: 2 }, 103);
  });

  it("maxPool2d: ResNet's stem pool (3×3, stride 2, padding 1) on 112×112, batch 2", async () => {
    await check('max', [2, 64, 112, 112], { kernel: 3, stride: 2, padding: 1 }, 200);
  });

  it('maxPool2d propagates NaN like PyTorch', async () => {
    const x = Tensor.from(rt(), [1, NaN, 3, 4, 5, 6, 7, 8], [1, 1, 2, 4]);
    const y = await maxPool2d(x, { kernel: 2 }).read();
    expect(Number.isNaN(y[0])).toBe(true);
    expect(y[1]).toBe(8);
    x.dispose();
  });

  it('avgPool2d: countIncludePad true / false, padding, ceilMode, odd sizes', async () => {
    let seed = 300;
    for (const shape of SHAPES) {
      for (const o of OPTS) {
        const [kh, kw] = pair(o.kernel);
        const [ph, pw] = pair(o.padding ?? 0);
        if (shape[2]! + 2 * ph < kh || shape[3]! + 2 * pw < kw) continue;
        await check('avg', shape, o, seed++);
        await check('avg', shape, { ...o, countIncludePad: false }, seed++);
      }
    }
  });

  it('globalAvgPool2d on 7×7 (ResNet head), 1×1, odd and large planes', async () => {
    let seed = 400;
    for (const shape of [[2, 2048, 7, 7], [3, 5, 1, 1], [1, 3, 17, 33], [2, 4, 112, 112], [1, 1, 1, 255]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const xs = randArray(n, seed++, -2, 2);
      const x = Tensor.from(rt(), xs, shape);
      const y = globalAvgPool2d(x);
      expect(y.shape).toEqual(shape.slice(0, 2));
      expectClose(await y.read(), globalAvgPoolRef(xs, shape[0]!, shape[1]!, shape[2]! * shape[3]!), TOL, `globalAvgPool2d [${shape}]`);
      x.dispose();
      y.dispose();
    }
  });

  it('rejects bad shapes and options with ShapeError', () => {
    const x = Tensor.zeros(rt(), [1, 1, 2, 2]);
    const v = Tensor.zeros(rt(), [4]);
    expect(() => maxPool2d(v, { kernel: 2 })).toThrow(/got shape \[4\]/);
    expect(() => maxPool2d(x, { kernel: 3 })).toThrow(ShapeError);
    expect(() => maxPool2d(x, { kernel: 2, padding: 2 })).toThrow(/at most half the kernel/);
    expect(() => avgPool2d(x, { kernel: 2, dilation: 2 })).toThrow(/dilation/);
    expect(() => maxPool2d(x, { kernel: 0 })).toThrow(ShapeError);
    expect(() => globalAvgPool2d(v)).toThrow(/\[N, C, H, W\], got shape \[4\]/);
    x.dispose();
    v.dispose();
  });
});
