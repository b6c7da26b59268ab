// Fused LoRA linear kernel vs the float64 CPU reference: both variants, vec4 and scalar loads, awkward shapes, u output, errors.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { GraftError, ShapeError } from '../src/runtime/errors.js';
import { LORA_FUSED_MAX_RANK, LORA_FUSED_VARIANTS, defaultLoraVariant, loraLinearForward, loraTileRows, type LoraFusedVariant } from '../src/kernels/lora.js';
import { sgSupported } from '../src/kernels/matmul-variants.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { loraLinearRef } from './ref/lora.js';

const rt = useRuntime();

/**
 * Tolerance. Inputs are uniform in [-1, 1): x·Wᵀ sums K products (f32 error ≲ 6e-8·K in the worst case,
 * ~1e-5·√K typical, as the matmul tests), and the adapter adds s·Σ_r u_r·B with |u| ≲ √K/2, i.e. R more
 * terms of size ≲ √K: atol = 1e-5·√K·(1 + s·√R). Any indexing bug moves results by ≥ 1e-2.
 */
const tol = (K: number, R: number, s: number) => ({ atol: 1e-5 * Math.sqrt(Math.max(K, 1)) * (1 + s * Math.sqrt(R)) + 1e-6, rtol: 1e-4 });

interface Case {
  M: number;
  K: number;
  N: number;
  R: number;
  bias?: boolean;
  s?: number;
}

// rows 1, 7, 128 (and tile-row edges); in / out 1, 3, 17, 33, 255, 768; r 1, 4, 8, 16 (and past a tile's ranks)
const CASES: Case[] = [
  { M: 1, K: 1, N: 1, R: 1 },
  { M: 7, K: 3, N: 17, R: 4 },
  { M: 7, K: 17, N: 3, R: 1, bias: false },
  { M: 128, K: 33, N: 255, R: 8 },
  { M: 1, K: 768, N: 33, R: 16 },
  { M: 128, K: 768, N: 768, R: 8, s: 2 },
  { M: 7, K: 255, N: 1, R: 16, s: 0.25 },
  { M: 33, K: 16, N: 260, R: 4 },
  { M: 65, K: 20, N: 36, R: 100 },
  { M: 9, K: 12, N: 5, R: 300, bias: false },
];

function run(c: Case, variant: LoraFusedVariant | 'matmul') {
  const { M, K, N, R } = c;
  const s = c.s ?? 0.5;
  const seed = M * 1000003 + K * 1009 + N * 31 + R;
  const x = randArray(M * K, seed);
  const w = randArray(N * K, seed + 1);
  const a = randArray(R * K, seed + 2);
  const b = randArray(N * R, seed + 3);
  const bias = c.bias === false ? null : randArray(N, seed + 4);
  const X = Tensor.from(rt(), x, [M, K]);
  const W = Tensor.from(rt(), w, [N, K]);
  const A = Tensor.from(rt(), a, [R, K]);
  const B = Tensor.from(rt(), b, [N, R]);
  const BI = bias ? Tensor.from(rt(), bias, [N]) : null;
  const opts = variant === 'matmul' ? { path: 'matmul' as const } : { variant };
  const r = loraLinearForward(X, W, A, B, { bias: BI, scaling: s, wantU: true, ...opts });
  const ref = loraLinearRef({ M, K, N, R }, x, w, a, b, bias, s);
  return { r, ref, s, inputs: [X, W, A, B, BI] };
}

describe('fused LoRA linear forward', () => {
  const variants = (): LoraFusedVariant[] => LORA_FUSED_VARIANTS.filter((v) => v !== 'sg' || sgSupported(rt()));

  it('runs the subgroup variant by default on this adapter where subgroups exist', () => {
    expect(defaultLoraVariant(rt())).toBe(sgSupported(rt()) ? 'sg' : 'plain');
  });

  for (const c of CASES) {
    it(`M ${c.M}, in ${c.K}, out ${c.N}, r ${c.R}${c.bias === false ? ', no bias' : ''}: every variant and the matmul path match the reference (y and u)`, async () => {
      for (const v of [...variants(), 'matmul' as const]) {
        const { r, ref, s, inputs } = run(c, v);
        expectClose(await r.y.read(), ref.y, tol(c.K, c.R, s), `${v} y`);
        expectClose(await r.u!.read(), ref.u, tol(c.K, 1, 0), `${v} u`);
        for (const t of [r.y, r.u, ...inputs]) t?.dispose();
      }
    });
  }

  it('tile rows: 8·G covering M, capped by the rank (workgroup memory) and at 64', () => {
    expect(loraTileRows(rt(), 1, 8)).toBe(8);
    expect(loraTileRows(rt(), 9, 8)).toBe(16);
    expect(loraTileRows(rt(), 1000, 8)).toBeLessThanOrEqual(64);
    expect(loraTileRows(rt(), 1000, 300)).toBe(8);
  });

  it('without wantU no u is returned and no buffer is left behind', async () => {
    await rt().sync();
    const live = rt().pool.stats.live;
    const { r, inputs } = run({ M: 7, K: 8, N: 9, R: 2 }, defaultLoraVariant(rt()));
    r.u?.dispose();
    const again = loraLinearForward(inputs[0]!, inputs[1]!, inputs[2]!, inputs[3]!, { scaling: 1 });
    expect(again.u).toBeNull();
    for (const t of [r.y, again.y, ...inputs]) t?.dispose();
    await rt().sync();
    expect(rt().pool.stats.live).toBe(live);
  });

  it('zero rows: an empty output, no dispatch', async () => {
    const X = Tensor.from(rt(), [], [0, 4]);
    const W = Tensor.from(rt(), randArray(12, 1), [3, 4]);
    const A = Tensor.from(rt(), randArray(8, 2), [2, 4]);
    const B = Tensor.from(rt(), randArray(6, 3), [3, 2]);
    const { y } = loraLinearForward(X, W, A, B, { scaling: 1 });
    expect(y.shape).toEqual([0, 3]);
    for (const t of [X, W, A, B, y]) t.dispose();
  });

  it('shape errors name the op and both shapes', () => {
    const t = (s: number[]) => Tensor.zeros(rt(), s);
    const [x, w, a, b] = [t([4, 6]), t([5, 6]), t([2, 6]), t([5, 2])];
    expect(() => loraLinearForward(x, t([5, 7]), a, b, { scaling: 1 })).toThrow(/W \[5, 7\] expects 7/);
    expect(() => loraLinearForward(x, w, t([2, 5]), b, { scaling: 1 })).toThrow(ShapeError);
    expect(() => loraLinearForward(x, w, a, t([5, 3]), { scaling: 1 })).toThrow(/B \[5, 3\] must be \[5, 2\]/);
    expect(() => loraLinearForward(x, w, a, b, { scaling: 1, bias: t([4]) })).toThrow(/bias \[4\] must be \[5\]/);
    expect(() => loraLinearForward(x, w, a, b, { scaling: 1, xd: t([4, 5]) })).toThrow(/xd \[4, 5\] must match x \[4, 6\]/);
    const big = t([LORA_FUSED_MAX_RANK + 1, 6]);
    const bb = t([5, LORA_FUSED_MAX_RANK + 1]);
    expect(() => loraLinearForward(x, w, big, bb, { scaling: 1, path: 'fused' })).toThrow(GraftError);
    const auto = loraLinearForward(x, w, big, bb, { scaling: 1 }); // falls back to the matmul path
    expect(auto.y.shape).toEqual([4, 5]);
    auto.y.dispose();
  });
});
