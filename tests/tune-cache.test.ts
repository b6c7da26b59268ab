// Tuning cache and modes: file round trip keyed by adapter, corrupt/foreign files, 'off' determinism, planted 'cache'
// entries really dispatched (and still correct against the CPU reference), 'on' measuring once then hitting the cache.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../src/tensor.js';
import { GraftError } from '../src/runtime/errors.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { matmul, matmulDims, chooseVariant } from '../src/kernels/matmul.js';
import { VARIANT_TABLE, defaultVariant, unsupportedReason } from '../src/kernels/matmul-variants.js';
import { matmulTuneClass } from '../src/kernels/matmul-tune.js';
import { conv2d, conv2dCaps, conv2dDefaultVariant, conv2dVariantsFor } from '../src/kernels/conv2d.js';
import { VARIANTS } from '../src/kernels/conv2d-variants.js';
import { conv2dTuneClass } from '../src/kernels/conv2d-tune.js';
import { convGeom } from '../src/kernels/conv2d-geom.js';
import {
  configureTuning,
  pendingShapes,
  readTuneFile,
  saveTuned,
  tuneCachePath,
  tuneMode,
  type TuneEntry,
  type TuneFile,
  type TuneShape,
} from '../src/kernels/tune-cache.js';
import { tuneClass, tunePending, tuneShapes } from '../src/kernels/autotune.js';
import { modelTuneShapes } from '../src/kernels/tune-shapes.js';
import { Command } from 'commander';
import { formatTuneTable, registerTuneCommand } from '../src/cli/tune.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { refMatmul } from './ref/matmul.js';
import { conv2dRef } from './ref/conv2d.js';

