// Batch norm (training): CPU reference vs float64 finite differences, then GPU forward/backward/running stats vs the CPU reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { ShapeError } from '../src/runtime/errors.js';
import {
  batchNorm2dBackward,
  batchNorm2dTrain,
  channelSum,
  defaultChannelReduceVariant,
  setChannelReduceVariant,
  type ChannelReduceVariant,
} from '../src/kernels/batchnorm-train.js';
import { batchNorm2dBackwardRef, batchNorm2dTrainRef, conv2dBackwardBiasRef, dot, finiteDiff, rand64 } from './ref/cnn-backward.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, type Tol } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

type S4 = [number, number, number, number];
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('batch norm CPU reference vs finite differences (float64)', () => {
  const xs: S4 = [2, 3, 5, 5];
  const tol = { atol: 1e-7, rtol: 1e-6 };
  for (const affine of [true, false]) {
    it(affine ? 'with weight and bias' : 'without weight and bias', () => {
      const x = rand64(numel(xs), 1, -2, 3);
      const w = rand64(3, 2, 0.5, 1.5);
      const b = rand64(3, 3);
      const G = rand64(numel(xs), 4);
      const run = () => batchNorm2dTrainRef(x, xs, affine ? w : null, affine ? b : null, null, null);
      const loss = () => dot(run().y, G);
      const { mean, invstd } = run();
      const ref = batchNorm2dBackwardRef(G, x, xs, mean, invstd, affine ? w : null);
      expectClose(ref.dx, finiteDiff(x, loss), tol, 'dx');
      if (affine) {
        expectClose(ref.dweight, finiteDiff(w, loss), tol, 'dweight');
        expectClose(ref.dbias, finiteDiff(b, loss), tol, 'dbias');
      }
    });
  }
  it('running stats follow PyTorch: unbiased variance, momentum on the new value', () => {
    const x = Float64Array.from([1, 2, 3, 4]); // one channel, M = 4: mean 2.5, biased var 1.25, unbiased 5/3
    const r = batchNorm2dTrainRef(x, [1, 1, 2, 2], null, null, [10], [20], 0.25);
    expect(r.runningMean![0]).toBeCloseTo(0.75 * 10 + 0.25 * 2.5, 12);
    expect(r.runningVar![0]).toBeCloseTo(0.75 * 20 + 0.25 * (5 / 3), 12);
    expect(r.invstd[0]).toBeCloseTo(1 / Math.sqrt(1.25 + 1e-5), 12);
  });
});

interface Case {
  name: string;
  x: S4;
  affine: boolean;
  running: boolean;
  offset?: number; // added to x: a large mean stresses the variance computation
}

describe('per-channel reduction variant rule', () => {
  it('serial for small per-channel counts, tree for large ones', () => {
    expect(defaultChannelReduceVariant(4)).toBe('serial');
    expect(defaultChannelReduceVariant(4096)).toBe('serial');
    expect(defaultChannelReduceVariant(4097)).toBe('tree');
  });
});

for (const variant of ['tree', 'serial'] as ChannelReduceVariant[]) describe(`batch norm GPU vs CPU reference (${variant} reduction)`, () => {
  beforeAll(() => setChannelReduceVariant(variant));
  afterAll(() => setChannelReduceVariant(null));
  const cases: Case[] = [
    { name: 'M = 2 (N1 C1 1×2)', x: [1, 1, 1, 2], affine: true, running: true },
    { name: 'N3 C1 1×1 (M = 3)', x: [3, 1, 1, 1], affine: false, running: true },
    { name: 'N1 C3 1×5', x: [1, 3, 1, 5], affine: true, running: false },
    { name: 'N3 C17 5×5', x: [3, 17, 5, 5], affine: true, running: true },
    { name: 'N1 C17 17×17, no affine, no running', x: [1, 17, 17, 17], affine: false, running: false },
    { name: 'N3 C3 33×33', x: [3, 3, 33, 33], affine: true, running: true },
    { name: 'N3 C3 40×40: 2 chunks, boundary mid-image', x: [3, 3, 40, 40], affine: true, running: true },
    { name: 'N2 C3 100×100: 5 chunks', x: [2, 3, 100, 100], affine: false, running: true },
    { name: 'N3 C17 33×33, mean 1000 (stable variance)', x: [3, 17, 33, 33], affine: true, running: true, offset: 1000 },
    { name: 'N4 C300 1×1 (late-stage ResNet map)', x: [4, 300, 1, 1], affine: true, running: true },
    { name: 'N3 C70 3×3', x: [3, 70, 3, 3], affine: true, running: false },
  ];
  cases.forEach((c, ci) => {
    it(c.name, async () => {
      await runCase(c, 20 + 7 * ci);
    });
  });

  it('running stats accumulate in place over three steps', async () => {
    const r = rt();
    const xs: S4 = [3, 17, 5, 5];
    let rm: Float64Array = rand64(17, 90);
    let rv: Float64Array = rand64(17, 91, 0.5, 2);
    const rmT = Tensor.from(r, rm, [17]);
    const rvT = Tensor.from(r, rv, [17]);
    for (let step = 0; step < 3; step++) {
      const xd = randArray(numel(xs), 92 + step, -1, 2);
      const out = batchNorm2dTrain(Tensor.from(r, xd, xs), null, null, rmT, rvT, 0.3, 1e-3);
      const ref = batchNorm2dTrainRef(xd, xs, null, null, rm, rv, 0.3, 1e-3);
      rm = ref.runningMean!;
      rv = ref.runningVar!;
      for (const t of [out.y, out.mean, out.invstd]) t.dispose();
    }
    expectClose(await rmT.read(), rm, { atol: 1e-6, rtol: 1e-5 }, 'runningMean');
    expectClose(await rvT.read(), rv, { atol: 1e-6, rtol: 1e-5 }, 'runningVar');
    rmT.dispose();
    rvT.dispose();
  });

  it('channelSum (conv bias gradient path) over several chunks', async () => {
    const r = rt();
    for (const xs of [[1, 1, 1, 1], [3, 17, 33, 33], [2, 2, 100, 100]] as S4[]) {
      const d = randArray(numel(xs), xs[3]);
      const t = Tensor.from(r, d, xs);
      const s = channelSum(t);
      const M = xs[0] * xs[2] * xs[3];
      expectClose(await s.read(), conv2dBackwardBiasRef(d, xs), { atol: 1e-6 * Math.sqrt(M), rtol: 1e-5 }, `[${xs}]`);
      t.dispose();
      s.dispose();
    }
  });

  it('rejects bad shapes with ShapeError', () => {
    const r = rt();
    const x = Tensor.zeros(r, [2, 3, 4, 4]);
    const w = Tensor.zeros(r, [4]);
    expect(() => batchNorm2dTrain(x, w, null, null, null)).toThrow(/weight must be f32 \[3\].*\[4\]/);
    expect(() => batchNorm2dTrain(Tensor.zeros(r, [1, 3, 1, 1]), null, null, null, null)).toThrow(/more than 1 value/);
    expect(() => batchNorm2dTrain(x, null, null, Tensor.zeros(r, [3]), null)).toThrow(ShapeError);
    expect(() => batchNorm2dBackward(Tensor.zeros(r, [2, 3, 4, 5]), x, w, w, null)).toThrow(/dy .*\[2, 3, 4, 5\].*x .*\[2, 3, 4, 4\]/);
    expect(() => batchNorm2dTrain(Tensor.zeros(r, [2, 3, 4]), null, null, null, null)).toThrow(/\[2, 3, 4\]/);
    x.dispose();
    w.dispose();
  });
});

