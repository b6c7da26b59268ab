// Softmax / log-softmax parity with a float64 CPU reference over awkward shapes, axes and launch plans.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { logSoftmax, softmax, softmaxWithPlan } from '../src/kernels/softmax.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { softmaxRef } from './ref/nn.js';
import { DEFAULT_TUNING, planRows, rowTuning } from '../src/kernels/rowplan.js';
import { ROW_CANDIDATES, ROW_SHAPES, tuneRows } from '../src/kernels/rowtune.js';

const rt = useRuntime();
const TOL = { atol: 1e-6, rtol: 1e-4 };
const LOG_TOL = { atol: 2e-5, rtol: 1e-5 };

async function check(shape: number[], axis: number, seed: number, lo = -4, hi = 4, force?: { wg?: number; t?: number }): Promise<void> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = randArray(n, seed, lo, hi);
  const x = Tensor.from(rt(), data, shape);
  const a = axis < 0 ? axis + shape.length : axis;
  for (const log of [false, true]) {
    const y = force ? softmaxWithPlan(x, axis, log, force) : log ? logSoftmax(x, axis) : softmax(x, axis);
    expect(y.shape).toEqual(shape);
    const what = `${log ? 'logSoftmax' : 'softmax'} [${shape}] axis ${axis}${force ? ` plan ${JSON.stringify(force)}` : ''}`;
    expectClose(await y.read(), softmaxRef(data, shape, a, log), log ? LOG_TOL : TOL, what);
    y.dispose();
  }
  x.dispose();
}

describe('softmax', () => {
  it('last axis, awkward row lengths (default plan)', async () => {
    for (const d of [1, 3, 17, 33, 255, 1000, 30522]) await check([2, d], -1, d);
    await check([5], 0, 5);
  });

  it('many short rows: 4096 × 17, and 3 × 5 × 7 × 33', async () => {
    await check([4096, 17], -1, 1);
    await check([3, 5, 7, 33], 3, 2);
  });

  it('every launch plan gives the same answer (T = 1 .. WG, small and large workgroups)', async () => {
    for (const [wg, t] of [[64, 1], [64, 8], [64, 64], [256, 1], [256, 2], [256, 32], [256, 256]] as const) {
      await check([7, 1000], -1, wg + t, -4, 4, { wg, t });
      await check([9, 3], -1, wg + t + 1, -4, 4, { wg, t });
      await check([4, 6, 5], 1, wg + t + 2, -4, 4, { wg, t });
    }
  });

  it('non-last axes (strided rows), incl. axis 0 and negative axes', async () => {
    await check([17, 33], 0, 3);
    await check([2, 255, 3], 1, 4);
    await check([3, 4, 5, 6], -3, 5);
    await check([1000, 2], 0, 6);
    await check([3, 1, 7], 1, 7);
  });

  it('is stable for large-magnitude inputs (±80 and beyond)', async () => {
    await check([6, 1000], -1, 8, -80, 80);
    await check([33, 17], 0, 9, -80, 80);
    await check([4, 30522], -1, 10, -1000, 1000);
    // Rows with -inf entries (masked positions) give exact zeros there.
    const x = Tensor.from(rt(), [-Infinity, 1, 2, -Infinity, -Infinity, 0.5], [2, 3]);
    expectClose(await softmax(x).read(), softmaxRef([-Infinity, 1, 2, -Infinity, -Infinity, 0.5], [2, 3], 1), TOL);
    x.dispose();
  });

  it('plans: T = 1 for many rows, more threads per row when rows are few; plans stay within limits', () => {
    const r = rt();
    for (const [rows, d] of [[1, 30522], [4096, 17], [1, 1], [100000, 3]] as const) {
      const p = planRows(r, rows, d);
      expect(p.t & (p.t - 1)).toBe(0);
      expect(p.wg % p.t).toBe(0);
      expect(p.workgroups[0] * p.workgroups[1] * (p.wg / p.t)).toBeGreaterThanOrEqual(rows);
      expect(Math.max(...p.workgroups)).toBeLessThanOrEqual(r.limits.maxComputeWorkgroupsPerDimension);
    }
    const gpuLike = { wg: 256, perThread: 16, minThreads: 65536 };
    r.tuning.set('rows', gpuLike);
    expect(planRows(r, 2, 30522).t).toBe(256);
    expect(planRows(r, 4096, 17).t).toBe(8); // 2 by perThread, doubled while rows × T < minThreads and 4T <= D
    expect(planRows(r, 1 << 20, 17).t).toBe(2);
    r.tuning.delete('rows');
    expect(rowTuning(r)).toEqual(DEFAULT_TUNING);
  });

  it('tuneRows times the candidates, installs the fastest, and results stay correct', async () => {
    const r = rt();
    const res = await tuneRows(r, 1, ROW_CANDIDATES.slice(0, 2));
    expect(res.ms.length).toBe(2);
    expect(res.ms[0]!.length).toBe(ROW_SHAPES.length);
    expect(res.ms.flat().every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
    expect(ROW_CANDIDATES.slice(0, 2)).toContainEqual(res.best);
    expect(rowTuning(r)).toEqual(res.best);
    await check([33, 1000], -1, 11);
    r.tuning.delete('rows');
  });

  it('rejects bad axes and dtypes with ShapeError', () => {
    const x = Tensor.from(rt(), [1, 2, 3, 4], [2, 2]);
    expect(() => softmax(x, 2)).toThrow(ShapeError);
    expect(() => softmax(x, -3)).toThrow(/axis -3 is out of range for shape \[2, 2\]/);
    const i = Tensor.from(rt(), [1, 2], [2], 'i32');
    expect(() => logSoftmax(i)).toThrow(ShapeError);
    x.dispose();
    i.dispose();
  });
});
