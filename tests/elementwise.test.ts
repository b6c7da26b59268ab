// Parity of unary / broadcasting binary / scale / fill kernels with float64 CPU references over awkward shapes.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { FlatArena } from '../src/runtime/arena.js';
import { ShapeError } from '../src/runtime/errors.js';
import {
  binary,
  broadcastShapes,
  fill,
  scale,
  unary,
  type BinaryOp,
  type UnaryOp,
} from '../src/kernels/elementwise.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, type Tol } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { binaryRef, erf, erfc, unaryRef } from './ref/elementwise.js';

const rt = useRuntime();
const SIZES = [1, 3, 17, 33, 255, 1000, 4099];

// Input ranges where each op is defined and well-conditioned, and tolerances from the WGSL/Vulkan
// precision rules (exp: 3 + 2|x| ULP, div/sqrt: ~2.5 ULP, log: 2^-21 absolute near 1, sin/cos on
// [-2π, 2π]), with the f32 rounding of the result on top.
const UNARY: Record<UnaryOp, { lo: number; hi: number; tol: Tol }> = {
  neg: { lo: -3, hi: 3, tol: { atol: 0, rtol: 0 } },
  abs: { lo: -3, hi: 3, tol: { atol: 0, rtol: 0 } },
  exp: { lo: -10, hi: 10, tol: { atol: 0, rtol: 4e-6 } },
  log: { lo: 0.01, hi: 100, tol: { atol: 1e-6, rtol: 1e-6 } },
  sqrt: { lo: 0, hi: 100, tol: { atol: 0, rtol: 1e-6 } },
  rsqrt: { lo: 0.01, hi: 100, tol: { atol: 0, rtol: 2e-6 } },
  square: { lo: -30, hi: 30, tol: { atol: 0, rtol: 1e-7 } },
  reciprocal: { lo: 0.05, hi: 20, tol: { atol: 0, rtol: 1e-6 } },
  relu: { lo: -3, hi: 3, tol: { atol: 0, rtol: 0 } },
  gelu: { lo: -9, hi: 9, tol: { atol: 1e-6, rtol: 1e-6 } },
  gelu_tanh: { lo: -9, hi: 9, tol: { atol: 2e-6, rtol: 1e-6 } },
  tanh: { lo: -20, hi: 20, tol: { atol: 2e-6, rtol: 1e-6 } },
  sigmoid: { lo: -30, hi: 30, tol: { atol: 1e-6, rtol: 2e-6 } },
  sin: { lo: -2 * Math.PI, hi: 2 * Math.PI, tol: { atol: 2e-6, rtol: 0 } },
  cos: { lo: -2 * Math.PI, hi: 2 * Math.PI, tol: { atol: 2e-6, rtol: 0 } },
  sign: { lo: -3, hi: 3, tol: { atol: 0, rtol: 0 } },
  step: { lo: -3, hi: 3, tol: { atol: 0, rtol: 0 } },
};

/** Random data in [lo, hi) with a few exact zeros and ±1 sprinkled in (edge cases for sign/step/relu). */
function data(n: number, seed: number, lo: number, hi: number): Float32Array {
  const d = randArray(n, seed, lo, hi);
  for (let i = 0; i < n; i += 7) {
    const v = [0, 1, -1][(i / 7) % 3]!;
    if (v >= lo && v <= hi) d[i] = v;
  }
  return d;
}

async function runBinary(op: BinaryOp, aShape: number[], bShape: number[], seed: number, tol: Tol): Promise<void> {
  const na = aShape.reduce((s, d) => s * d, 1);
  const nb = bShape.reduce((s, d) => s * d, 1);
  const [lo, hi] = op === 'pow' ? [0.1, 3] : [-2, 2];
  const ad = randArray(na, seed, lo, hi);
  let bd = randArray(nb, seed + 1, op === 'pow' ? -2 : -2, 2);
  if (op === 'div') bd = bd.map((v) => (Math.abs(v) < 0.1 ? 0.5 : v));
  if (op === 'eq' || op === 'max' || op === 'min') bd = bd.map((v, i) => (i % 3 === 0 ? ad[i % na]! : v)); // ties
  const a = Tensor.from(rt(), ad, aShape);
  const b = Tensor.from(rt(), bd, bShape);
  const y = binary(a, b, op);
  const ref = binaryRef(op, ad, aShape, bd, bShape);
  expect(y.shape).toEqual(ref.shape);
  expectClose(await y.read(), ref.data, tol, `${op} [${aShape}] ∘ [${bShape}]`);
  [a, b, y].forEach((t) => t.dispose());
}