async function runCase(c: Case, seed: number): Promise<void> {
  const r = rt();
  const [, C] = c.x;
  const M = c.x[0] * c.x[2] * c.x[3];
  const off = c.offset ?? 0;
  const xd = Float32Array.from(randArray(numel(c.x), seed, -1, 2), (v) => v + off);
  const wd = randArray(C, seed + 1, 0.5, 1.5);
  const bd = randArray(C, seed + 2);
  const rmd = randArray(C, seed + 3);
  const rvd = randArray(C, seed + 4, 0.5, 2);
  const dyd = randArray(numel(c.x), seed + 5);
  const x = Tensor.from(r, xd, c.x);
  const w = c.affine ? Tensor.from(r, wd, [C]) : null;
  const b = c.affine ? Tensor.from(r, bd, [C]) : null;
  const rm = c.running ? Tensor.from(r, rmd, [C]) : null;
  const rv = c.running ? Tensor.from(r, rvd, [C]) : null;
  const eps = 1e-5;
  const out = batchNorm2dTrain(x, w, b, rm, rv, 0.1, eps);
  const ref = batchNorm2dTrainRef(xd, c.x, c.affine ? wd : null, c.affine ? bd : null, c.running ? rmd : null, c.running ? rvd : null, 0.1, eps);

  // f32 statistics. With mean 1000 the f32 mean is good to a few ulp of 1000 (6.1e-5), which y sees directly;
  // Welford keeps the variance accurate (measured invstd rel. error 2.4e-6; f32 E[x²] - E[x]² gives NaN here).
  const big = off !== 0;
  const stat: Tol = big ? { atol: 2e-4, rtol: 1e-6 } : { atol: 1e-6, rtol: 1e-5 };
  const inv: Tol = big ? { atol: 0, rtol: 5e-5 } : { atol: 0, rtol: 1e-5 };
  const yTol: Tol = big ? { atol: 3e-4, rtol: 0 } : { atol: 1e-5, rtol: 1e-5 };
  expectClose(await out.mean.read(), ref.mean, stat, 'mean');
  expectClose(await out.invstd.read(), ref.invstd, inv, 'invstd');
  expectClose(await out.y.read(), ref.y, yTol, 'y');
  if (rm && rv) {
    expectClose(await rm.read(), ref.runningMean!, stat, 'runningMean');
    expectClose(await rv.read(), ref.runningVar!, inv, 'runningVar');
  }

  // Backward from the GPU's saved statistics, against the reference computed from the same saved statistics.
  const meanG = await out.mean.read();
  const invG = await out.invstd.read();
  const dy = Tensor.from(r, dyd, c.x);
  const g = batchNorm2dBackward(dy, x, out.mean, out.invstd, w);
  const gref = batchNorm2dBackwardRef(dyd, xd, c.x, meanG, invG, c.affine ? wd : null);
  const sumTol = 1e-6 * Math.sqrt(M) + 1e-6;
  expectClose(await g.dbias.read(), gref.dbias, { atol: sumTol, rtol: 1e-5 }, 'dbias');
  expectClose(await g.dweight.read(), gref.dweight, { atol: sumTol, rtol: 1e-4 }, 'dweight');
  expectClose(await g.dx.read(), gref.dx, { atol: 1e-4, rtol: 1e-4 }, 'dx');
  for (const t of [x, w, b, rm, rv, dy, out.y, out.mean, out.invstd, g.dx, g.dweight, g.dbias]) t?.dispose();
}
