// Fused cross-entropy (loss + dlogits in one pass): CPU reference vs finite differences, GPU vs CPU over
// class counts 2..30522, label smoothing, ignore index, every reduction, edge cases and determinism.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { crossEntropy, crossEntropyBackwardScale } from '../src/kernels/cross-entropy.js';
import { ShapeError } from '../src/runtime/errors.js';
import { planRowLaunch } from '../src/kernels/norm-backward.js';
import { setRowTuning } from '../src/kernels/rowplan.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray, rng } from './helpers/rand.js';
import { crossEntropyBackwardRef, crossEntropyRef, numericGrad, type CeRefOptions } from './ref/transformer-backward.js';

const rt = useRuntime();

/** Targets in [0, C) with about a quarter replaced by ignoreIndex (row 0 always kept, row 1 ignored when B > 2). */
function makeTargets(B: number, C: number, seed: number, ignore: number | null): Int32Array {
  const r = rng(seed);
  const t = Int32Array.from({ length: B }, () => Math.floor(r() * C));
  if (ignore !== null) {
    for (let b = 1; b < B; b++) if (r() < 0.25 || (b === 1 && B > 2)) t[b] = ignore;
  }
  return t;
}

describe('cross-entropy CPU reference vs central differences', () => {
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    for (const labelSmoothing of [0, 0.1]) {
      it(`${reduction}, label smoothing ${labelSmoothing}, with an ignored target`, () => {
        const B = 4;
        const C = 5;
        const o: CeRefOptions = { reduction, labelSmoothing, ignoreIndex: -100 };
        const x = Float64Array.from(randArray(B * C, 3, -3, 3));
        const t = [2, -100, 0, 4];
        const f = (xx: Float64Array) => {
          const r = crossEntropyRef(xx, t, C, o);
          return reduction === 'none' ? r.rows.reduce((a, b) => a + b, 0) : r.loss;
        };
        expectClose(crossEntropyBackwardRef(x, t, C, o), numericGrad(f, x, [...Array(B * C).keys()]), { atol: 1e-9, rtol: 1e-6 });
      });
    }
  }
});

