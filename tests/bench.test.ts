// Benchmark infrastructure: measure() numbers and timer names, layout helpers, the tfjs peer, quick benchmark smoke runs.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Tensor } from '../src/tensor.js';
import { gflops, measure, measureAsync, median, resolveTimer } from '../src/bench/measure.js';
import { conv2dOutputSize } from '../src/kernels/conv2d.js';
import { conv2dCase } from '../src/bench/conv2d-case.js';
import { runOpBench } from '../src/bench/run.js';
import { loadTfjs, tfjsConv2dCase, tfjsConvUnsupported, tfjsMatmulCase } from '../src/bench/tfjs.js';
import {
  conv2dHostData,
  convOutSize,
  convShape,
  diffStats,
  kcrsToRsck,
  nchwToNhwc,
  nhwcToNchw,
  seededData,
} from '../src/bench/shapes.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';

const rt = useRuntime();
const run = promisify(execFile);

// A kernel with tunable work per element: x[i] = x[i]·0.999 + 0.001, `iters` times.
const SPIN = {
  name: 'bench_test_spin',
  code: `
struct Params { n: u32, iters: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= p.n) { return; }
  var v = x[g.x];
  for (var i = 0u; i < p.iters; i++) { v = v * 0.999 + 0.001; }
  x[g.x] = v;
}`,
};

function spin(n: number, iters: number): Tensor {
  const t = Tensor.zeros(rt(), [n]);
  rt().dispatch(SPIN, { buffers: [t], params: [n, iters], workgroups: [Math.ceil(n / 64)] });
  return t;
}

describe('measure', () => {
  it('median and gflops', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow();
    expect(gflops(2e9, 1000)).toBeCloseTo(2, 12);
  });

  it('returns finite positive times and names its timer', async () => {
    const m = await measure(rt(), () => spin(4096, 64), { warmup: 1, repeats: 5 });
    expect(m.timer).toBe(rt().features.timestamps ? 'gpu-timestamp' : 'wall-clock');
    expect(m.timer).toBe(resolveTimer(rt()));
    expect(m.samplesMs).toHaveLength(5);
    for (const s of m.samplesMs) expect(Number.isFinite(s) && s > 0).toBe(true);
    expect(m.minMs).toBe(Math.min(...m.samplesMs));
    expect(m.minMs).toBeLessThanOrEqual(m.medianMs);
    expect(m.medianMs).toBeLessThanOrEqual(Math.max(...m.samplesMs));
  });

  it('wall-clock mode on request', async () => {
    const m = await measure(rt(), () => spin(1000, 8), { warmup: 0, repeats: 3, timer: 'wall-clock' });
    expect(m.timer).toBe('wall-clock');
    expect(m.samplesMs).toHaveLength(3);
    expect(m.samplesMs.every((s) => Number.isFinite(s) && s > 0)).toBe(true);
  });

  it('repeats allocate no new buffers and leak no tensors', async () => {
    const pool = rt().pool.stats;
    await measure(rt(), () => spin(3000, 4), { warmup: 1, repeats: 1 });
    const created = pool.created;
    const live = pool.live;
    for (const timer of ['auto', 'wall-clock'] as const) {
      await measure(rt(), () => spin(3000, 4), { warmup: 2, repeats: 6, timer });
    }
    expect(pool.created).toBe(created);
    expect(pool.live).toBe(live);
  });

  it('reports every run and rejects bad counts', async () => {
    const seen: string[] = [];
    const m = await measureAsync(async () => {}, { warmup: 2, repeats: 3, onRun: (d, t) => seen.push(`${d}/${t}`) });
    expect(seen).toEqual(['1/5', '2/5', '3/5', '4/5', '5/5']);
    expect(m.samplesMs).toHaveLength(3);
    await expect(measure(rt(), () => spin(8, 1), { repeats: 0 })).rejects.toThrow(/repeats/);
    await expect(measureAsync(async () => {}, { warmup: -1 })).rejects.toThrow(/warmup/);
  });
});

describe('layouts and shapes', () => {
  it('NCHW <-> NHWC round-trips and moves the right element', () => {
    const [n, c, h, w] = [2, 3, 4, 5];
    const x = seededData(n * c * h * w, 7);
    const y = nchwToNhwc(x, n, c, h, w);
    // x[1, 2, 3, 4] lives at NHWC [1, 3, 4, 2]
    expect(y[((1 * h + 3) * w + 4) * c + 2]).toBe(x[((1 * c + 2) * h + 3) * w + 4]);
    expect(Array.from(nhwcToNchw(y, n, c, h, w))).toEqual(Array.from(x));
  });

  it('KCRS -> RSCK moves the right element', () => {
    const [k, c, r, s] = [4, 3, 2, 5];
    const wt = seededData(k * c * r * s, 3);
    const o = kcrsToRsck(wt, k, c, r, s);
    // w[3, 1, 1, 4] lives at RSCK [1, 4, 1, 3]
    expect(o[((1 * s + 4) * c + 1) * k + 3]).toBe(wt[((3 * c + 1) * r + 1) * s + 4]);
  });

  it('output size agrees with the conv2d kernel', () => {
    const cases = [
      convShape({ n: 1, c: 3, h: 224, k: 64, r: 7, stride: 2, pad: 3 }),
      convShape({ n: 1, c: 8, h: 17, w: 33, k: 8, r: 3, s: 1, stride: [2, 1], pad: [1, 0], dilation: [2, 1] }),
      convShape({ n: 1, c: 4, h: 5, k: 4, r: 1, stride: 2 }),
    ];
    for (const s of cases) {
      const o = { stride: s.stride, padding: s.pad, dilation: s.dilation };
      expect(convOutSize(s)).toEqual(conv2dOutputSize(s.h, s.w, s.r, s.s, o));
    }
  });

  it('seeded data is deterministic and in [-1, 1)', () => {
    const a = seededData(1000, 5);
    expect(Array.from(a)).toEqual(Array.from(seededData(1000, 5)));
    expect(Math.min(...a)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...a)).toBeLessThan(1);
    expect(Array.from(a)).not.toEqual(Array.from(seededData(1000, 6)));
  });

  it('diffStats', () => {
    expect(diffStats([1, 2, 3], [1, 2.5, -4])).toEqual({ maxAbsDiff: 7, maxAbsRef: 4 });
    expect(diffStats([Number.NaN], [1]).maxAbsDiff).toBeNaN();
  });
});