const rt = useRuntime();
let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'graft-tune-'));
});
afterEach(() => {
  configureTuning(rt(), { mode: undefined, path: undefined });
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const entry = (variant: string, shape: TuneShape, ms: Record<string, number> = { [variant]: 1 }): TuneEntry => ({
  variant,
  ms,
  shape,
  timer: 'wall',
  graft: 'test',
  date: '2026-01-01T00:00:00.000Z',
});

const mmShape = (M: number, N: number, K: number): TuneShape => ({ kind: 'matmul', M, N, K, batch: 1, transA: false, transB: false });

/** Plant a tuning file with `entries` for this runtime's adapter (and one foreign adapter). */
function plant(path: string, r: Runtime, family: 'matmul' | 'conv2d', entries: Record<string, TuneEntry>): void {
  const file: TuneFile = {
    format: 'graft-tuning',
    version: 1,
    adapters: {
      'other/gpu/0000/Fake_GPU': { matmul: { 'm8.n64.k64.nn.v4': entry('tiled', mmShape(8, 64, 64)) } },
      [r.adapterKey()]: { [family]: entries },
    },
  };
  writeFileSync(path, JSON.stringify(file));
}

/** Kernel names (and 'sg' row-group constants) of every dispatch recorded while fn runs. */
function recordDispatches(r: Runtime): { names: string[]; groups: (number | boolean | undefined)[] } {
  const names: string[] = [];
  const groups: (number | boolean | undefined)[] = [];
  const orig = r.dispatch.bind(r);
  vi.spyOn(r, 'dispatch').mockImplementation((k, o) => {
    names.push(k.name);
    groups.push(o.constants?.G);
    orig(k, o);
  });
  return { names, groups };
}

/** A supported matmul variant other than the default for M×N (uses a different kernel body when possible). */
function otherMatmulVariant(r: Runtime, M: number, N: number): string {
  const def = VARIANT_TABLE.get(defaultVariant(r, M, N))!;
  const ok = [...VARIANT_TABLE.values()].filter((v) => !v.scalar && unsupportedReason(r, v) === null && v.algo !== def.algo);
  return ok.find((v) => v.algo === 'rb')?.name ?? ok[0]!.name;
}

async function checkMatmul(r: Runtime, M: number, N: number, K: number, seed: number): Promise<void> {
  const ad = randArray(M * K, seed);
  const bd = randArray(K * N, seed + 1);
  const a = Tensor.from(r, ad, [M, K]);
  const b = Tensor.from(r, bd, [K, N]);
  const c = matmul(a, b);
  expectClose(await c.read(), refMatmul(ad, [M, K], bd, [K, N]).out, { atol: 1e-4, rtol: 1e-4 }, `matmul ${M}×${N}×${K}`);
  for (const t of [a, b, c]) t.dispose();
}

describe('tuning cache file', () => {
  it('round-trips entries and keeps other adapters when saving', async () => {
    const r = rt();
    const path = join(dir, 'sub', 'tuning.json');
    configureTuning(r, { path, mode: 'cache' });
    expect(tuneCachePath(r)).toBe(path);
    const e1 = entry('rb', mmShape(100, 200, 300), { rb: 2, tiled: 3 });
    await saveTuned(r, 'matmul', { 'm256.n256.k1024.nn.v4': e1 });
    expect(readTuneFile(path).adapters[r.adapterKey()]?.matmul?.['m256.n256.k1024.nn.v4']).toEqual(e1);

    // a second (fake) adapter's entries survive this adapter's next save
    const f = readTuneFile(path);
    f.adapters['other/gpu/0000/Fake_GPU'] = { conv2d: { 'r3x3.s1x1.p.c64.k64.n8192': entry('tiled64', { kind: 'conv2d', x: [1, 64, 8, 8], w: [64, 64, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }) } };
    writeFileSync(path, JSON.stringify(f));
    const e2 = entry('tiled', mmShape(8, 8, 8));
    await saveTuned(r, 'matmul', { 'm8.n64.k64.nn.v4': e2 });
    const g = readTuneFile(path);
    expect(g.adapters['other/gpu/0000/Fake_GPU']?.conv2d?.['r3x3.s1x1.p.c64.k64.n8192']?.variant).toBe('tiled64');
    expect(Object.keys(g.adapters[r.adapterKey()]?.matmul ?? {}).sort()).toEqual(['m256.n256.k1024.nn.v4', 'm8.n64.k64.nn.v4']);
    expect(JSON.parse(readFileSync(path, 'utf8')).format).toBe('graft-tuning');
  });

  it('a corrupt or foreign file warns once, falls back to the default, and is replaced by the next save', async () => {
    const r = rt();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    for (const [name, text] of [
      ['corrupt.json', '{"format": "graft-tuning", "adapters": {'],
      ['foreign.json', JSON.stringify({ format: 'something-else', version: 7, adapters: [] })],
    ] as const) {
      warn.mockClear();
      const path = join(dir, name);
      writeFileSync(path, text);
      configureTuning(r, { path, mode: 'cache' });
      const d = matmulDims([40, 24], [24, 36], false, false);
      expect(chooseVariant(r, d).name).toBe(defaultVariant(r, 40, 36));
      configureTuning(r, { path, mode: 'cache' }); // reload: still one warning for this path
      expect(chooseVariant(r, d).name).toBe(defaultVariant(r, 40, 36));
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toContain(path);
      await checkMatmul(r, 40, 36, 24, 3);
      await saveTuned(r, 'matmul', { [matmulTuneClass(d)]: entry('rb', mmShape(40, 36, 24)) });
      expect(readTuneFile(path).adapters[r.adapterKey()]?.matmul?.[matmulTuneClass(d)]?.variant).toBe('rb');
    }
  });

  it('rejects an unknown $GRAFT_TUNE value with a GraftError', () => {
    const r = rt();
    const prev = process.env.GRAFT_TUNE;
    try {
      process.env.GRAFT_TUNE = 'sometimes';
      expect(() => tuneMode(r)).toThrow(GraftError);
      process.env.GRAFT_TUNE = 'ON';
      expect(tuneMode(r)).toBe('on');
      configureTuning(r, { mode: 'off' }); // the per-runtime setting wins over the environment
      expect(tuneMode(r)).toBe('off');
    } finally {
      if (prev === undefined) delete process.env.GRAFT_TUNE;
      else process.env.GRAFT_TUNE = prev;
    }
  });
});

describe('tuning modes', () => {
  it("'off' ignores a planted cache, picks the same default every time and measures nothing", async () => {
    const r = rt();
    const path = join(dir, 'tuning.json');
    const d = matmulDims([64, 40], [40, 48], false, false);
    const planted = otherMatmulVariant(r, 64, 48);
    plant(path, r, 'matmul', { [matmulTuneClass(d)]: entry(planted, mmShape(64, 48, 40)) });
    configureTuning(r, { path, mode: 'off' });
    const timed = vi.spyOn(r, 'timeGpu');
    const first = chooseVariant(r, d).name;
    expect(first).toBe(defaultVariant(r, 64, 48));
    expect(first).not.toBe(planted);
    for (let i = 0; i < 3; i++) expect(chooseVariant(r, d).name).toBe(first);
    await checkMatmul(r, 64, 48, 40, 5);
    expect(timed).not.toHaveBeenCalled();
    expect(pendingShapes(r)).toEqual([]);
    expect(await tunePending(r)).toEqual([]);
  });

  it("'cache' dispatches a planted matmul variant, and the result still matches the CPU reference", async () => {
    const r = rt();
    const path = join(dir, 'tuning.json');
    const [M, N, K] = [64, 48, 40];
    const d = matmulDims([M, K], [K, N], false, false);
    const planted = otherMatmulVariant(r, M, N);
    plant(path, r, 'matmul', { [matmulTuneClass(d)]: entry(planted, mmShape(M, N, K)) });
    configureTuning(r, { path, mode: 'cache' });
    const timed = vi.spyOn(r, 'timeGpu');
    const seen = recordDispatches(r);
    await checkMatmul(r, M, N, K, 7);
    expect(seen.names).toEqual([`matmul_${VARIANT_TABLE.get(planted)!.algo}_vec4`]);
    expect(seen.names[0]).not.toBe(`matmul_${VARIANT_TABLE.get(defaultVariant(r, M, N))!.algo}_vec4`);
    // a class missing from the cache gets the default, without measuring or remembering anything
    expect(chooseVariant(r, matmulDims([3, 8], [8, 8], false, false)).name).toBe(defaultVariant(r, 3, 8));
    expect(timed).not.toHaveBeenCalled();
    expect(pendingShapes(r)).toEqual([]);
  });

  it("'cache' ignores a cached name this runtime cannot run", async () => {
    const r = rt();
    const path = join(dir, 'tuning.json');
    const d = matmulDims([64, 40], [40, 48], false, false);
    plant(path, r, 'matmul', { [matmulTuneClass(d)]: entry('no-such-variant', mmShape(64, 48, 40)) });
    configureTuning(r, { path, mode: 'cache' });
    expect(chooseVariant(r, d).name).toBe(defaultVariant(r, 64, 48));
    await checkMatmul(r, 64, 48, 40, 9);
  });

  it("'cache' dispatches a planted conv2d variant, and the result still matches the CPU reference", async () => {
    const r = rt();
    const path = join(dir, 'tuning.json');
    const xs = [2, 8, 12, 12];
    const ws = [16, 8, 3, 3];
    const opts = { padding: 1 };
    const def = conv2dDefaultVariant(r, xs, ws, opts);
    const planted = conv2dVariantsFor(r, xs, ws, opts).find((v) => v !== def)!;
    expect(planted).toBeDefined();
    const g = convGeom(xs, ws, opts);
    const shape: TuneShape = { kind: 'conv2d', x: [2, 8, 12, 12], w: [16, 8, 3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    plant(path, r, 'conv2d', { [conv2dTuneClass(g)]: entry(planted, shape) });
    configureTuning(r, { path, mode: 'cache' });
    const seen = recordDispatches(r);
    const xd = randArray(2 * 8 * 12 * 12, 11);
    const wd = randArray(16 * 8 * 9, 12);
    const x = Tensor.from(r, xd, xs);
    const w = Tensor.from(r, wd, ws);
    const y = conv2d(x, w, opts);
    expectClose(await y.read(), conv2dRef(xd, xs, wd, ws, opts).out, { atol: 1e-4, rtol: 1e-4 }, `conv2d via ${planted}`);
    // the planted variant's kernel ran, not the default's
    const kernelOf = (name: string): string => VARIANTS.find((v) => v.name === name)!.launch(g, conv2dCaps(r)).kernel.name;
    expect(seen.names).toEqual([kernelOf(planted)]);
    expect(kernelOf(planted)).not.toBe(kernelOf(def));
    for (const t of [x, w, y]) t.dispose();
    await r.sync();
  });

  it("'on' remembers a missed class, measures it once, saves it, then hits the cache", async () => {
    const r = rt();
    const path = join(dir, 'tuning.json');
    configureTuning(r, { path, mode: 'on' });
    const [M, N, K] = [24, 32, 16];
    const d = matmulDims([M, K], [K, N], false, false);
    await checkMatmul(r, M, N, K, 13); // a miss: default variant, class remembered
    expect(pendingShapes(r)).toEqual([{ family: 'matmul', cls: matmulTuneClass(d), shape: mmShape(M, N, K) }]);
    const timed = vi.spyOn(r, 'timeGpu');
    const rows = await tunePending(r, { reps: 1 });
    expect(timed).toHaveBeenCalled();
    expect(rows.map((x) => x.cls)).toEqual([matmulTuneClass(d)]);
    const saved = readTuneFile(path).adapters[r.adapterKey()]?.matmul?.[matmulTuneClass(d)];
    expect(saved?.variant).toBe(rows[0]!.variant);
    expect(Object.keys(saved?.ms ?? {}).length).toBeGreaterThan(1);
    // the default stays unless the chosen variant beat it (by 10%) in the measurements saved with it
    const def = defaultVariant(r, M, N);
    if (saved!.variant !== def) expect(saved!.ms[saved!.variant]!).toBeLessThan(0.9 * saved!.ms[def]!);
    expect(saved!.ms[def]).toBeGreaterThan(0);

    timed.mockClear();
    expect(chooseVariant(r, d).name).toBe(saved!.variant);
    await checkMatmul(r, M, N, K, 14);
    expect(pendingShapes(r)).toEqual([]);
    expect(await tunePending(r)).toEqual([]);
    expect(timed).not.toHaveBeenCalled();
    // a fresh load of the file gives the same choice
    configureTuning(r, { path, mode: 'cache' });
    expect(chooseVariant(r, d).name).toBe(saved!.variant);
  });

  it('tuneShapes reports cached classes without measuring, and measures conv2d classes', async () => {
    const r = rt();
    const path = join(dir, 'tuning.json');
    configureTuning(r, { path, mode: 'cache' });
    const conv: TuneShape = { kind: 'conv2d', x: [1, 8, 10, 10], w: [8, 8, 1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
    const rows = await tuneShapes(r, [conv], { reps: 1 });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.cached).toBe(false);
    expect(conv2dVariantsFor(r, conv.x, conv.w)).toContain(rows[0]!.variant);
    const timed = vi.spyOn(r, 'timeGpu');
    const again = await tuneShapes(r, [conv], { reps: 1 });
    expect(timed).not.toHaveBeenCalled();
    expect(again[0]!.cached).toBe(true);
    expect(again[0]!.variant).toBe(rows[0]!.variant);
    expect(formatTuneTable(again)).toHaveLength(2);
  });
});

describe('model tuning shapes', () => {
  it('ResNet-50 and BERT-base shape lists are valid geometries with distinct entries', () => {
    const spec = { batch: 2, res: 64, seq: 16, classes: 10 };
    const res = modelTuneShapes('resnet50', spec);
    const bert = modelTuneShapes('bert-base', spec);
    for (const s of [...res, ...bert]) expect(typeof tuneClass(s)).toBe('string');
    expect(new Set(res.map((s) => JSON.stringify(s))).size).toBe(res.length);
    // every conv's input channels match some earlier conv's output channels, or the image's 3
    const convs = res.filter((s) => s.kind === 'conv2d');
    const outs = new Set([3]);
    for (const c of convs) {
      expect(outs.has(c.x[1])).toBe(true);
      outs.add(c.w[0]);
    }
    // BERT-base: the FFN up-projection (M = seq per batch slice, N = 3072, K = 768, weights transposed)
    expect(bert).toContainEqual({ kind: 'matmul', M: 16, N: 3072, K: 768, batch: 2, transA: false, transB: true });
  });
});

describe('graft tune flags', () => {
  it('an unknown model or a bad number is a GraftError before any GPU work', async () => {
    for (const args of [['--model', 'resnet51'], ['--model', 'bert-base,nope'], ['--batch', '0']]) {
      const program = new Command('graft').exitOverride();
      registerTuneCommand(program);
      await expect(program.parseAsync(['node', 'graft', 'tune', ...args])).rejects.toThrow(GraftError);
    }
  });
});
