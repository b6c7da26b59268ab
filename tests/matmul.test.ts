// Matmul parity against the float64 CPU reference: every variant, transposes, broadcast batches, epilogues, errors, tuning.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { GraftError, ShapeError } from '../src/runtime/errors.js';
import { MATMUL_VARIANTS, matmul, matmulFlops, tuneMatmul, chooseVariant, matmulDims, type MatmulOptions } from '../src/kernels/matmul.js';
import { defaultVariant, sgSupported } from '../src/kernels/matmul-variants.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { erf64, refMatmul, refActivation } from './ref/matmul.js';

const rt = useRuntime();

/**
 * Tolerances. Inputs are uniform in [-1, 1) (×`scale`), so each product term is ≤ scale² and a dot
 * product of K terms is ~scale²·√K/3 in size; f32 accumulation error grows like eps·√K·|partial sums|
 * ≈ 6e-8·K·scale² in the worst realistic case (2e-5 at K = 1024, scale 1). atol = 1e-5·√K·scale²
 * leaves ~4× margin at K ≈ 1000 while any indexing bug (a missing, doubled or misplaced term) moves
 * results by ≥ 1e-2. rtol 1e-4 covers the large outputs of the epilogue cases; erf is approximated
 * to 1.5e-7 (|GELU error| ≤ |x|·1e-7), far inside atol.
 */
function tol(K: number, scale = 1): { atol: number; rtol: number } {
  return { atol: 1e-5 * Math.sqrt(Math.max(K, 1)) * scale * scale + 1e-6, rtol: 1e-4 };
}

interface Case {
  M: number;
  N: number;
  K: number;
  batchA?: number[];
  batchB?: number[];
  opts?: MatmulOptions;
  bias?: boolean;
  residual?: boolean;
  scale?: number;
}

let seed = 1;

/** Run one case on the GPU and compare with the reference; returns the variant name used. */
async function check(c: Case, what: string): Promise<void> {
  const r = rt();
  const o = c.opts ?? {};
  const s = c.scale ?? 1;
  const aShape = [...(c.batchA ?? []), ...(o.transA ? [c.K, c.M] : [c.M, c.K])];
  const bShape = [...(c.batchB ?? []), ...(o.transB ? [c.N, c.K] : [c.K, c.N])];
  const aData = randArray(aShape.reduce((x, y) => x * y, 1), seed++).map((v) => v * s);
  const bData = randArray(bShape.reduce((x, y) => x * y, 1), seed++).map((v) => v * s);
  const biasData = c.bias ? randArray(c.N, seed++) : undefined;
  const ref0 = refMatmul(aData, aShape, bData, bShape, { transA: o.transA, transB: o.transB });
  const resData = c.residual ? randArray(ref0.out.length, seed++) : undefined;
  const ref = refMatmul(aData, aShape, bData, bShape, { ...o, bias: biasData, residual: resData });
  const a = Tensor.from(r, aData, aShape);
  const b = Tensor.from(r, bData, bShape);
  const bias = biasData ? Tensor.from(r, biasData, [c.N]) : undefined;
  const residual = resData ? Tensor.from(r, resData, ref.shape) : undefined;
  const out = matmul(a, b, { ...o, bias, residual });
  expect(out.shape).toEqual(ref.shape);
  const got = await out.read();
  expectClose(got, ref.out, tol(c.K, s), `${what} M=${c.M} N=${c.N} K=${c.K} ${JSON.stringify({ ...o, batchA: c.batchA, batchB: c.batchB })}`);
  for (const t of [a, b, bias, residual, out]) t?.dispose();
}

describe('matmul reference', () => {
  it('erf64 and the activations match known values', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5) from tables (15+ digits)
    expect(erf64(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf64(1)).toBeCloseTo(0.8427007929497149, 14);
    expect(erf64(-2)).toBeCloseTo(-0.9953222650189527, 14);
    expect(erf64(3.5)).toBeCloseTo(0.9999992569016276, 14);
    expect(refActivation(-1, 'relu')).toBe(0);
    expect(refActivation(1, 'gelu')).toBeCloseTo(0.8413447460685429, 14);
  });

  it('loops agree with an independent 2×2 computation', () => {
    const { out } = refMatmul([1, 2, 3, 4], [2, 2], [5, 6, 7, 8], [2, 2], { transB: true });
    // [[1,2],[3,4]] · [[5,7],[6,8]]
    expect(Array.from(out)).toEqual([1 * 5 + 2 * 6, 1 * 7 + 2 * 8, 3 * 5 + 4 * 6, 3 * 7 + 4 * 8]);
  });
});

