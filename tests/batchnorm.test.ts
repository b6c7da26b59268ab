// Inference batch norm parity (NCHW, per-channel stats, optional relu) with a float64 CPU reference.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { batchNorm2d } from '../src/kernels/batchnorm.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { batchNormRef } from './ref/nn.js';

const rt = useRuntime();
const TOL = { atol: 1e-5, rtol: 1e-5 };

async function check(shape: number[], opts: { w: boolean; b: boolean; relu: boolean; eps?: number }, seed: number): Promise<void> {
  const r = rt();
  const c = shape[1]!;
  const n = shape.reduce((a, b) => a * b, 1);
  const xs = randArray(n, seed, -3, 3);
  const ms = randArray(c, seed + 1, -1, 1);
  const vs = randArray(c, seed + 2, 0.01, 2);
  const ws = opts.w ? randArray(c, seed + 3, -1.5, 1.5) : null;
  const bs = opts.b ? randArray(c, seed + 4, -1, 1) : null;
  const x = Tensor.from(r, xs, shape);
  const [m, v] = [Tensor.from(r, ms, [c]), Tensor.from(r, vs, [c])];
  const w = ws && Tensor.from(r, ws, [c]);
  const b = bs && Tensor.from(r, bs, [c]);
  const y = opts.eps === undefined && !opts.relu ? batchNorm2d(x, m, v, w, b) : batchNorm2d(x, m, v, w, b, opts.eps ?? 1e-5, opts.relu ? 'relu' : 'none');
  expect(y.shape).toEqual(shape);
  const ref = batchNormRef(xs, shape, ms, vs, ws, bs, opts.eps ?? 1e-5, opts.relu);
  expectClose(await y.read(), ref, TOL, `batchNorm2d [${shape}] ${JSON.stringify(opts)}`);
  [x, m, v, w, b, y].forEach((t) => t?.dispose());
}

describe('batchNorm2d', () => {
  it('C = 1, 3, 64 with N > 1, odd and vec4-divisible spatial sizes, with and without relu', async () => {
    let seed = 1;
    const scalar = [[2, 1, 5, 7], [3, 3, 17, 17], [2, 64, 7, 7], [4, 3, 1, 1], [2, 3, 33, 1]]; // H*W % 4 != 0
    const vec4 = [[2, 1, 4, 8], [3, 3, 16, 16], [1, 64, 56, 56], [2, 64, 2, 2]]; // H*W % 4 == 0
    for (const shape of [...scalar, ...vec4]) {
      for (const relu of [false, true]) await check(shape, { w: true, b: true, relu }, seed++);
    }
  });

  it('weight / bias optional, custom eps (both kernels)', async () => {
    for (const shape of [[2, 3, 9, 11], [2, 3, 8, 6]]) {
      await check(shape, { w: false, b: false, relu: false }, 20);
      await check(shape, { w: true, b: false, relu: true }, 21);
      await check(shape, { w: false, b: true, relu: false, eps: 1e-3 }, 22);
    }
  });

  it('rank 2 and 3 inputs ([N, C], [N, C, L]) and many planes', async () => {
    await check([17, 33], { w: true, b: true, relu: false }, 30);
    await check([3, 5, 255], { w: true, b: true, relu: true }, 31);
    await check([3, 5, 256], { w: true, b: true, relu: true }, 33);
    await check([64, 1024, 1, 1], { w: true, b: true, relu: true }, 32);
  });

  it('rejects mismatched stats with ShapeError naming both shapes', () => {
    const r = rt();
    const x = Tensor.zeros(r, [2, 3, 4, 4]);
    const s3 = Tensor.zeros(r, [3]);
    const s4 = Tensor.zeros(r, [4]);
    expect(() => batchNorm2d(x, s4, s3, null, null)).toThrow(ShapeError);
    expect(() => batchNorm2d(x, s3, s3, s3, s4)).toThrow(/bias shape \[4\] must be \[3\], the channel dim of x shape \[2, 3, 4, 4\]/);
    expect(() => batchNorm2d(s3, s3, s3, null, null)).toThrow(/x must be \[N, C, \.\.\.\], got shape \[3\]/);
    [x, s3, s4].forEach((t) => t.dispose());
  });
});