const BIN_TOL: Record<BinaryOp, Tol> = {
  add: { atol: 0, rtol: 1e-7 },
  sub: { atol: 0, rtol: 1e-7 },
  mul: { atol: 0, rtol: 1e-7 },
  div: { atol: 0, rtol: 4e-7 },
  max: { atol: 0, rtol: 0 },
  min: { atol: 0, rtol: 0 },
  pow: { atol: 1e-6, rtol: 4e-6 },
  eq: { atol: 0, rtol: 0 },
  gt: { atol: 0, rtol: 0 },
  lt: { atol: 0, rtol: 0 },
};
const BIN_OPS = Object.keys(BIN_TOL) as BinaryOp[];

describe('CPU reference', () => {
  it('erf matches tabulated values', () => {
    expect(Math.abs(erf(0.5) - 0.5204998778130465)).toBeLessThan(1e-14);
    expect(Math.abs(erf(1) - 0.8427007929497149)).toBeLessThan(1e-14);
    expect(Math.abs(erf(-2.5) + 0.9995930479825550)).toBeLessThan(1e-14);
    expect(Math.abs(erf(3.5) - 0.9999992569016276)).toBeLessThan(1e-15);
    expect(erf(0)).toBe(0);
    expect(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1)).toBeLessThan(1e-12);
    expect(Math.abs(erfc(1) - 0.1572992070502851)).toBeLessThan(1e-14);
  });
});

describe('unary', () => {
  for (const op of Object.keys(UNARY) as UnaryOp[]) {
    it(`${op} matches float64 over awkward sizes`, async () => {
      const { lo, hi, tol } = UNARY[op];
      for (const n of SIZES) {
        const d = data(n, n * 31 + op.length, lo, hi);
        const x = Tensor.from(rt(), d, [n]);
        const y = unary(x, op);
        expect(y.shape).toEqual([n]);
        expectClose(await y.read(), unaryRef(op, d), tol, `${op} n=${n}`);
        x.dispose();
        y.dispose();
      }
    });
  }

  it('keeps shape for rank 1-5 inputs and works on reshaped views', async () => {
    for (const shape of [[7], [3, 5], [2, 3, 17], [2, 1, 3, 5], [2, 3, 1, 4, 3]]) {
      const n = shape.reduce((s, d) => s * d, 1);
      const d = randArray(n, n, -3, 3);
      const x = Tensor.from(rt(), d, [n]);
      const v = x.reshape(shape);
      const y = unary(v, 'gelu');
      expect(y.shape).toEqual(shape);
      expectClose(await y.read(), unaryRef('gelu', d), UNARY.gelu.tol);
      [x, v, y].forEach((t) => t.dispose());
    }
  });

  it('scale computes alpha·x + beta and fill writes a constant', async () => {
    for (const n of SIZES) {
      const d = randArray(n, n + 3, -5, 5);
      const x = Tensor.from(rt(), d, [n]);
      const y = scale(x, -1.75, 0.3);
      const z = scale(x, 2);
      expectClose(await y.read(), Float64Array.from(d, (v) => -1.75 * v + 0.3), { atol: 1e-6, rtol: 1e-7 });
      expectClose(await z.read(), Float64Array.from(d, (v) => 2 * v), { atol: 0, rtol: 0 });
      const f = fill(rt(), [n, 2], -2.5);
      expect(f.shape).toEqual([n, 2]);
      expectClose(await f.read(), new Float64Array(2 * n).fill(-2.5), { atol: 0, rtol: 0 });
      [x, y, z, f].forEach((t) => t.dispose());
    }
  });

  it('rejects non-f32 input', () => {
    const x = Tensor.from(rt(), [1, 2, 3], [3], 'i32');
    expect(() => unary(x, 'exp')).toThrow(ShapeError);
    x.dispose();
  });
});