describe('cross-entropy on the GPU', () => {
  const shapes: [number, number][] = [
    [1, 2],
    [3, 3],
    [17, 17],
    [33, 2],
    [5, 1000],
    [64, 1000],
    [3, 30522],
    [2, 30522],
  ];

  for (const reduction of ['mean', 'sum', 'none'] as const) {
    it(`loss and dlogits, reduction ${reduction}, label smoothing 0 / 0.1, ignore index present / absent`, async () => {
      for (const [B, C] of shapes) {
        for (const labelSmoothing of [0, 0.1]) {
          for (const ignoreIndex of [-100, 0]) {
            const ignored = B > 1 && ignoreIndex === -100;
            const x = randArray(B * C, B * C + 1, -8, 8);
            const t = makeTargets(B, C, B + C, ignored ? -100 : null);
            // ignoreIndex = 0 ignores class-0 targets, which some rows may have.
            const o = { reduction, labelSmoothing, ignoreIndex };
            const tx = Tensor.from(rt(), x, [B, C]);
            const tt = Tensor.from(rt(), t, [B], 'i32');
            const res = crossEntropy(tx, tt, o);
            const ref = crossEntropyRef(x, t, C, o);
            const what = `B=${B} C=${C} ls=${labelSmoothing} ignore=${ignoreIndex} ${reduction}`;
            expect(res.count).toBeNull();
            if (reduction === 'none') {
              expect(res.loss.shape).toEqual([B]);
              expectClose(await res.loss.read(), ref.rows, { atol: 1e-5, rtol: 1e-5 }, `${what} loss`);
            } else {
              expect(res.loss.shape).toEqual([1]);
              expectClose(await res.loss.read(), [ref.loss], { atol: 1e-5, rtol: 1e-5 }, `${what} loss`);
            }
            expect(res.dlogits!.shape).toEqual([B, C]);
            const dref = crossEntropyBackwardRef(x, t, C, o);
            expectClose(await res.dlogits!.read(), dref, { atol: 2.5e-7, rtol: 1e-4 }, `${what} dlogits`);
            for (const tn of [tx, tt, res.loss, res.dlogits]) tn?.dispose();
          }
        }
      }
    });
  }

  it('matches the CPU reference under a GPU-shaped row tuning (8 / 64 / 256 threads per row)', async () => {
    const r = rt();
    setRowTuning(r, { wg: 256, perThread: 16, minThreads: 65536 });
    try {
      const ts = new Set<number>();
      for (const [B, C] of [[33, 17], [40, 130], [3, 30522]] as const) {
        ts.add(planRowLaunch(r, B, C).t);
        const x = randArray(B * C, C, -8, 8);
        const t = makeTargets(B, C, B, -100);
        const o = { labelSmoothing: 0.1 };
        const tx = Tensor.from(r, x, [B, C]);
        const tt = Tensor.from(r, t, [B], 'i32');
        const res = crossEntropy(tx, tt, o);
        expectClose(await res.loss.read(), [crossEntropyRef(x, t, C, o).loss], { atol: 1e-5, rtol: 1e-5 }, `B=${B} C=${C} loss`);
        expectClose(await res.dlogits!.read(), crossEntropyBackwardRef(x, t, C, o), { atol: 2.5e-7, rtol: 1e-4 }, `B=${B} C=${C} dlogits`);
        for (const tn of [tx, tt, res.loss, res.dlogits]) tn?.dispose();
      }
      expect([...ts].sort((a, c) => a - c)).toEqual([8, 64, 256]);
    } finally {
      r.tuning.delete('rows');
    }
  });

  it('grad: false returns the same loss and no gradient', async () => {
    const B = 17;
    const C = 1000;
    const x = randArray(B * C, 5, -4, 4);
    const t = makeTargets(B, C, 6, -100);
    const tx = Tensor.from(rt(), x, [B, C]);
    const tt = Tensor.from(rt(), t, [B], 'i32');
    const a = crossEntropy(tx, tt, { grad: false, labelSmoothing: 0.1 });
    expect(a.dlogits).toBeNull();
    expectClose(await a.loss.read(), [crossEntropyRef(x, t, C, { labelSmoothing: 0.1 }).loss], { atol: 1e-5, rtol: 1e-5 });
    for (const tn of [tx, tt, a.loss]) tn.dispose();
  });

  it('every target ignored: mean is NaN (as torch), sum is 0, gradient is 0', async () => {
    const B = 3;
    const C = 17;
    const tx = Tensor.from(rt(), randArray(B * C, 7), [B, C]);
    const tt = Tensor.from(rt(), [-100, -100, -100], [B], 'i32');
    const m = crossEntropy(tx, tt);
    const s = crossEntropy(tx, tt, { reduction: 'sum' });
    expect(Number.isNaN((await m.loss.read())[0])).toBe(true);
    expect((await s.loss.read())[0]).toBe(0);
    expect((await m.dlogits!.read()).every((v) => v === 0)).toBe(true);
    for (const tn of [tx, tt, m.loss, m.dlogits, s.loss, s.dlogits]) tn?.dispose();
  });

  it('a target outside [0, C) poisons its row with NaN (torch raises), other rows stay exact', async () => {
    const B = 3;
    const C = 17;
    const x = randArray(B * C, 8);
    const tx = Tensor.from(rt(), x, [B, C]);
    const tt = Tensor.from(rt(), [4, 17, 2], [B], 'i32');
    const r = crossEntropy(tx, tt, { reduction: 'none' });
    const rows = await r.loss.read();
    const ref = crossEntropyRef(x, [4, -100, 2], C, { reduction: 'none' }).rows;
    expect(Number.isNaN(rows[1])).toBe(true);
    expectClose([rows[0]!, rows[2]!], [ref[0]!, ref[2]!], { atol: 1e-5, rtol: 1e-5 });
    const d = await r.dlogits!.read();
    expect(d.slice(C, 2 * C).every(Number.isNaN)).toBe(true);
    for (const tn of [tx, tt, r.loss, r.dlogits]) tn?.dispose();
  });

  it('is bit-identical across runs (loss and gradient)', async () => {
    const B = 64;
    const C = 1000;
    const tx = Tensor.from(rt(), randArray(B * C, 9, -5, 5), [B, C]);
    const tt = Tensor.from(rt(), makeTargets(B, C, 10, -100), [B], 'i32');
    const bits = async () => {
      const r = crossEntropy(tx, tt, { labelSmoothing: 0.1 });
      const out = [Array.from(new Uint32Array((await r.loss.read()).buffer)), Array.from(new Uint32Array((await r.dlogits!.read()).buffer))];
      r.loss.dispose();
      r.dlogits!.dispose();
      return out;
    };
    expect(await bits()).toEqual(await bits());
    tx.dispose();
    tt.dispose();
  });

  it('crossEntropyBackwardScale multiplies by the upstream gradient', async () => {
    const d = randArray(3 * 1000, 11);
    const td = Tensor.from(rt(), d, [3, 1000]);
    const tg = Tensor.from(rt(), [0.375], [1]);
    const out = crossEntropyBackwardScale(td, tg);
    expect(out.shape).toEqual([3, 1000]);
    expectClose(await out.read(), Array.from(d, (v) => v * 0.375), { atol: 0, rtol: 1e-7 });
    expect(() => crossEntropyBackwardScale(td, td)).toThrow(ShapeError);
    for (const tn of [td, tg, out]) tn.dispose();
  });

  it('rejects bad shapes and dtypes', () => {
    const x = Tensor.from(rt(), randArray(6, 1), [2, 3]);
    const tf = Tensor.from(rt(), [0, 1], [2]);
    const t3 = Tensor.from(rt(), [0, 1, 2], [3], 'i32');
    expect(() => crossEntropy(x, tf)).toThrow(/i32/);
    expect(() => crossEntropy(x, t3)).toThrow(ShapeError);
    expect(() => crossEntropy(x.reshape([6]), t3)).toThrow(/\[B, C\]/);
    for (const tn of [x, tf, t3]) tn.dispose();
  });
});
