// Layer norm (+ residual fusion) parity with a float64 CPU reference over awkward shapes and launch plans.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { layerNorm, layerNormResidual, layerNormWithPlan } from '../src/kernels/layernorm.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { layerNormRef } from './ref/nn.js';

const rt = useRuntime();
const TOL = { atol: 2e-5, rtol: 1e-4 };

interface Case {
  rows: number;
  d: number;
  w?: boolean;
  b?: boolean;
  res?: boolean;
  eps?: number;
  force?: { wg?: number; t?: number };
  offset?: number; // added to x: a large mean relative to the spread tests the variance's precision
  tol?: { atol: number; rtol: number };
  seed: number;
}

async function check(c: Case): Promise<void> {
  const r = rt();
  const eps = c.eps ?? 1e-5;
  const xs = randArray(c.rows * c.d, c.seed, -2, 2).map((v) => v + (c.offset ?? 0));
  const rs = c.res ? randArray(c.rows * c.d, c.seed + 1, -1, 1) : null;
  const ws = c.w ? randArray(c.d, c.seed + 2, 0.5, 1.5) : null;
  const bs = c.b ? randArray(c.d, c.seed + 3, -1, 1) : null;
  const shape = [c.rows, c.d];
  const x = Tensor.from(r, xs, shape);
  const res = rs && Tensor.from(r, rs, shape);
  const w = ws && Tensor.from(r, ws, [c.d]);
  const b = bs && Tensor.from(r, bs, [c.d]);
  const y = c.force
    ? layerNormWithPlan(x, res, w, b, eps, c.force)
    : res
      ? layerNormResidual(x, res, w, b, eps)
      : c.eps === undefined
        ? layerNorm(x, w, b)
        : layerNorm(x, w, b, eps);
  expect(y.shape).toEqual(shape);
  const what = `layerNorm rows ${c.rows} d ${c.d} w ${!!c.w} b ${!!c.b} res ${!!c.res} eps ${eps}${c.force ? ` plan ${JSON.stringify(c.force)}` : ''}`;
  expectClose(await y.read(), layerNormRef(xs, c.d, ws, bs, eps, rs), c.tol ?? TOL, what);
  [x, res, w, b, y].forEach((t) => t?.dispose());
}

describe('layerNorm', () => {
  it('awkward row lengths, with weight and bias (default plan)', async () => {
    for (const d of [1, 3, 17, 33, 255, 768, 1000, 3072, 30522]) await check({ rows: 3, d, w: true, b: true, seed: d });
  });

  it('with and without weight / bias, default eps', async () => {
    for (const [w, b] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      await check({ rows: 5, d: 768, w, b, seed: 10 + Number(w) + 2 * Number(b) });
      await check({ rows: 7, d: 17, w, b, seed: 20 + Number(w) + 2 * Number(b), eps: 1e-12 });
    }
  });

  it('many short rows (4096 × 17) and BERT-sized rows (128 × 768)', async () => {
    await check({ rows: 4096, d: 17, w: true, b: true, seed: 30 });
    await check({ rows: 128, d: 768, w: true, b: true, seed: 31 });
  });

  it('fused residual: layerNorm(x + residual)', async () => {
    for (const d of [1, 3, 33, 768, 1000]) await check({ rows: 9, d, w: true, b: true, res: true, seed: 40 + d });
    await check({ rows: 2, d: 768, res: true, seed: 41 });
  });

  it('every launch plan gives the same answer', async () => {
    for (const [wg, t] of [[64, 1], [64, 16], [64, 64], [256, 1], [256, 4], [256, 256]] as const) {
      await check({ rows: 11, d: 768, w: true, b: true, res: true, force: { wg, t }, seed: 50 + t });
      await check({ rows: 5, d: 3, w: true, force: { wg, t }, seed: 60 + t });
    }
  });

  it('keeps precision when the mean is large relative to the spread (two-pass variance)', async () => {
    // E[x²] - E[x]² in f32 gets the variance wrong by O(1) here (0.75 instead of 1.32 for one such
    // row: the ulp of 1e6 is 0.06); a plain f32 sum for the mean would cost ~1e-4 of output error.
    await check({ rows: 4, d: 768, w: true, b: true, offset: 1000, seed: 70 });
    await check({ rows: 4, d: 33, offset: 1000, seed: 71 });
    await check({ rows: 4, d: 3072, offset: -1000, force: { t: 256 }, seed: 72 });
    // (x + residual is rounded to f32 first, as in PyTorch, so keep that sum's ulp small: offset 100.)
    await check({ rows: 4, d: 768, res: true, offset: 100, force: { t: 8 }, seed: 73 });
  });

  it('rejects mismatched shapes with ShapeError naming both shapes', () => {
    const r = rt();
    const x = Tensor.zeros(r, [2, 4]);
    const w5 = Tensor.zeros(r, [5]);
    const res = Tensor.zeros(r, [4, 2]);
    expect(() => layerNorm(x, w5, null)).toThrow(ShapeError);
    expect(() => layerNorm(x, null, w5)).toThrow(/bias shape \[5\] must be \[4\], the last dim of x shape \[2, 4\]/);
    expect(() => layerNormResidual(x, res, null, null)).toThrow(/residual shape \[4, 2\] does not match x shape \[2, 4\]/);
    [x, w5, res].forEach((t) => t.dispose());
  });
});
