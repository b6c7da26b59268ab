// Layer norm training forward + backward and softmax / log-softmax backward: CPU reference vs finite differences, GPU vs CPU, determinism.
import { describe, expect, it, vi } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { layerNormBackward, layerNormTrain, logSoftmaxBackward, softmaxBackward } from '../src/kernels/norm-backward.js';
import { ShapeError } from '../src/runtime/errors.js';
import { planRowLaunch } from '../src/kernels/norm-backward.js';
import { setRowTuning } from '../src/kernels/rowplan.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { dot, layerNormBackwardRef, layerNormRef, numericGrad, softmaxBackwardRef, softmaxRef } from './ref/transformer-backward.js';

const rt = useRuntime();
const f64 = (a: ArrayLike<number>) => Float64Array.from(a);
const shifted = (n: number, seed: number, shift: number) => Float32Array.from(randArray(n, seed, -2, 2), (v) => v + shift);

describe('CPU references vs central differences', () => {
  it('layer norm backward (dx, dweight, dbias), with and without affine', () => {
    const rows = 3;
    const D = 5;
    const eps = 1e-5;
    const x = f64(randArray(rows * D, 1, -2, 2));
    const w = f64(randArray(D, 2));
    const b = f64(randArray(D, 3));
    const dy = f64(randArray(rows * D, 4));
    const all = (n: number) => [...Array(n).keys()];
    for (const affine of [true, false]) {
      const ww = affine ? w : null;
      const g = layerNormBackwardRef(dy, x, D, ww, eps);
      expectClose(g.dx, numericGrad((xx) => dot(dy, layerNormRef(xx, D, ww, affine ? b : null, eps).y), x, all(rows * D)), { atol: 1e-8, rtol: 1e-6 }, 'dx');
      if (affine) {
        expectClose(g.dweight, numericGrad((p) => dot(dy, layerNormRef(x, D, p, b, eps).y), w, all(D)), { atol: 1e-8, rtol: 1e-6 }, 'dw');
        expectClose(g.dbias, numericGrad((p) => dot(dy, layerNormRef(x, D, w, p, eps).y), b, all(D)), { atol: 1e-8, rtol: 1e-6 }, 'db');
      }
    }
  });

  it('softmax and log-softmax backward along an inner axis', () => {
    const shape = [2, 4, 3];
    const x = f64(randArray(24, 5, -3, 3));
    const dy = f64(randArray(24, 6));
    for (const log of [false, true]) {
      const y = softmaxRef(x, shape, 1, log);
      const num = numericGrad((xx) => dot(dy, softmaxRef(xx, shape, 1, log)), x, [...Array(24).keys()]);
      expectClose(softmaxBackwardRef(y, dy, shape, 1, log), num, { atol: 1e-8, rtol: 1e-6 }, log ? 'log-softmax' : 'softmax');
    }
  });
});

