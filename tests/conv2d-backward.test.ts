// Conv2d backward: CPU reference vs float64 finite differences, then GPU data/weight/bias gradients vs the CPU reference.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { ShapeError } from '../src/runtime/errors.js';
import {
  GEMM_DCOL_LIMIT, WEIGHT_GEMM_MAX_COLS, autoSplit, chooseDataPath, chooseWeightPath, conv2dBackwardBias, conv2dBackwardData, conv2dBackwardWeight, convBwdGeom,
  gemmScratchPerImage, type ConvOpts, type DataPath,
} from '../src/kernels/conv2d-backward.js';
import {
  conv2dBackwardBiasRef, conv2dBackwardDataRef, conv2dBackwardWeightRef, conv2dForwardRef, conv2dOutShapeRef, dot, finiteDiff, rand64,
} from './ref/cnn-backward.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

type S4 = [number, number, number, number];

describe('conv2d backward CPU reference vs finite differences (float64)', () => {
  // N=2, H=W=5 (width 6 in one case), 3×3 unless stated; loss = sum(y · G).
  const cases: { name: string; x: S4; w: S4; o: ConvOpts }[] = [
    { name: 'plain', x: [2, 3, 5, 5], w: [4, 3, 3, 3], o: {} },
    { name: 'stride 2', x: [2, 3, 5, 6], w: [4, 3, 3, 3], o: { stride: 2 } },
    { name: 'padding 1', x: [2, 3, 5, 5], w: [4, 3, 3, 3], o: { padding: 1 } },
    { name: 'dilation 2, padding 2', x: [2, 3, 5, 5], w: [2, 3, 3, 3], o: { dilation: 2, padding: 2 } },
    { name: 'groups 2, stride 2, padding 1', x: [2, 4, 5, 5], w: [6, 2, 3, 3], o: { groups: 2, stride: 2, padding: 1 } },
    { name: 'depthwise, padding 1', x: [2, 3, 5, 5], w: [3, 1, 3, 3], o: { groups: 3, padding: 1 } },
    { name: 'rect kernel, mixed pairs', x: [2, 3, 5, 6], w: [2, 3, 2, 3], o: { stride: [2, 1], padding: [1, 0], dilation: [1, 2] } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const x = rand64(c.x.reduce((a, b) => a * b), 1);
      const w = rand64(c.w.reduce((a, b) => a * b), 2);
      const b = rand64(c.w[0], 3);
      const { y, shape } = conv2dForwardRef(x, c.x, w, c.w, c.o, b);
      const G = rand64(y.length, 4);
      const loss = () => dot(conv2dForwardRef(x, c.x, w, c.w, c.o, b).y, G);
      const tol = { atol: 1e-8, rtol: 1e-6 };
      expectClose(conv2dBackwardDataRef(G, w, c.x, c.w, c.o), finiteDiff(x, loss), tol, 'dx');
      expectClose(conv2dBackwardWeightRef(x, c.x, G, c.w, c.o), finiteDiff(w, loss), tol, 'dw');
      expectClose(conv2dBackwardBiasRef(G, shape), finiteDiff(b, loss), tol, 'db');
    });
  }
});

/**
 * f32 summation error grows with the reduction length L (terms uniform(-1, 1) products): atol = 1e-7·L + 1e-6.
 * Measured: L = 4096 unsplit max |diff| 1.3e-4 (tol 4.1e-4), split 2.7e-5; L = 153 (dx) 8.8e-6 (tol 1.6e-5 + rtol).
 */
const tolFor = (L: number) => ({ atol: 1e-7 * L + 1e-6, rtol: 1e-5 });

interface Case {
  x: S4;
  w: S4;
  o: ConvOpts;
}