describe('binary', () => {
  for (const op of BIN_OPS) {
    it(`${op}: same shape, scalar, and every broadcast kind`, async () => {
      const tol = BIN_TOL[op];
      let seed = op.length * 100;
      for (const n of SIZES) await runBinary(op, [n], [n], seed++, tol);
      const cases: [number[], number[]][] = [
        [[3, 1, 5], [1, 4, 1]], // both sides broadcast
        [[2, 3, 17], [17]], // leading dims of b missing
        [[33], [4, 3, 33]], // leading dims of a missing
        [[5, 33], [5, 1]], // inner broadcast (column)
        [[1, 1], [7, 9]], // single-element a
        [[255, 3], [1]], // single-element b
        [[3, 1, 8], [1, 5, 8]], // innermost dim multiple of 4
        [[6, 1], [6, 8]], // a broadcast along a multiple-of-4 innermost dim
        [[4, 8], [4, 1]], // b broadcast along a multiple-of-4 innermost dim
        [[2, 1, 3, 1, 4], [1, 5, 1, 6, 4]], // rank 5
        [[2, 1, 3, 1, 5, 1], [1, 4, 1, 2, 1, 3]], // rank 6, nothing merges
        [[1, 2, 3, 4, 1], [6, 2, 3, 4, 5]], // merges down to 3 dims
      ];
      for (const [as, bs] of cases) await runBinary(op, as, bs, seed++, tol);
    });
  }

  it('a number operand is a scalar for every op', async () => {
    for (const op of BIN_OPS) {
      for (const n of [1, 17, 1000]) {
        const ad = op === 'pow' ? randArray(n, n, 0.1, 3) : randArray(n, n, -2, 2);
        const s = op === 'pow' ? 2.5 : op === 'eq' ? ad[0]! : 0.75;
        const a = Tensor.from(rt(), ad, [n]);
        const y = binary(a, s, op);
        const ref = binaryRef(op, ad, [n], [s], [1]);
        expectClose(await y.read(), ref.data, BIN_TOL[op], `${op} scalar ${s}`);
        a.dispose();
        y.dispose();
      }
    }
  });

  it('pow follows numpy for negative bases with integer exponents and zero bases', async () => {
    const base = [-2, -1.5, -3, 0, 0, 0, 2, -0.5, 4, -2];
    const expo = [2, 3, -1, 2, 0, 0.5, -2, 4, 0.5, 0];
    const a = Tensor.from(rt(), base, [10]);
    const b = Tensor.from(rt(), expo, [10]);
    const y = binary(a, b, 'pow');
    expectClose(await y.read(), base.map((v, i) => Math.pow(v, expo[i]!)), { atol: 1e-6, rtol: 4e-6 });
    const sq = binary(a, 2, 'pow');
    expectClose(await sq.read(), base.map((v) => v * v), { atol: 0, rtol: 4e-6 });
    [a, b, y, sq].forEach((t) => t.dispose());
  });

  it('bias add over a large [1000, 1030] tensor', async () => {
    await runBinary('add', [1000, 1030], [1030], 9, BIN_TOL.add);
    await runBinary('mul', [1000, 1, 1030], [1000, 4, 1], 10, BIN_TOL.mul);
  });

  it('reads arena views at non-zero byte offsets and the same tensor on both sides', async () => {
    const arena = new FlatArena(rt(), [[5], [3, 17], [17]]);
    const [p, q, r] = arena.tensors as [Tensor, Tensor, Tensor];
    const pd = randArray(5, 1);
    const qd = randArray(51, 2);
    const rd = randArray(17, 3);
    p.write(pd);
    q.write(qd);
    r.write(rd);
    expect(q.byteOffset).toBeGreaterThan(0);
    const y = binary(q, r, 'sub');
    expectClose(await y.read(), binaryRef('sub', qd, [3, 17], rd, [17]).data, BIN_TOL.sub);
    const z = binary(r, r, 'mul');
    expectClose(await z.read(), binaryRef('mul', rd, [17], rd, [17]).data, BIN_TOL.mul);
    const u = unary(q, 'exp');
    expectClose(await u.read(), unaryRef('exp', qd), UNARY.exp.tol);
    const w = scale(p, 3, 1);
    expectClose(await w.read(), Float64Array.from(pd, (v) => 3 * v + 1), { atol: 1e-6, rtol: 1e-7 });
    // The padding writes of the vec4 kernels must not reach the neighbouring views.
    expectClose(await r.read(), rd, { atol: 0, rtol: 0 });
    [y, z, u, w].forEach((t) => t.dispose());
    arena.dispose();
  });

  it('broadcastShapes follows numpy and names both shapes on error', () => {
    expect(broadcastShapes([3, 1, 5], [1, 4, 1])).toEqual([3, 4, 5]);
    expect(broadcastShapes([5], [2, 3, 5])).toEqual([2, 3, 5]);
    expect(broadcastShapes([], [2, 3])).toEqual([2, 3]);
    expect(() => broadcastShapes([3, 4], [5])).toThrow(ShapeError);
    expect(() => broadcastShapes([3, 4], [5])).toThrow(/\[3, 4\].*\[5\]/);
  });

  it('binary throws ShapeError naming the op and both shapes', () => {
    const a = Tensor.from(rt(), randArray(12, 1), [3, 4]);
    const b = Tensor.from(rt(), randArray(6, 2), [2, 3]);
    expect(() => binary(a, b, 'add')).toThrow(ShapeError);
    expect(() => binary(a, b, 'mul')).toThrow(/mul.*\[3, 4\].*\[2, 3\]/);
    const c = Tensor.from(rt(), randArray(16, 3), [2, 1, 2, 1, 2, 1, 2]);
    const d = Tensor.from(rt(), randArray(8, 4), [1, 2, 1, 2, 1, 2, 1]);
    expect(() => binary(c, d, 'add')).toThrow(/at most 6/);
    const i = Tensor.from(rt(), [1, 2, 3], [3], 'i32');
    expect(() => binary(a, i, 'add')).toThrow(ShapeError);
    [a, b, c, d, i].forEach((t) => t.dispose());
  });
});
