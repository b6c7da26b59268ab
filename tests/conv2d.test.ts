// conv2d forward: every variant against the float64 CPU reference over awkward shapes, epilogues, and shape errors.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { ShapeError } from '../src/runtime/errors.js';
import {
  conv2d,
  conv2dFlops,
  conv2dOutputSize,
  conv2dVariantsFor,
  conv2dDefaultVariant,
  conv2dCaps,
  CONV2D_VARIANTS,
  type Conv2dOptions,
} from '../src/kernels/conv2d.js';
import { chooseVariant, type ConvCaps } from '../src/kernels/conv2d-variants.js';
import { convGeom } from '../src/kernels/conv2d-geom.js';
import { conv2dRef } from './ref/conv2d.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

interface Case {
  name: string;
  x: [number, number, number, number]; // [N, C, H, W]
  w: [number, number, number, number]; // [K, C/groups, R, S]
  o?: Conv2dOptions;
  bias?: boolean;
  relu?: boolean;
  residual?: boolean;
}

const CASES: Case[] = [
  { name: '1x1 on 1x1, C=K=1', x: [1, 1, 1, 1], w: [1, 1, 1, 1] },
  { name: '3x3 pad1, C=3 K=17, 17x33', x: [1, 3, 17, 33], w: [17, 3, 3, 3], o: { padding: 1 } },
  { name: '3x3 stride2, C=17 K=3, 33x17', x: [1, 17, 33, 17], w: [3, 17, 3, 3], o: { stride: 2 } },
  { name: '3x3 stride3 pad3 dil2, C=33 K=33', x: [1, 33, 17, 17], w: [33, 33, 3, 3], o: { stride: 3, padding: 3, dilation: 2 } },
  { name: '5x5 dil [2,1] pad [4,2], N=2', x: [2, 5, 13, 11], w: [9, 5, 5, 5], o: { dilation: [2, 1], padding: [4, 2] } },
  { name: '1x3 pad [0,1], stride [1,2]', x: [2, 7, 9, 17], w: [11, 7, 1, 3], o: { padding: [0, 1], stride: [1, 2] } },
  { name: '3x1 pad [1,0]', x: [1, 4, 17, 3], w: [5, 4, 3, 1], o: { padding: [1, 0] } },
  { name: 'groups 2, 3x3 pad1, N=3', x: [3, 34, 9, 9], w: [6, 17, 3, 3], o: { groups: 2, padding: 1 } },
  { name: 'groups 3, 1x1 stride 2, K=33', x: [1, 9, 17, 17], w: [33, 3, 1, 1], o: { groups: 3, stride: 2 } },
  { name: 'depthwise 3x3 pad1, C=K=17, N=2', x: [2, 17, 17, 17], w: [17, 1, 3, 3], o: { groups: 17, padding: 1 } },
  { name: 'depthwise 3x3 stride2, C=K=33', x: [1, 33, 33, 33], w: [33, 1, 3, 3], o: { groups: 33, stride: 2, padding: 1 } },
  { name: 'depthwise 5x5 dil2 pad4, C=K=3', x: [3, 3, 17, 17], w: [3, 1, 5, 5], o: { groups: 3, padding: 4, dilation: 2 } },
  { name: 'depthwise multiplier 2 (K=2C)', x: [1, 5, 9, 9], w: [10, 1, 3, 3], o: { groups: 5, padding: 1 } },
  { name: '7x7 stride2 pad3 stem, N=2', x: [2, 3, 33, 33], w: [64, 3, 7, 7], o: { stride: 2, padding: 3 } },
  { name: '1x1 C=256 K=33, 17x17', x: [1, 256, 17, 17], w: [33, 256, 1, 1] },
  { name: '1x1 C=257 stride 2, N=2', x: [2, 257, 13, 13], w: [17, 257, 1, 1], o: { stride: 2 } },
  { name: '1x1 K=1000 on 1x1 (fc-like)', x: [2, 255, 1, 1], w: [1000, 255, 1, 1] },
  { name: '3x3 many columns (N*P*Q > 1000), K=1', x: [3, 1, 33, 33], w: [1, 1, 3, 3], o: { padding: 1 } },
  { name: '3x3 512->17 at 7x7 (deep, small image)', x: [1, 512, 7, 7], w: [17, 512, 3, 3], o: { padding: 1 } },
  { name: 'bias', x: [2, 3, 17, 17], w: [17, 3, 3, 3], o: { padding: 1 }, bias: true },
  { name: 'bias + relu', x: [1, 33, 9, 9], w: [33, 33, 1, 1], bias: true, relu: true },
  { name: 'bias + relu + residual, stride 2', x: [2, 17, 17, 17], w: [33, 17, 3, 3], o: { stride: 2, padding: 1 }, bias: true, relu: true, residual: true },
  { name: 'residual only, depthwise', x: [1, 17, 9, 9], w: [17, 1, 3, 3], o: { groups: 17, padding: 1 }, residual: true },
  { name: 'relu + residual, 1x1 C=256', x: [1, 256, 9, 9], w: [64, 256, 1, 1], relu: true, residual: true },
  { name: 'bias + relu + residual, 1x1 on 1x1 maps, N=4 (late stage)', x: [4, 65, 1, 1], w: [96, 65, 1, 1], bias: true, relu: true, residual: true },
  { name: '3x3 pad1 on 2x2 maps, N=3, residual', x: [3, 33, 2, 2], w: [35, 33, 3, 3], o: { padding: 1 }, residual: true },
  { name: '1x1 stride 2 from 2x2 to 1x1, N=2', x: [2, 40, 2, 2], w: [70, 40, 1, 1], o: { stride: 2 }, bias: true },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Prepared {
  c: Case;
  x: Tensor;
  w: Tensor;
  bias?: Tensor;
  residual?: Tensor;
  ref: Float64Array;
  terms: number;
}

function prepare(c: Case, seed: number): Prepared {
  const r = rt();
  const xd = randArray(size(c.x), seed);
  const wd = randArray(size(c.w), seed + 1);
  const [K] = c.w;
  const [P, Q] = conv2dOutputSize(c.x[2], c.x[3], c.w[2], c.w[3], c.o);
  const bd = c.bias ? randArray(K, seed + 2) : undefined;
  const rd = c.residual ? randArray(c.x[0] * K * P * Q, seed + 3) : undefined;
  const ref = conv2dRef(xd, c.x, wd, c.w, { ...c.o, bias: bd, residual: rd, activation: c.relu ? 'relu' : 'none' });
  expect(ref.shape).toEqual([c.x[0], K, P, Q]);
  return {
    c,
    x: Tensor.from(r, xd, c.x),
    w: Tensor.from(r, wd, c.w),
    bias: bd && Tensor.from(r, bd, [K]),
    residual: rd && Tensor.from(r, rd, [c.x[0], K, P, Q]),
    ref: ref.out,
    terms: c.w[1] * c.w[2] * c.w[3],
  };
}

async function check(p: Prepared, variant: string | undefined): Promise<void> {
  const { c } = p;
  const y = conv2d(p.x, p.w, { ...c.o, bias: p.bias, residual: p.residual, activation: c.relu ? 'relu' : 'none', variant });
  const [P, Q] = conv2dOutputSize(c.x[2], c.x[3], c.w[2], c.w[3], c.o);
  expect(y.shape).toEqual([c.x[0], c.w[0], P, Q]);
  // Inputs are in [-1, 1): f32 accumulation error grows like sqrt(terms) · eps · |values|.
  const atol = 2e-6 * Math.sqrt(p.terms) * 8;
  expectClose(await y.read(), p.ref, { atol, rtol: 1e-4 }, `${c.name} [${variant ?? 'auto'}]`);
  y.dispose();
}

function release(p: Prepared): void {
  [p.x, p.w, p.bias, p.residual].forEach((t) => t?.dispose());
}

describe('conv2d forward', () => {
  it('computes output sizes and FLOPs like PyTorch', () => {
    expect(conv2dOutputSize(224, 224, 7, 7, { stride: 2, padding: 3 })).toEqual([112, 112]);
    expect(conv2dOutputSize(56, 56, 3, 3, { padding: 1 })).toEqual([56, 56]);
    expect(conv2dOutputSize(14, 14, 1, 1, { stride: 2 })).toEqual([7, 7]);
    expect(conv2dOutputSize(17, 17, 3, 3, { stride: 3, padding: 3, dilation: 2 })).toEqual([7, 7]);
    expect(conv2dOutputSize(9, 17, 1, 3, { stride: [1, 2], padding: [0, 1] })).toEqual([9, 9]);
    expect(conv2dFlops(1, 64, 56, 56, 64, 3, 3, { padding: 1 })).toBe(2 * 64 * 56 * 56 * 64 * 9);
    expect(conv2dFlops(2, 32, 8, 8, 32, 3, 3, { padding: 1, groups: 32 })).toBe(2 * 2 * 32 * 64 * 9);
  });

  const runs = new Map<string, number>(CONV2D_VARIANTS.map((v) => [v, 0]));

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s: default and every applicable variant match the reference', async (_, c, i) => {
    const r = rt();
    const p = prepare(c, 100 + 10 * i);
    const applicable = conv2dVariantsFor(r, c.x, c.w, c.o);
    expect(applicable).toContain(conv2dDefaultVariant(r, c.x, c.w, c.o));
    await check(p, undefined);
    for (const v of applicable) {
      await check(p, v);
      runs.set(v, runs.get(v)! + 1);
    }
    release(p);
  });

  it('ran every variant this adapter supports on several shapes', () => {
    const caps = conv2dCaps(rt());
    for (const [v, n] of runs) {
      const needsSubgroups = v.startsWith('sg') || v.startsWith('row') || v.startsWith('pw');
      if (needsSubgroups && !caps.subgroups8) expect(n, v).toBe(0);
      else expect(n, v).toBeGreaterThanOrEqual(3);
    }
  });

  it('folds column blocks over grid z when x would pass the per-dimension limit', async () => {
    const r = rt();
    const caps = conv2dCaps(r);
    r.tuning.set('conv2d.caps', { ...caps, maxPerDim: 5 });
    try {
      const c: Case = { name: 'tiny grid limit', x: [2, 3, 23, 21], w: [5, 3, 3, 3], o: { padding: 1 }, bias: true };
      const dw: Case = { name: 'tiny grid limit, depthwise', x: [2, 3, 23, 21], w: [3, 1, 3, 3], o: { padding: 1, groups: 3 } };
      const pw: Case = { name: 'tiny grid limit, 1x1', x: [2, 3, 23, 21], w: [5, 3, 1, 1] };
      let tried = 0;
      for (const [i, cc] of [c, dw, pw].entries()) {
        const p = prepare(cc, 7000 + 10 * i);
        for (const v of conv2dVariantsFor(r, cc.x, cc.w, cc.o)) {
          await check(p, v);
          tried++;
        }
        release(p);
      }
      expect(tried).toBeGreaterThanOrEqual(4);
    } finally {
      r.tuning.set('conv2d.caps', caps);
    }
  });

  it('selects variants by the documented rule', () => {
    const geom = (x: number[], w: number[], o: Conv2dOptions = {}) => convGeom(x, w, o);
    const cpu: ConvCaps = { subgroups8: true, cpuLike: true, maxPerDim: 65535 };
    const cpuNoSg: ConvCaps = { ...cpu, subgroups8: false };
    const gpu: ConvCaps = { ...cpu, cpuLike: false };
    const pick = (g: ReturnType<typeof geom>, caps: ConvCaps) => chooseVariant(g, caps)?.name;
    const dw = geom([1, 32, 8, 8], [32, 1, 3, 3], { groups: 32, padding: 1 });
    const pw = geom([1, 256, 56, 56], [64, 256, 1, 1]);
    const k3 = geom([1, 64, 56, 56], [64, 64, 3, 3], { padding: 1 });
    const dil = geom([1, 64, 56, 56], [64, 64, 3, 3], { padding: 2, dilation: 2 });
    expect([pick(dw, cpu), pick(dw, gpu), pick(dw, cpuNoSg)]).toEqual(['dw8', 'dw8', 'dw8']);
    expect([pick(pw, cpu), pick(pw, gpu), pick(pw, cpuNoSg)]).toEqual(['pw32x4', 'tiled64', 'reg8x4']);
    expect([pick(k3, cpu), pick(k3, gpu), pick(k3, cpuNoSg)]).toEqual(['row32x4', 'tiled64', 'reg8x4']);
    expect(pick(dil, cpu)).toBe('sg32x2');
    // Few GEMM columns (N·P·Q <= GEMM_MAX_COLS) on CPU adapters: the im2row + matmul lowering; GPUs keep tiled64.
    const late = geom([4, 512, 1, 1], [2048, 512, 1, 1]);
    const late3 = geom([4, 256, 2, 2], [256, 256, 3, 3], { padding: 1 });
    const wide = geom([4, 256, 8, 8], [256, 256, 3, 3], { padding: 1 });
    expect([pick(late, cpu), pick(late3, cpu), pick(late, cpuNoSg), pick(late, gpu)]).toEqual(['gemm', 'gemm', 'gemm', 'tiled64']);
    expect(pick(wide, cpu)).toBe('row32x4');
    expect(pick(geom([4, 8, 1, 1], [8, 2, 1, 1], { groups: 4 }), cpu)).not.toBe('gemm');
    // Depthwise with a 33-wide dilated kernel spans too many inputs for dw8: the general variants take it.
    expect(pick(geom([1, 4, 80, 80], [4, 1, 1, 9], { groups: 4, dilation: 4 }), cpu)).toBe('sg32x2');
  });

  it('handles an empty batch and zero output channels', async () => {
    const r = rt();
    const w = Tensor.from(r, randArray(2 * 3 * 9, 5), [2, 3, 3, 3]);
    for (const v of [undefined, ...conv2dVariantsFor(r, [0, 3, 5, 5], [2, 3, 3, 3])]) {
      const y = conv2d(Tensor.zeros(r, [0, 3, 5, 5]), w, { variant: v });
      expect(y.shape).toEqual([0, 2, 3, 3]);
      expect((await y.read()).length).toBe(0);
    }
    const y0 = conv2d(Tensor.zeros(r, [1, 3, 5, 5]), Tensor.zeros(r, [0, 3, 3, 3]));
    expect(y0.shape).toEqual([1, 0, 3, 3]);
    await r.sync();
  });

  it('throws ShapeError naming both shapes on mismatches', () => {
    const r = rt();
    const x = Tensor.zeros(r, [1, 4, 5, 5]);
    const w3 = Tensor.zeros(r, [2, 3, 3, 3]);
    const w2 = Tensor.zeros(r, [2, 2, 3, 3]);
    const w4 = Tensor.zeros(r, [3, 4, 3, 3]);
    const both = /\[1, 4, 5, 5\].*\[2, 3, 3, 3\]/;
    expect(() => conv2d(x, w3)).toThrow(ShapeError);
    expect(() => conv2d(x, w3)).toThrow(both);
    expect(() => conv2d(x, w2, { groups: 3 })).toThrow(ShapeError); // 4 % 3 != 0
    expect(() => conv2d(x, w2, { groups: 3 })).toThrow(/\[1, 4, 5, 5\].*\[2, 2, 3, 3\]/);
    expect(() => conv2d(x, w2, { groups: 2 })).not.toThrow(); // 4 channels = 2 per group × 2
    expect(() => conv2d(x, w4, { groups: 2 })).toThrow(/groups 2/); // K = 3 not divisible by 2
    expect(() => conv2d(x, w2, { groups: 0 })).toThrow(ShapeError);
    expect(() => conv2d(x, Tensor.zeros(r, [2, 4, 7, 7]))).toThrow(/does not fit/);
    expect(() => conv2d(Tensor.zeros(r, [4, 5, 5]), w3)).toThrow(ShapeError);
    expect(() => conv2d(x, w4, { bias: Tensor.zeros(r, [4]) })).toThrow(/bias/);
    expect(() => conv2d(x, w4, { residual: Tensor.zeros(r, [1, 3, 4, 4]) })).toThrow(/residual.*\[1, 3, 3, 3\]/);
    expect(() => conv2d(x, w4, { stride: 0 })).toThrow(ShapeError);
    expect(() => conv2d(x, w4, { variant: 'nope' })).toThrow(/unknown variant/);
  });
});
