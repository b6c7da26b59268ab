// Fused LoRA linear kernel vs the float64 CPU reference: the default variant (and the matmul path), vec4 and scalar loads,
// awkward shapes, u output, errors. The other variant: tests/lora-kernel-plain.test.ts (split to keep each file short
// when shaders compile cold).
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { GraftError, ShapeError } from '../src/runtime/errors.js';
import { LORA_FUSED_MAX_RANK, defaultLoraVariant, loraLinearForward, loraTileRows } from '../src/kernels/lora.js';
import { sgSupported } from '../src/kernels/matmul-variants.js';
import { useRuntime } from './helpers/gpu.js';
import { randArray } from './helpers/rand.js';
import { expectClose } from './helpers/close.js';
import { CASES, checkCase, run } from './lora-cases.js';

const rt = useRuntime();

describe('fused LoRA linear forward', () => {
  it('runs the subgroup variant by default on this adapter where subgroups exist', () => {
    expect(defaultLoraVariant(rt())).toBe(sgSupported(rt()) ? 'sg' : 'plain');
  });

  for (const c of CASES) {
    it(`M ${c.M}, in ${c.K}, out ${c.N}, r ${c.R}${c.bias === false ? ', no bias' : ''}: the default variant${c.matmul ? ' and the matmul path' : ''} match the reference (y and u)`, async () => {
      await checkCase(rt, c, [defaultLoraVariant(rt()), ...(c.matmul ? ['matmul' as const] : [])]);
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
    const { r, inputs } = run(rt, { M: 7, K: 8, N: 9, R: 2 }, defaultLoraVariant(rt()));
    r.u?.dispose();
    const again = loraLinearForward(inputs[0]!, inputs[1]!, inputs[2]!, inputs[3]!, { scaling: 1 });
    expect(again.u).toBeNull();
    for (const t of [r.y, again.y, ...inputs]) t?.dispose();
    await rt().sync();
    expect(rt().pool.stats.live).toBe(live);
  });

  it('empty shapes: zero rows gives an empty output; zero output columns still gives u', async () => {
    const X = Tensor.from(rt(), [], [0, 4]);
    const W = Tensor.from(rt(), randArray(12, 1), [3, 4]);
    const A = Tensor.from(rt(), randArray(8, 2), [2, 4]);
    const B = Tensor.from(rt(), randArray(6, 3), [3, 2]);
    const { y } = loraLinearForward(X, W, A, B, { scaling: 1 });
    expect(y.shape).toEqual([0, 3]);
    const x = randArray(12, 4);
    const X3 = Tensor.from(rt(), x, [3, 4]);
    const W0 = Tensor.from(rt(), [], [0, 4]);
    const B0 = Tensor.from(rt(), [], [0, 2]);
    const r = loraLinearForward(X3, W0, A, B0, { scaling: 1, wantU: true });
    expect(r.y.shape).toEqual([3, 0]);
    const a = await A.read();
    const want = Array.from({ length: 6 }, (_, i) => {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += x[Math.floor(i / 2) * 4 + k]! * a[(i % 2) * 4 + k]!;
      return acc;
    });
    expectClose(await r.u!.read(), want, { atol: 1e-6, rtol: 1e-6 });
    for (const t of [X, W, A, B, y, X3, W0, B0, r.y, r.u!]) t.dispose();
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