describe('layer norm on the GPU', () => {
  const cases: [number, number][] = [
    [1, 1],
    [3, 3],
    [17, 128],
    [67, 768],
    [1000, 3],
    [1, 768],
    [33, 17],
    [2, 4099],
  ];

  it('training forward: y, mean, rstd for every affine variant', async () => {
    for (const [rows, D] of cases) {
      for (const [hasW, hasB] of [[true, true], [false, false], [true, false], [false, true]] as const) {
        const eps = D === 768 ? 1e-12 : 1e-5;
        const x = shifted(rows * D, rows + D, 3);
        const w = randArray(D, 7, 0.5, 1.5);
        const b = randArray(D, 8);
        const tx = Tensor.from(rt(), x, [rows, D]);
        const tw = hasW ? Tensor.from(rt(), w, [D]) : null;
        const tb = hasB ? Tensor.from(rt(), b, [D]) : null;
        const out = layerNormTrain(tx, tw, tb, eps);
        const ref = layerNormRef(x, D, hasW ? w : null, hasB ? b : null, eps);
        const what = `rows=${rows} D=${D} w=${hasW} b=${hasB}`;
        expect(out.mean.shape).toEqual([rows]);
        expectClose(await out.y.read(), ref.y, { atol: 2e-5, rtol: 1e-4 }, `${what} y`);
        expectClose(await out.mean.read(), ref.mean, { atol: 1e-5, rtol: 1e-5 }, `${what} mean`);
        // D = 1: variance 0, rstd = 1/sqrt(eps), huge; compare relatively.
        expectClose(await out.rstd.read(), ref.rstd, { atol: 1e-5, rtol: 1e-4 }, `${what} rstd`);
        for (const t of [tx, tw, tb, out.y, out.mean, out.rstd]) t?.dispose();
      }
    }
  });

  it('backward: dx, dweight, dbias against the CPU reference (3-D input, with and without weight)', async () => {
    for (const [rows, D] of cases) {
      for (const hasW of [true, false]) {
        const shape = rows % 3 === 0 && rows > 3 ? [3, rows / 3, D] : [rows, D];
        const x = shifted(rows * D, 2 * rows + D, -1);
        const w = randArray(D, 9, 0.5, 1.5);
        const dy = randArray(rows * D, 10 + D);
        const tx = Tensor.from(rt(), x, shape);
        const tw = hasW ? Tensor.from(rt(), w, [D]) : null;
        const tdy = Tensor.from(rt(), dy, shape);
        const fwd = layerNormTrain(tx, tw, null, 1e-5);
        const g = layerNormBackward(tdy, tx, fwd.mean, fwd.rstd, tw);
        const ref = layerNormBackwardRef(dy, x, D, hasW ? w : null, 1e-5);
        const what = `rows=${rows} D=${D} w=${hasW}`;
        expect(g.dx.shape).toEqual(shape);
        // D = 1: xhat = 0 so dx = 0 exactly in the reference, but rstd ~ 316 amplifies f32 rounding.
        expectClose(await g.dx.read(), ref.dx, { atol: D === 1 ? 1e-3 : 1e-4, rtol: 1e-4 }, `${what} dx`);
        if (hasW) expectClose(await g.dweight!.read(), ref.dweight, { atol: 1e-4 * Math.sqrt(rows), rtol: 1e-4 }, `${what} dweight`);
        else expect(g.dweight).toBeNull();
        expectClose(await g.dbias!.read(), ref.dbias, { atol: 1e-5 * Math.sqrt(rows), rtol: 1e-4 }, `${what} dbias`);
        for (const t of [tx, tw, tdy, fwd.y, fwd.mean, fwd.rstd, g.dx, g.dweight, g.dbias]) t?.dispose();
      }
    }
  });

  it('affine = false (frozen weight and bias): the same dx bits, null dweight / dbias, no reduction dispatched', async () => {
    const r = rt();
    const rows = 67;
    const D = 96;
    const tx = Tensor.from(r, shifted(rows * D, 5, 1), [rows, D]);
    const tw = Tensor.from(r, randArray(D, 6, 0.5, 1.5), [D]);
    const tdy = Tensor.from(r, randArray(rows * D, 7), [rows, D]);
    const fwd = layerNormTrain(tx, tw, null);
    const full = layerNormBackward(tdy, tx, fwd.mean, fwd.rstd, tw);
    const names: string[] = [];
    const orig = r.dispatch.bind(r);
    const spy = vi.spyOn(r, 'dispatch').mockImplementation((k, o) => {
      names.push(k.name);
      orig(k, o);
    });
    const dxOnly = layerNormBackward(tdy, tx, fwd.mean, fwd.rstd, tw, false);
    spy.mockRestore();
    expect(names).toEqual(['layernorm_bwd_dx']);
    expect(dxOnly.dweight).toBeNull();
    expect(dxOnly.dbias).toBeNull();
    expect(Array.from(new Uint32Array((await dxOnly.dx.read()).buffer))).toEqual(Array.from(new Uint32Array((await full.dx.read()).buffer)));
    for (const t of [tx, tw, tdy, fwd.y, fwd.mean, fwd.rstd, full.dx, full.dweight, full.dbias, dxOnly.dx]) t?.dispose();
  });

  it('dweight / dbias are bit-identical across runs', async () => {
    const rows = 300;
    const D = 96;
    const tx = Tensor.from(rt(), randArray(rows * D, 11), [rows, D]);
    const tw = Tensor.from(rt(), randArray(D, 12), [D]);
    const tdy = Tensor.from(rt(), randArray(rows * D, 13), [rows, D]);
    const fwd = layerNormTrain(tx, tw, null);
    const bits = async () => {
      const g = layerNormBackward(tdy, tx, fwd.mean, fwd.rstd, tw);
      const out = [new Uint32Array((await g.dweight!.read()).buffer), new Uint32Array((await g.dbias!.read()).buffer), new Uint32Array((await g.dx.read()).buffer)];
      for (const t of [g.dx, g.dweight, g.dbias]) t?.dispose();
      return out.map((a) => Array.from(a));
    };
    expect(await bits()).toEqual(await bits());
    for (const t of [tx, tw, tdy, fwd.y, fwd.mean, fwd.rstd]) t.dispose();
  });

  it('rejects bad shapes', () => {
    const x = Tensor.from(rt(), randArray(12, 1), [3, 4]);
    const w = Tensor.from(rt(), randArray(3, 1), [3]);
    const m = Tensor.from(rt(), randArray(2, 1), [2]);
    expect(() => layerNormTrain(x, w, null)).toThrow(ShapeError);
    expect(() => layerNormBackward(x, x, m, m, null)).toThrow(/mean/);
    expect(() => layerNormBackward(w, x, m, m, null)).toThrow(/dy/);
    for (const t of [x, w, m]) t.dispose();
  });
});

