// LoRA linear through autograd: fused forward + backward vs the float64 CPU reference (incl. dropout), finite
// differences on the reference, fused == unfused, gradients reach only A and B (no dW), the GRAFT_FUSE_LORA switch.
import { afterEach, describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { backward } from '../src/autograd/engine.js';
import { dropoutMaskHost } from '../src/kernels/dropout.js';
import { fusedByDefault, loraLinear } from '../src/peft/index.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { loraLinearBackwardRef, loraLinearRef, type LoraRefShapes } from './ref/lora.js';

const rt = useRuntime();

/** f32 sums of up to max(K, N, M) terms of size ≤ 1 (see tests/lora-kernel.test.ts): 1e-5·√terms·(1 + s·√R). */
const tol = (d: LoraRefShapes, s: number) => ({ atol: 2e-5 * Math.sqrt(Math.max(d.K, d.N, d.M)) * (1 + s * Math.sqrt(d.R)) + 1e-6, rtol: 1e-4 });

interface GradCase extends LoraRefShapes {
  /** leading dims of x (product = M) */
  lead: number[];
  s: number;
  p?: number;
  /** also train W and bias (dW / dbias paths) */
  trainBase?: boolean;
}

interface Leaves {
  x: Tensor;
  w: Tensor;
  a: Tensor;
  b: Tensor;
  bias: Tensor;
  data: { x: Float32Array; w: Float32Array; a: Float32Array; b: Float32Array; bias: Float32Array; dy: Float32Array };
}

function leaves(c: GradCase, seed: number): Leaves {
  const { M, K, N, R } = c;
  const data = {
    x: randArray(M * K, seed),
    w: randArray(N * K, seed + 1),
    a: randArray(R * K, seed + 2),
    b: randArray(N * R, seed + 3),
    bias: randArray(N, seed + 4),
    dy: randArray(M * N, seed + 5),
  };
  const x = Tensor.from(rt(), data.x, [...c.lead, K]);
  const w = Tensor.from(rt(), data.w, [N, K]);
  const a = Tensor.from(rt(), data.a, [R, K]);
  const b = Tensor.from(rt(), data.b, [N, R]);
  const bias = Tensor.from(rt(), data.bias, [N]);
  x.requiresGrad = true;
  a.requiresGrad = true;
  b.requiresGrad = true;
  w.requiresGrad = !!c.trainBase;
  bias.requiresGrad = !!c.trainBase;
  return { x, w, a, b, bias, data };
}

/** Forward + backward (upstream dy) on the GPU; returns y and every gradient (null where none). */
async function runGpu(l: Leaves, c: GradCase, fused: boolean, seed = 77) {
  const y = loraLinear(l.x, l.w, l.a, l.b, l.bias, { scaling: c.s, dropout: c.p ?? 0, seed, fused });
  const dy = Tensor.from(rt(), l.data.dy, y.shape);
  backward(y, dy);
  const read = (t: Tensor) => (t.grad ? t.grad.read() : Promise.resolve(null));
  const out = { y: await y.read(), yShape: y.shape, dx: await read(l.x), dw: await read(l.w), da: await read(l.a), db: await read(l.b), dbias: await read(l.bias) };
  y.dispose();
  dy.dispose();
  return out;
}

function disposeAll(l: Leaves): void {
  for (const t of [l.x, l.w, l.a, l.b, l.bias]) {
    t.grad?.dispose();
    t.grad = null;
    t.dispose();
  }
}

const CASES: GradCase[] = [
  { M: 7, lead: [7], K: 17, N: 33, R: 4, s: 2 },
  { M: 1, lead: [1], K: 3, N: 1, R: 1, s: 1 },
  { M: 128, lead: [2, 64], K: 255, N: 33, R: 8, s: 0.5 },
  { M: 7, lead: [7], K: 768, N: 3, R: 16, s: 0.25 },
  { M: 128, lead: [128], K: 33, N: 768, R: 16, s: 1 },
  { M: 7, lead: [7], K: 17, N: 33, R: 4, s: 2, p: 0.3 },
  { M: 128, lead: [4, 32], K: 64, N: 48, R: 8, s: 0.5, p: 0.1 },
  { M: 7, lead: [7], K: 17, N: 33, R: 4, s: 2, trainBase: true },
];

describe('LoRA linear backward (fused primitive) vs the float64 reference', () => {
  for (const c of CASES) {
    const name = `rows ${c.M} (x [${c.lead.join(', ')}, ${c.K}]), out ${c.N}, r ${c.R}, s ${c.s}${c.p ? `, dropout ${c.p}` : ''}${c.trainBase ? ', W and bias trained' : ''}`;
    it(name, async () => {
      await rt().sync();
      const live = rt().pool.stats.live;
      const l = leaves(c, c.M * 7 + c.K + c.N * 3 + c.R);
      const g = await runGpu(l, c, true, 1234);
      const keep = c.p ? dropoutMaskHost(c.M * c.K, c.p, 1234, 0) : null;
      const ref = loraLinearRef(c, l.data.x, l.data.w, l.data.a, l.data.b, l.data.bias, c.s, keep, c.p ?? 0);
      const gr = loraLinearBackwardRef(c, l.data.dy, l.data.x, l.data.w, l.data.a, l.data.b, c.s, keep, c.p ?? 0);
      const t = tol(c, c.s);
      expect(g.yShape).toEqual([...c.lead, c.N]);
      expectClose(g.y, ref.y, t, 'y');
      expectClose(g.dx!, gr.dx, t, 'dX');
      expectClose(g.da!, gr.da, t, 'dA');
      expectClose(g.db!, gr.db, t, 'dB');
      if (c.trainBase) {
        expectClose(g.dw!, gr.dw, t, 'dW');
        expectClose(g.dbias!, gr.dbias, t, 'dbias');
      } else {
        // the frozen weight and bias get no gradient: nothing is computed or kept for them
        expect(g.dw).toBeNull();
        expect(g.dbias).toBeNull();
      }
      disposeAll(l);
      await rt().sync();
      expect(rt().pool.stats.live, 'buffers left after dispose').toBe(live);
    });
  }

  it('finite differences of the float64 reference agree with its analytic gradients (with a dropout mask)', () => {
    const d = { M: 3, K: 5, N: 4, R: 2 };
    const s = 1.5;
    const p = 0.4;
    const keep = dropoutMaskHost(d.M * d.K, p, 99, 3);
    expect(Array.from(keep)).toContain(0);
    const v = { x: randArray(15, 1), w: randArray(20, 2), a: randArray(10, 3), b: randArray(8, 4), dy: randArray(12, 5) };
    const L = (o: Partial<typeof v>) => {
      const q = { ...v, ...o };
      const { y } = loraLinearRef(d, q.x, q.w, q.a, q.b, null, s, keep, p);
      return y.reduce((acc, yi, i) => acc + yi * v.dy[i]!, 0);
    };
    const fd = (key: 'x' | 'w' | 'a' | 'b') => {
      const base = Float64Array.from(v[key]);
      return base.map((val, i) => {
        const h = 1e-6;
        const up = Float64Array.from(base);
        const dn = Float64Array.from(base);
        up[i] = val + h;
        dn[i] = val - h;
        return (L({ [key]: up } as Partial<typeof v>) - L({ [key]: dn } as Partial<typeof v>)) / (2 * h);
      });
    };
    const g = loraLinearBackwardRef(d, v.dy, v.x, v.w, v.a, v.b, s, keep, p);
    expectClose(g.dx, fd('x'), { atol: 1e-7, rtol: 1e-6 }, 'dX');
    expectClose(g.dw, fd('w'), { atol: 1e-7, rtol: 1e-6 }, 'dW');
    expectClose(g.da, fd('a'), { atol: 1e-7, rtol: 1e-6 }, 'dA');
    expectClose(g.db, fd('b'), { atol: 1e-7, rtol: 1e-6 }, 'dB');
  });

  it('fused == unfused (separate autograd ops): output and every gradient, with and without dropout', async () => {
    for (const c of [
      { M: 24, lead: [3, 8], K: 40, N: 36, R: 8, s: 2 },
      { M: 24, lead: [3, 8], K: 40, N: 36, R: 8, s: 2, p: 0.25 },
      { M: 5, lead: [5], K: 7, N: 9, R: 3, s: 0.5, trainBase: true },
    ] as GradCase[]) {
      const l = leaves(c, 500 + c.K);
      const f = await runGpu(l, c, true, 42);
      for (const t of [l.x, l.w, l.a, l.b, l.bias]) {
        t.grad?.dispose();
        t.grad = null;
      }
      const u = await runGpu(l, c, false, 42);
      const t = { atol: 2e-5, rtol: 1e-5 };
      expectClose(f.y, u.y, t, 'y');
      for (const k of ['dx', 'da', 'db', 'dw', 'dbias'] as const) {
        expect(f[k] === null, k).toBe(u[k] === null);
        if (f[k]) expectClose(f[k]!, u[k]!, t, k);
      }
      disposeAll(l);
    }
  });

  it('the fused op records one node and no gradient for the frozen weight; x without grad gets none either', async () => {
    const c: GradCase = { M: 4, lead: [4], K: 8, N: 6, R: 2, s: 1 };
    const l = leaves(c, 3);
    l.x.requiresGrad = false;
    const y = loraLinear(l.x, l.w, l.a, l.b, l.bias, { scaling: 1, fused: true });
    expect(y.gradFn?.name).toBe('loraLinear');
    const dy = Tensor.from(rt(), randArray(24, 9), y.shape);
    backward(y, dy);
    expect(l.x.grad).toBeNull();
    expect(l.w.grad).toBeNull();
    expect(l.bias.grad).toBeNull();
    expect(l.a.grad).not.toBeNull();
    expect(l.b.grad).not.toBeNull();
    const zeros = await l.a.grad!.read();
    expect(maxAbsDiff(zeros, new Float32Array(zeros.length))).toBeGreaterThan(0);
    for (const t of [y, dy]) t.dispose();
    disposeAll(l);
  });
});

describe('GRAFT_FUSE_LORA', () => {
  const saved = process.env.GRAFT_FUSE_LORA;
  afterEach(() => {
    if (saved === undefined) delete process.env.GRAFT_FUSE_LORA;
    else process.env.GRAFT_FUSE_LORA = saved;
  });

  it('selects the separate-op path (0) or the fused primitive (1, unset); an explicit option wins', () => {
    const c: GradCase = { M: 2, lead: [2], K: 4, N: 3, R: 1, s: 1 };
    const l = leaves(c, 11);
    const node = (fused?: boolean) => {
      const y = loraLinear(l.x, l.w, l.a, l.b, null, { scaling: 1, fused });
      const n = y.gradFn?.name;
      y.dispose();
      return n;
    };
    delete process.env.GRAFT_FUSE_LORA;
    expect(fusedByDefault()).toBe(true);
    expect(node()).toBe('loraLinear');
    process.env.GRAFT_FUSE_LORA = '0';
    expect(fusedByDefault()).toBe(false);
    expect(node()).toBe('add');
    expect(node(true)).toBe('loraLinear');
    process.env.GRAFT_FUSE_LORA = '1';
    expect(node()).toBe('loraLinear');
    expect(node(false)).toBe('add');
    process.env.GRAFT_FUSE_LORA = 'yes';
    expect(() => fusedByDefault()).toThrow(/GRAFT_FUSE_LORA must be 0 or 1/);
    disposeAll(l);
  });
});