describe('conv2d backward GPU vs CPU reference', () => {
  const cases: (Case & { name: string })[] = [
    { name: '1×1 image, 1 channel', x: [1, 1, 1, 1], w: [1, 1, 1, 1], o: {} },
    { name: 'C3 K17 17×17 3×3 pad 1, N3', x: [3, 3, 17, 17], w: [17, 3, 3, 3], o: { padding: 1 } },
    { name: 'C17 K3 5×33 stride 2 pad 1', x: [1, 17, 5, 33], w: [3, 17, 3, 3], o: { stride: 2, padding: 1 } },
    { name: 'dilation 2 pad 3, 33×33', x: [3, 3, 33, 33], w: [3, 3, 3, 3], o: { dilation: 2, padding: 3 } },
    { name: 'groups 2 stride 2 pad 1', x: [3, 34, 17, 17], w: [6, 17, 3, 3], o: { groups: 2, stride: 2, padding: 1 } },
    { name: 'depthwise 17ch stride 2 pad 1, 33×33', x: [3, 17, 33, 33], w: [17, 1, 3, 3], o: { groups: 17, stride: 2, padding: 1 } },
    { name: 'depthwise dilation 2 pad 2', x: [1, 17, 17, 17], w: [17, 1, 3, 3], o: { groups: 17, dilation: 2, padding: 2 } },
    { name: 'depthwise multiplier 2 (C3 K6 groups 3)', x: [3, 3, 5, 5], w: [6, 1, 3, 3], o: { groups: 3, padding: 1 } },
    { name: '7×7 stride-2 stem, pad 3', x: [1, 3, 33, 33], w: [17, 3, 7, 7], o: { stride: 2, padding: 3 } },
    { name: '1×1 stride 2 downsample', x: [3, 17, 17, 17], w: [17, 17, 1, 1], o: { stride: 2 } },
    { name: 'pointwise 1×1, 1 row', x: [3, 17, 1, 33], w: [3, 17, 1, 1], o: {} },
    { name: 'unused last row/col (H=W=6, 3×3 s2)', x: [1, 3, 6, 6], w: [3, 3, 3, 3], o: { stride: 2 } },
    { name: 'stride 3 > kernel 2 (gaps in dx)', x: [3, 3, 17, 17], w: [3, 3, 2, 2], o: { stride: 3, padding: 1 } },
    { name: 'rect 1×3 / mixed pairs', x: [3, 3, 17, 5], w: [17, 3, 1, 3], o: { stride: [1, 2], padding: [0, 3], dilation: [2, 2] } },
    { name: 'kernel as large as padded input', x: [1, 3, 5, 5], w: [3, 3, 7, 7], o: { padding: 1 } },
    { name: 'late stage: 1×1 on 1×1 maps, N4', x: [4, 33, 1, 1], w: [70, 33, 1, 1], o: {} },
    { name: 'late stage: 3×3 pad 1 on 1×1 maps, N4', x: [4, 19, 1, 1], w: [21, 19, 3, 3], o: { padding: 1 } },
    { name: 'late stage: 1×1 stride 2 from 2×2 to 1×1, N3', x: [3, 40, 2, 2], w: [36, 40, 1, 1], o: { stride: 2 } },
    { name: 'late stage: 3×3 pad 1 on 2×2 maps, N4', x: [4, 17, 2, 2], w: [23, 17, 3, 3], o: { padding: 1 } },
  ];
  cases.forEach((c, ci) => {
    it(c.name, async () => {
      await runCase(c, 100 + ci);
    });
  });

  it('1×1 conv, C=256, N·P·Q=4096: split reduction (auto and forced) is right and deterministic', async () => {
    const c: Case = { x: [1, 256, 64, 64], w: [5, 256, 1, 1], o: {} };
    const g = convBwdGeom('test', c.x, c.w, [1, 5, 64, 64]);
    expect(autoSplit(g)).toBeGreaterThan(1);
    await runCase(c, 7, [undefined, 1, 3, 64]);
  });

  it('3×3 conv with a long reduction (N3, 33×33) under forced splits 1, 5, 1000 (capped at N·P = 99)', async () => {
    await runCase({ x: [3, 5, 33, 33], w: [7, 5, 3, 3], o: { padding: 1 } }, 8, [1, 5, 1000]);
  });

  it('rejects mismatched shapes with ShapeError naming both', () => {
    const r = rt();
    const dy = Tensor.zeros(r, [1, 4, 5, 5]);
    const w = Tensor.zeros(r, [4, 3, 3, 3]);
    const x = Tensor.zeros(r, [1, 3, 7, 7]);
    expect(() => conv2dBackwardData(dy, w, [1, 3, 8, 8])).toThrow(ShapeError);
    expect(() => conv2dBackwardData(dy, w, [1, 3, 7, 7], { groups: 2 })).toThrow(/groups/);
    expect(() => conv2dBackwardWeight(x, dy, [4, 3, 3, 3], { padding: 1 })).toThrow(/dy must be \[1, 4, 7, 7\]/);
    expect(() => conv2dBackwardWeight(x, dy, [4, 3, 3, 3], { split: 0 })).toThrow(/split/);
    expect(() => conv2dBackwardBias(Tensor.zeros(r, [4, 5]))).toThrow(/\[4, 5\]/);
    for (const t of [dy, w, x]) t.dispose();
  });
});