describe('matmul variants', () => {
  /** True if `variant` can run here; otherwise checks that forcing it throws (sg* without subgroups ≥ 8). */
  const runs = (variant: string): boolean => {
    if (!variant.startsWith('sg') || sgSupported(rt())) return true;
    const z = Tensor.zeros(rt(), [2, 2]);
    expect(() => matmul(z, z, { variant })).toThrow(GraftError);
    z.dispose();
    return false;
  };
  // Each algorithm's A path and B path are independent, so (plain, plain) and (transA, transB) reach every load
  // path of both operands; the mixed combinations run on sg8 (scalar loads). The sg kernels differ only in the number of 8-row
  // blocks (G), so sg64 runs plain here (its transposed paths are the sg8 ones; the 1000+ case adds transA).
  // Every distinct (algorithm, loads, transposes) is a pipeline to compile (seconds each on lavapipe), hence no
  // full cross product.
  const TT: [boolean, boolean][] = [
    [false, false],
    [true, true],
  ];
  const COMBOS: Record<string, [boolean, boolean][]> = {
    sg8: [...TT, [true, false], [false, true]],
    sg64: [[false, false]],
  };
  for (const variant of ['tiled', 'rb', 'skinny', 'sg8', 'sg64']) {
    const combos = COMBOS[variant] ?? TT;
    it(`${variant}: awkward unaligned shapes (scalar loads), transposes`, async () => {
      if (!runs(variant)) return;
      const shapes: [number, number, number][] = [
        [1, 1, 1],
        [3, 17, 33],
        [33, 5, 255],
        [70, 67, 18],
        [17, 130, 7],
      ];
      for (const [i, [M, N, K]] of shapes.entries()) {
        for (const [transA, transB] of combos) {
          if (i === 0 && (transA || transB)) continue;
          await check({ M, N, K, opts: { variant, transA, transB } }, variant);
        }
      }
    });
    it(`${variant}: vec4-aligned shapes, transposes`, async () => {
      if (!runs(variant)) return;
      for (const [transA, transB] of combos.slice(0, 2)) {
        await check({ M: 20, N: 72, K: 44, opts: { variant, transA, transB } }, variant);
        // K a multiple of 4 but not of 16; M and N crossing tile edges
        await check({ M: 68, N: 132, K: 36, opts: { variant, transA, transB } }, variant);
      }
    });
  }

  it('every variant name, forced (vec4 and scalar-load forms)', async () => {
    for (const variant of MATMUL_VARIANTS) {
      if (!runs(variant)) continue;
      await check({ M: 28, N: 36, K: 24, opts: { variant } }, variant);
      await check({ M: 9, N: 11, K: 13, opts: { variant } }, variant);
    }
  });

  it('tiny and edge dims: 1, 3, K = 0', async () => {
    for (const [M, N, K] of [
      [1, 3, 1],
      [3, 1, 17],
      [1, 1, 1024],
      [5, 4, 0],
    ] as [number, number, number][]) {
      for (const [transA, transB] of [
        [false, false],
        [true, true],
      ]) {
        await check({ M, N, K, opts: { transA, transB } }, 'auto');
      }
    }
  });

  it('1000+ dimensions', async () => {
    await check({ M: 1001, N: 67, K: 130 }, 'auto');
    await check({ M: 8, N: 1027, K: 1100, opts: { transA: true, transB: true } }, 'auto');
    await check({ M: 64, N: 256, K: 1024, opts: { transA: true } }, 'auto'); // the dW = gᵀ·x pattern
  });
});