describe('tfjs peer', () => {
  it('matmul agrees with a plain-loop product', async () => {
    const p = await loadTfjs();
    const s = { m: 5, n: 7, k: 3, batch: 2 };
    const a = seededData(2 * 5 * 3, 1);
    const b = seededData(2 * 3 * 7, 2);
    const c = tfjsMatmulCase(p, s, { a, b });
    const ref = new Float64Array(2 * 5 * 7);
    for (let z = 0; z < 2; z++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 7; j++) {
          let acc = 0;
          for (let l = 0; l < 3; l++) acc += a[(z * 5 + i) * 3 + l]! * b[(z * 3 + l) * 7 + j]!;
          ref[(z * 5 + i) * 7 + j] = acc;
        }
    expectClose(await c.output(), ref, { atol: 1e-5, rtol: 1e-5 });
    expect(c.flops).toBe(2 * 2 * 5 * 7 * 3);
    c.dispose();
  });

  it('conv2d (NHWC/HWIO inside, NCHW out) agrees with graft conv2d, plain and depthwise', async () => {
    const p = await loadTfjs();
    const shapes = [
      convShape({ n: 2, c: 3, h: 9, w: 7, k: 5, r: 3, pad: 1, stride: 2 }),
      convShape({ n: 1, c: 6, h: 8, k: 12, r: 3, pad: 1, groups: 6 }),
    ];
    for (const s of shapes) {
      const data = conv2dHostData(s, 11);
      const g = conv2dCase(rt(), s, { data });
      const t = tfjsConv2dCase(p, s, data);
      expect(t.flops).toBe(g.flops);
      expectClose(await t.output(), await g.output(), { atol: 1e-4, rtol: 1e-4 });
      g.dispose();
      t.dispose();
    }
    expect(tfjsConvUnsupported(convShape({ n: 1, c: 4, h: 4, k: 4, r: 1, groups: 2 }))).toMatch(/grouped/);
  });

  it('runOpBench compares graft and tfjs in one run', async () => {
    const s = convShape({ n: 1, c: 4, h: 6, k: 8, r: 3, pad: 1 });
    const data = conv2dHostData(s);
    const graft = conv2dCase(rt(), s, { data });
    const phases: string[] = [];
    const r = await runOpBench(
      rt(),
      {
        op: 'conv2d',
        shape: s,
        label: 'tiny',
        variant: 'auto',
        graft,
        peer: async () => ({ name: 'tfjs', version: (await loadTfjs()).version, case: tfjsConv2dCase(await loadTfjs(), s, data) }),
      },
      { warmup: 1, repeats: 2, onPhase: (ph) => phases.push(ph) },
    );
    graft.dispose();
    expect(phases).toEqual(['graft', 'graft wall-clock', 'tfjs']);
    expect(r.gflops).toBeGreaterThan(0);
    expect(Number.isFinite(r.gflops)).toBe(true);
    expect(r.peer?.timer).toBe('wall-clock');
    expect(r.peer!.gflops).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo(r.peer!.graftGflops / r.peer!.gflops, 10);
    expect(r.peer!.maxAbsDiff).toBeLessThanOrEqual(1e-4 * r.peer!.maxAbsRef + 1e-5);
  });
});

describe('bench scripts (quick sizes, not timed)', () => {
  interface Row {
    name: string;
    graft: { gflops: number } | null;
    tfjs: { gflops: number } | null;
    ratio: number | null;
    relDiff: number | null;
    error?: string;
  }
  for (const op of ['matmul', 'conv2d']) {
    it(`node scripts/bench.mjs ${op} --quick --json`, async () => {
      const args = ['scripts/bench.mjs', op, '--quick', '--json', '--max-time', '0.05', '--min-samples', '1'];
      const { stdout } = await run(process.execPath, args, { timeout: 110_000, maxBuffer: 1 << 24 });
      const lines = stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const out = JSON.parse(lines[0]!) as { op: string; adapter: string; rows: Row[] };
      expect(out.op).toBe(op);
      expect(out.adapter.length).toBeGreaterThan(0);
      expect(out.rows.length).toBeGreaterThan(0);
      for (const r of out.rows) {
        expect(r.error, r.name).toBeUndefined();
        for (const g of [r.graft?.gflops, r.tfjs?.gflops, r.ratio]) {
          expect(Number.isFinite(g) && g! > 0, `${r.name}: ${JSON.stringify(r)}`).toBe(true);
        }
        expect(r.relDiff!, r.name).toBeLessThan(1e-4);
      }
    }, 120_000);
  }
});