describe('conv2d backward data: GEMM + col2im path and direct path vs CPU reference', () => {
  const cases: (Case & { name: string })[] = [
    { name: '3×3 pad 1 on a 1×1 map, N2', x: [2, 19, 1, 1], w: [13, 19, 3, 3], o: { padding: 1 } },
    { name: '3×3 pad 1 on 2×2, N2 (layer4-like, odd C/K)', x: [2, 33, 2, 2], w: [35, 33, 3, 3], o: { padding: 1 } },
    { name: '3×3 stride 2 pad 1 from 3×3, N3', x: [3, 17, 3, 3], w: [21, 17, 3, 3], o: { stride: 2, padding: 1 } },
    { name: '3×3 stride 2 pad 1 from 4×4 (layer3→4 downsample)', x: [2, 9, 4, 4], w: [7, 9, 3, 3], o: { stride: 2, padding: 1 } },
    { name: '1×1 stride 2 downsample from 5×5', x: [2, 17, 5, 5], w: [19, 17, 1, 1], o: { stride: 2 } },
    { name: '1×1 pointwise on 3×3', x: [1, 5, 3, 3], w: [33, 5, 1, 1], o: {} },
    { name: '7×7 stride-2 stem pad 3, N2', x: [2, 3, 19, 19], w: [9, 3, 7, 7], o: { stride: 2, padding: 3 } },
    { name: 'dilation 2 pad 2 on 5×5', x: [2, 7, 5, 5], w: [5, 7, 3, 3], o: { dilation: 2, padding: 2 } },
    { name: 'stride 3 > kernel 2 (gaps in dx)', x: [2, 3, 7, 8], w: [5, 3, 2, 2], o: { stride: 3, padding: 1 } },
    { name: 'rect kernel, mixed pairs', x: [3, 3, 9, 5], w: [11, 3, 1, 3], o: { stride: [1, 2], padding: [0, 3], dilation: [2, 2] } },
    { name: 'unused last row/col (H=W=6, 3×3 s2), no padding', x: [1, 3, 6, 6], w: [3, 3, 3, 3], o: { stride: 2 } },
    { name: 'larger map 17×17 pad 1, N2 (direct by default)', x: [2, 5, 17, 17], w: [6, 5, 3, 3], o: { padding: 1 } },
  ];
  cases.forEach((c, ci) => {
    it(c.name, async () => {
      const r = rt();
      const shape = conv2dOutShapeRef(c.x, c.w, c.o);
      const wd = randArray(c.w.reduce((a, b) => a * b), 300 + ci);
      const dyd = randArray(shape.reduce((a, b) => a * b), 400 + ci);
      const w = Tensor.from(r, wd, c.w);
      const dy = Tensor.from(r, dyd, shape);
      const ref = conv2dBackwardDataRef(dyd, wd, c.x, c.w, c.o);
      const tol = tolFor(c.w[0] * c.w[2] * c.w[3]);
      const paths: (DataPath | undefined)[] = ['gemm', 'direct', undefined];
      for (const path of paths) {
        const dx = conv2dBackwardData(dy, w, c.x, { ...c.o, path });
        expect(dx.shape).toEqual(c.x);
        expectClose(await dx.read(), ref, tol, `dx (path ${path ?? 'auto'})`);
        dx.dispose();
      }
      for (const t of [w, dy]) t.dispose();
    });
  });

  it('GEMM path in chunks of images (forced small dcol limit: 1, 2 and 4 images of N = 5) matches the reference', async () => {
    const r = rt();
    const c: Case = { x: [5, 7, 6, 5], w: [9, 7, 3, 3], o: { stride: 2, padding: 1 } };
    const shape = conv2dOutShapeRef(c.x, c.w, c.o);
    const wd = randArray(c.w.reduce((a, b) => a * b), 500);
    const dyd = randArray(shape.reduce((a, b) => a * b), 501);
    const w = Tensor.from(r, wd, c.w);
    const dy = Tensor.from(r, dyd, shape);
    const ref = conv2dBackwardDataRef(dyd, wd, c.x, c.w, c.o);
    const per = gemmScratchPerImage(convBwdGeom('test', c.x, c.w, shape, c.o));
    for (const images of [1, 2, 4]) {
      const dx = conv2dBackwardData(dy, w, c.x, { ...c.o, path: 'gemm', chunkLimit: images * per + per - 1 });
      expectClose(await dx.read(), ref, tolFor(9 * 9), `dx (${images} images per chunk)`);
      dx.dispose();
    }
    for (const t of [w, dy]) t.dispose();
  });

  it('chooses GEMM for ungrouped convolutions whose per-image dcol fits, direct for groups > 1 or a larger dcol', () => {
    const geom = (x: S4, w: S4, o: ConvOpts) => convBwdGeom('test', x, w, conv2dOutShapeRef(x, w, o), o);
    expect(chooseDataPath(geom([2, 512, 2, 2], [512, 512, 3, 3], { padding: 1 }))).toBe('gemm');
    expect(chooseDataPath(geom([2, 256, 4, 4], [512, 256, 3, 3], { stride: 2, padding: 1 }))).toBe('gemm');
    expect(chooseDataPath(geom([64, 64, 56, 56], [64, 64, 3, 3], { padding: 1 }))).toBe('gemm'); // chunked over N
    expect(chooseDataPath(geom([2, 32, 2, 2], [32, 1, 3, 3], { groups: 32, padding: 1 }))).toBe('direct');
    expect(chooseDataPath(geom([2, 34, 5, 5], [6, 17, 3, 3], { groups: 2, padding: 1 }))).toBe('direct');
    const big = geom([1, 2048, 14, 14], [8, 2048, 7, 7], { padding: 3 }); // one image's dcol: 19.7M elements
    expect(gemmScratchPerImage(big)).toBeGreaterThan(GEMM_DCOL_LIMIT);
    expect(chooseDataPath(big)).toBe('direct');
  });

  it('weight gradient: GEMM for ungrouped convolutions with few columns (N·P·Q), the direct kernel otherwise', () => {
    const geom = (x: S4, w: S4, o: ConvOpts) => convBwdGeom('test', x, w, conv2dOutShapeRef(x, w, o), o);
    expect(chooseWeightPath(geom([4, 512, 1, 1], [2048, 512, 1, 1], {}))).toBe('gemm');
    expect(chooseWeightPath(geom([4, 256, 4, 4], [256, 256, 3, 3], { padding: 1 }))).toBe('gemm'); // 64 columns
    expect(chooseWeightPath(geom([4, 256, 8, 8], [256, 256, 3, 3], { padding: 1 }))).toBe('direct'); // 256 columns
    expect(chooseWeightPath(geom([4, 32, 1, 1], [32, 1, 3, 3], { groups: 32, padding: 1 }))).toBe('direct');
    expect(WEIGHT_GEMM_MAX_COLS).toBe(64);
  });

  it("rejects path 'gemm' with groups > 1 or a dcol over the limit, and an unknown path", () => {
    const r = rt();
    const dy = Tensor.zeros(r, [1, 4, 3, 3]);
    const w = Tensor.zeros(r, [4, 1, 3, 3]);
    expect(() => conv2dBackwardData(dy, w, [1, 4, 3, 3], { groups: 4, padding: 1, path: 'gemm' })).toThrow(/groups = 1/);
    const w2 = Tensor.zeros(r, [4, 4, 3, 3]);
    const bad = JSON.parse('"fast"') as DataPath; // a caller outside TypeScript
    expect(() => conv2dBackwardData(dy, w2, [1, 4, 3, 3], { padding: 1, path: bad })).toThrow(/path must be/);
    const xBig: S4 = [1, 2048, 14, 14];
    const wBig = Tensor.zeros(r, [8, 2048, 7, 7]);
    const dyBig = Tensor.zeros(r, [1, 8, 14, 14]);
    expect(() => conv2dBackwardData(dyBig, wBig, xBig, { padding: 3, path: 'gemm' })).toThrow(/C·R·S·P·Q/);
    const x4 = Tensor.zeros(r, [1, 4, 3, 3]);
    expect(() => conv2dBackwardWeight(x4, dy, [4, 1, 3, 3], { groups: 4, padding: 1, path: 'gemm' })).toThrow(/groups = 1/);
    expect(() => conv2dBackwardWeight(x4, dy, [4, 4, 3, 3], { padding: 1, path: bad })).toThrow(/path must be/);
    for (const t of [dy, w, w2, wBig, dyBig, x4]) t.dispose();
  });
});