describe('row kernels under a GPU-shaped row tuning (tree reductions, 8 / 64 / 256 threads per row)', () => {
  it('layer norm forward/backward and softmax backward match the CPU reference', async () => {
    const r = rt();
    setRowTuning(r, { wg: 256, perThread: 16, minThreads: 65536 });
    try {
      const ts = new Set<number>();
      for (const [rows, D] of [[33, 17], [17, 128], [67, 768], [3, 3]] as const) {
        ts.add(planRowLaunch(r, rows, D).t);
        const x = shifted(rows * D, rows, 2);
        const w = randArray(D, 3, 0.5, 1.5);
        const b = randArray(D, 4);
        const dy = randArray(rows * D, 5);
        const tx = Tensor.from(r, x, [rows, D]);
        const tw = Tensor.from(r, w, [D]);
        const tb = Tensor.from(r, b, [D]);
        const tdy = Tensor.from(r, dy, [rows, D]);
        const f = layerNormTrain(tx, tw, tb);
        const ref = layerNormRef(x, D, w, b, 1e-5);
        expectClose(await f.y.read(), ref.y, { atol: 2e-5, rtol: 1e-4 }, `LN y [${rows}, ${D}]`);
        expectClose(await f.rstd.read(), ref.rstd, { atol: 1e-5, rtol: 1e-4 }, `LN rstd [${rows}, ${D}]`);
        const g = layerNormBackward(tdy, tx, f.mean, f.rstd, tw);
        const gr = layerNormBackwardRef(dy, x, D, w, 1e-5);
        expectClose(await g.dx.read(), gr.dx, { atol: 1e-4, rtol: 1e-4 }, `LN dx [${rows}, ${D}]`);
        expectClose(await g.dweight!.read(), gr.dweight, { atol: 1e-4 * Math.sqrt(rows), rtol: 1e-4 }, `LN dweight [${rows}, ${D}]`);
        for (const log of [false, true]) {
          const y = Float32Array.from(softmaxRef(x, [rows, D], -1, log));
          const ty = Tensor.from(r, y, [rows, D]);
          const dx = log ? logSoftmaxBackward(ty, tdy) : softmaxBackward(ty, tdy);
          expectClose(await dx.read(), softmaxBackwardRef(y, dy, [rows, D], -1, log), { atol: 1e-5, rtol: 1e-4 }, `softmax bwd log=${log} [${rows}, ${D}]`);
          ty.dispose();
          dx.dispose();
        }
        for (const t of [tx, tw, tb, tdy, f.y, f.mean, f.rstd, g.dx, g.dweight, g.dbias]) t?.dispose();
      }
      expect([...ts].sort((a, c) => a - c)).toEqual([1, 8, 64, 256]);
    } finally {
      r.tuning.delete('rows');
    }
  });
});

describe('softmax backward on the GPU', () => {
  it('softmax and log-softmax backward over awkward shapes and axes', async () => {
    const cases: [number[], number][] = [
      [[1, 1], -1],
      [[3, 17], -1],
      [[2, 33, 5], 1],
      [[4, 1000], -1],
      [[255, 3], 0],
      [[2, 3, 255], 0],
      [[2, 30522], -1],
    ];
    for (const [shape, axis] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randArray(n, n, -4, 4);
      const dy = randArray(n, n + 1);
      for (const log of [false, true]) {
        const y = Float32Array.from(softmaxRef(x, shape, axis, log));
        const ty = Tensor.from(rt(), y, shape);
        const tdy = Tensor.from(rt(), dy, shape);
        const dx = log ? logSoftmaxBackward(ty, tdy, axis) : softmaxBackward(ty, tdy, axis);
        expect(dx.shape).toEqual(shape);
        expectClose(await dx.read(), softmaxBackwardRef(y, dy, shape, axis, log), { atol: 1e-5, rtol: 1e-4 }, `${log ? 'log' : ''}softmax [${shape}] axis ${axis}`);
        for (const t of [ty, tdy, dx]) t.dispose();
      }
    }
  });

  it('rejects mismatched shapes and bad axes', () => {
    const a = Tensor.from(rt(), randArray(6, 1), [2, 3]);
    const b = Tensor.from(rt(), randArray(6, 1), [3, 2]);
    expect(() => softmaxBackward(a, b)).toThrow(ShapeError);
    expect(() => logSoftmaxBackward(a, a, 2)).toThrow(/axis/);
    a.dispose();
    b.dispose();
  });
});
