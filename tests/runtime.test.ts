// Runtime spine: adapter, upload/download, pooling, batching into one submit, loud errors.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import { cast } from '../src/kernels/cast.js';
import { ShaderError } from '../src/runtime/errors.js';
import { sizeClass } from '../src/runtime/pool.js';
import { toHalfBits, fromHalfBits } from '../src/runtime/half.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

describe('runtime', () => {
  it('has an adapter and reports it', () => {
    const s = rt().summary();
    expect(s.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(typeof s.description).toBe('string');
  });

  it('round-trips f32 and i32 tensors of awkward sizes', async () => {
    for (const n of [1, 3, 17, 255, 1001]) {
      const data = randArray(n, n);
      const t = Tensor.from(rt(), data, [n]);
      expectClose(await t.read(), data, { atol: 0, rtol: 0 });
      const ints = Int32Array.from(data, (v) => Math.round(v * 1000));
      const ti = Tensor.from(rt(), ints, [n], 'i32');
      expect(Array.from(await ti.readInt())).toEqual(Array.from(ints));
      t.dispose();
      ti.dispose();
    }
  });

  it('zeros clears recycled buffers', async () => {
    const a = Tensor.from(rt(), new Float32Array(300).fill(7), [300]);
    a.dispose();
    const z = Tensor.zeros(rt(), [300]);
    expect(Math.max(...(await z.read()).map(Math.abs))).toBe(0);
    z.dispose();
  });

  it('reshape shares storage and infers -1', async () => {
    const t = Tensor.from(rt(), [1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    t.dispose();
    expect(Array.from(await v.read())).toEqual([1, 2, 3, 4, 5, 6]);
    v.dispose();
    expect(() => v.buffer).toThrow(/disposed/);
    expect(() => Tensor.from(rt(), [1, 2], [3])).toThrow(/needs 3/);
  });

  it('size classes waste at most 25%', () => {
    for (const b of [1, 256, 257, 1000, 4096, 5000, 1 << 20, 3_000_001]) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      expect(c).toBeLessThanOrEqual(Math.max(256, b * 1.25));
    }
  });

  it('scope frees temporaries and keeps results; steady loops create no buffers', async () => {
    const r = rt();
    const x = Tensor.from(r, randArray(1000, 1), [1000]);
    const step = () =>
      scope(r, () => {
        const t1 = Tensor.empty(r, [1000]);
        const t2 = Tensor.empty(r, [500]);
        void t1;
        return t2;
      });
    step().dispose();
    await r.sync();
    const created = r.pool.stats.created;
    const live = r.pool.stats.live;
    for (let i = 0; i < 50; i++) {
      step().dispose();
      r.submit();
    }
    expect(r.pool.stats.created).toBe(created);
    expect(r.pool.stats.live).toBe(live);
    x.dispose();
  });

  it('batches kernels into one submit per flush', async () => {
    const r = rt();
    if (!r.features.f16) return expect(r.features.f16).toBe(false);
    const x = Tensor.from(r, randArray(100, 2), [100]);
    await r.sync();
    const s0 = r.stats.submits;
    const d0 = r.stats.dispatches;
    const h = cast(x, 'f16');
    const back = cast(h, 'f32');
    const h2 = cast(back, 'f16');
    expect(r.stats.dispatches - d0).toBe(3);
    expect(r.stats.submits - s0).toBe(0);
    await h2.read();
    expect(r.stats.submits - s0).toBe(1);
    [x, h, back, h2].forEach((t) => t.dispose());
  });

  it('casts f32 <-> f16 like the CPU half conversion', async () => {
    const r = rt();
    if (!r.features.f16) return;
    for (const n of [1, 3, 17, 1001, 70_000]) {
      const data = randArray(n, n + 5, -70000, 70000);
      const x = Tensor.from(r, data, [n]);
      const h = cast(x, 'f16');
      const ref = Float32Array.from(data, (v) => fromHalfBits(toHalfBits(v)));
      expectClose(await h.read(), ref, { atol: 0, rtol: 0 }, `f32->f16 n=${n}`);
      const back = cast(h, 'f32');
      expectClose(await back.read(), ref, { atol: 0, rtol: 0 }, `f16->f32 n=${n}`);
      [x, h, back].forEach((t) => t.dispose());
    }
  });

  it('turns a WGSL compile error into a ShaderError naming kernel and line', async () => {
    const r = rt();
    const bad = { name: 'broken_kernel', code: '@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = undefined_thing;\n}\n' };
    try {
      r.dispatch(bad, { buffers: [], workgroups: [1] });
    } catch {
      /* some implementations throw synchronously */
    }
    const err = await r.sync().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ShaderError);
    expect(String((err as Error).message)).toMatch(/broken_kernel\.wgsl:3:/);
  });
});

describe('flat arena', () => {
  it('packs tensors as aligned views and splits chunks at the binding limit', async () => {
    const { FlatArena } = await import('../src/runtime/arena.js');
    const r = rt();
    const shapes = [[3], [17, 5], [1], [200]];
    const arena = new FlatArena(r, shapes, 'f32', 1024);
    expect(arena.tensors.map((t) => t.shape)).toEqual(shapes);
    for (const t of arena.tensors) expect(t.byteOffset % 256).toBe(0);
    expect(arena.chunks.length).toBeGreaterThan(1);
    const data = shapes.map((s, i) => randArray(s.reduce((a, b) => a * b, 1), 40 + i));
    arena.tensors.forEach((t, i) => t.write(data[i]!));
    for (let i = 0; i < shapes.length; i++) expectClose(await arena.tensors[i]!.read(), data[i]!, { atol: 0, rtol: 0 });
    const z = Tensor.zeros(r, [1]);
    expect(Array.from(await z.read())).toEqual([0]);
    z.dispose();
    expect(arena.segments.map((s) => s.size)).toEqual([3, 85, 1, 200]);
    expect(() => new FlatArena(r, [[300]], 'f32', 1024)).toThrow(/exceeds/);
    arena.dispose();
  });
});

describe('relocate', () => {
  it('moves a tensor into an arena view, keeping identity and data', async () => {
    const { FlatArena } = await import('../src/runtime/arena.js');
    const r = rt();
    const data = randArray(33, 9);
    const t = Tensor.from(r, data, [3, 11]);
    const live = r.pool.stats.live;
    const arena = new FlatArena(r, [[5], [3, 11]]);
    t.relocate(arena.tensors[1]!);
    expect(r.pool.stats.live).toBe(live - 1);
    expect(t.byteOffset).toBe(arena.tensors[1]!.byteOffset);
    expectClose(await t.read(), data, { atol: 0, rtol: 0 });
    expectClose(await arena.tensors[1]!.read(), data, { atol: 0, rtol: 0 });
    expect(() => t.relocate(arena.tensors[0]!)).toThrow(/relocate/);
    t.dispose();
    arena.dispose();
  });
});

describe('pipeline cache', () => {
  it('keys pipelines by entry point and constants', async () => {
    const r = rt();
    const code = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
override VALUE: f32 = 1.0;
@compute @workgroup_size(64) fn one(@builtin(global_invocation_id) g: vec3u) { if (g.x < p.n) { y[g.x] = VALUE; } }
@compute @workgroup_size(64) fn two(@builtin(global_invocation_id) g: vec3u) { if (g.x < p.n) { y[g.x] = 2.0 * VALUE; } }
`;
    const y = Tensor.empty(r, [5]);
    const run = (entry: string, value: number) => {
      r.dispatch({ name: 'entry_test', code, entry }, { buffers: [y], params: [5], constants: { VALUE: value }, workgroups: [1] });
      return y.read();
    };
    expect(Array.from(await run('one', 3))).toEqual([3, 3, 3, 3, 3]);
    expect(Array.from(await run('two', 3))).toEqual([6, 6, 6, 6, 6]);
    expect(Array.from(await run('one', 4))).toEqual([4, 4, 4, 4, 4]);
    y.dispose();
  });
});