async function runCase(c: Case, seed: number, splits: (number | undefined)[] = [undefined]): Promise<void> {
  const r = rt();
  const shape = conv2dOutShapeRef(c.x, c.w, c.o);
  const xd = randArray(c.x.reduce((a, b) => a * b), seed);
  const wd = randArray(c.w.reduce((a, b) => a * b), seed + 1);
  const dyd = randArray(shape.reduce((a, b) => a * b), seed + 2);
  const x = Tensor.from(r, xd, c.x);
  const w = Tensor.from(r, wd, c.w);
  const dy = Tensor.from(r, dyd, shape);
  const [N, K, P, Q] = shape;
  const Kg = K / (c.o.groups ?? 1);

  const dx = conv2dBackwardData(dy, w, c.x, c.o);
  expectClose(await dx.read(), conv2dBackwardDataRef(dyd, wd, c.x, c.w, c.o), tolFor(Kg * c.w[2] * c.w[3]), 'dx');
  const dwRef = conv2dBackwardWeightRef(xd, c.x, dyd, c.w, c.o);
  for (const split of splits) {
    const dw = conv2dBackwardWeight(x, dy, c.w, { ...c.o, split });
    const got = await dw.read();
    expectClose(got, dwRef, tolFor(N * P * Q), `dw (split ${split ?? 'auto'})`);
    if (split === undefined) {
      const dw2 = conv2dBackwardWeight(x, dy, c.w, { ...c.o, split });
      expect(Array.from(await dw2.read())).toEqual(Array.from(got)); // deterministic: bitwise equal
      dw2.dispose();
    }
    dw.dispose();
  }
  // both weight-gradient paths where GEMM applies (groups = 1), whichever the default picks
  if ((c.o.groups ?? 1) === 1) {
    for (const path of ['gemm', 'direct'] as const) {
      const dw = conv2dBackwardWeight(x, dy, c.w, { ...c.o, path });
      expectClose(await dw.read(), dwRef, tolFor(N * P * Q), `dw (path ${path})`);
      dw.dispose();
    }
  }
  const db = conv2dBackwardBias(dy);
  expectClose(await db.read(), conv2dBackwardBiasRef(dyd, shape), tolFor(N * P * Q), 'db');
  for (const t of [x, w, dy, dx, db]) t.dispose();
}