describe('matmul batches', () => {
  it('broadcasts batch dims numpy-style', async () => {
    const cases: Case[] = [
      { M: 5, N: 7, K: 9, batchA: [3], batchB: [3] },
      { M: 5, N: 7, K: 9, batchA: [2, 3] }, // b [K, N] shared
      { M: 4, N: 8, K: 12, batchB: [4] }, // a shared
      { M: 3, N: 6, K: 5, batchA: [2, 1], batchB: [1, 3] },
      { M: 6, N: 5, K: 3, batchA: [3, 2, 2], batchB: [2, 1], opts: { transA: true, transB: true } }, // outer level dispatched separately
      { M: 17, N: 33, K: 20, batchA: [2, 1, 3], batchB: [4, 1] },
    ];
    for (const c of cases) await check(c, 'batch');
  });

  it('batched on every usable variant', async () => {
    for (const variant of MATMUL_VARIANTS.filter((v) => !v.endsWith('_s') && (!v.startsWith('sg') || sgSupported(rt())))) {
      await check({ M: 9, N: 12, K: 8, batchA: [2, 3], batchB: [3], opts: { variant } }, variant);
    }
  });
});

describe('matmul epilogue', () => {
  it('bias, each activation, residual, and all combined', async () => {
    const acts = ['none', 'relu', 'gelu', 'gelu_tanh'] as const;
    for (const activation of acts) {
      // scale 2: pre-activations reach ±6, exercising both tails of GELU
      await check({ M: 13, N: 20, K: 24, opts: { activation }, scale: 2 }, activation);
      await check({ M: 8, N: 20, K: 24, opts: { activation, transA: true, transB: true }, bias: true, scale: 2 }, `bias+${activation}`);
    }
    await check({ M: 13, N: 19, K: 21, residual: true }, 'residual');
    await check({ M: 8, N: 36, K: 64, bias: true, residual: true, opts: { activation: 'gelu', transA: true, transB: true }, scale: 2 }, 'combined');
    await check({ M: 7, N: 9, K: 5, batchA: [2, 3], batchB: [3], bias: true, residual: true, opts: { activation: 'relu' } }, 'batched combined');
  });

  it('epilogue on every usable variant', async () => {
    for (const variant of MATMUL_VARIANTS.filter((v) => !v.startsWith('sg') || sgSupported(rt()))) {
      await check(
        { M: 11, N: 13, K: 10, bias: true, residual: true, opts: { variant, activation: 'gelu_tanh' }, scale: 2 },
        variant,
      );
    }
  });
});

describe('matmul errors and selection', () => {
  it('throws ShapeError naming the op and both shapes', () => {
    const r = rt();
    const a = Tensor.zeros(r, [2, 3, 4]);
    const b = Tensor.zeros(r, [5, 6]);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow(/matmul\(a \[2, 3, 4\], b \[5, 6\]\).*inner dims differ \(4 vs 5\)/);
    const c = Tensor.zeros(r, [3, 4, 6]);
    expect(() => matmul(a, c)).toThrow(/batch dims do not broadcast \(2 vs 3\)/);
    const bias = Tensor.zeros(r, [5]);
    const b2 = Tensor.zeros(r, [4, 6]);
    expect(() => matmul(a, b2, { bias })).toThrow(/bias \[5\] must be \[6\]/);
    expect(() => matmul(a, b2, { residual: bias })).toThrow(/residual \[5\] must match the output \[2, 3, 6\]/);
    expect(() => matmul(Tensor.zeros(r, [4]), b2)).toThrow(ShapeError);
    expect(() => matmul(a, b2, { variant: 'nope' })).toThrow(GraftError);
    for (const t of [a, b, c, bias, b2]) t.dispose();
  });

  it('matmulFlops counts 2·M·N·K per batch', () => {
    expect(matmulFlops(3, 5, 7)).toBe(210);
    expect(matmulFlops(3, 5, 7, 4)).toBe(840);
  });

  it('default choice is deterministic and tuning overrides it', async () => {
    const r = rt();
    const d = matmulDims([64, 64], [64, 64], false, false);
    expect(chooseVariant(r, d).name).toBe(defaultVariant(r, 64, 64));
    expect(defaultVariant(r, 1, 768)).toBe('skinny');
    const chosen = await tuneMatmul(r, [[24, 40, 32]], 1);
    const [cls, name] = Object.entries(chosen)[0]!;
    expect(cls).toBe('m32.nL.v4');
    expect(MATMUL_VARIANTS).toContain(name);
    expect(chooseVariant(r, matmulDims([24, 32], [32, 40], false, false)).name).toBe(name);
    await check({ M: 24, N: 40, K: 32 }, 'tuned');
    r.tuning.delete('matmul');
  });
});
