// accumulateInto: the vec4 kernel, the scalar kernel (sizes not a multiple of 4, unaligned views), and the copy taken
// into a grad known to be zero (Tensor.zeroed) — never while a step is being captured.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Runtime } from '../src/runtime/runtime.js';
import { FlatArena } from '../src/runtime/arena.js';
import { Tensor } from '../src/tensor.js';
import { accumulateInto, copyInto, zeroInto } from '../src/autograd/accumulate.js';
import { captureStep } from '../src/runtime/capture.js';
import { useRuntime } from './helpers/gpu.js';
import { randArray } from './helpers/rand.js';

function recordDispatches(r: Runtime): { names: string[] } {
  const names: string[] = [];
  const orig = r.dispatch.bind(r);
  vi.spyOn(r, 'dispatch').mockImplementation((k, o) => {
    names.push(k.name);
    orig(k, o);
  });
  return { names };
}

const rt = useRuntime();

const added = (a: Float32Array, b: Float32Array) => Float32Array.from(a, (v, i) => Math.fround(v + b[i]!));

describe('accumulateInto', () => {
  afterEach(() => vi.restoreAllMocks());

  for (const n of [1, 3, 4, 17, 1024, 4099]) {
    it(`dst += src over ${n} elements (vec4 kernel when n % 4 == 0, scalar otherwise)`, async () => {
      const r = rt();
      const a = randArray(n, n);
      const b = randArray(n, n + 1);
      const dst = Tensor.from(r, a, [n]);
      const src = Tensor.from(r, b, [n]);
      const seen = recordDispatches(r);
      accumulateInto(dst, src);
      expect(seen.names).toEqual([n % 4 === 0 ? 'accumulate_vec4' : 'accumulate']);
      expect(Array.from(await dst.read())).toEqual(Array.from(added(a, b)));
      dst.dispose();
      src.dispose();
    });
  }

  it('arena views: each view gets its own sum and its neighbours are untouched', async () => {
    const r = rt();
    const arena = new FlatArena(r, [[3], [4], [5]], 'f32');
    const init = [randArray(3, 11), randArray(4, 12), randArray(5, 13)];
    arena.tensors.forEach((t, i) => t.write(init[i]!));
    const add = randArray(4, 14);
    const src = Tensor.from(r, add, [4]);
    accumulateInto(arena.tensors[1]!, src);
    const add3 = randArray(3, 15);
    const src3 = Tensor.from(r, add3, [3]);
    accumulateInto(arena.tensors[0]!, src3);
    expect(Array.from(await arena.tensors[0]!.read())).toEqual(Array.from(added(init[0]!, add3)));
    expect(Array.from(await arena.tensors[1]!.read())).toEqual(Array.from(added(init[1]!, add)));
    expect(Array.from(await arena.tensors[2]!.read())).toEqual(Array.from(init[2]!));
    src.dispose();
    src3.dispose();
    arena.dispose();
  });

  it('into a zeroed grad: a buffer copy, no kernel; the flag clears, so the next call adds', async () => {
    const r = rt();
    const dst = Tensor.from(r, randArray(8, 3), [8]);
    zeroInto(dst);
    expect(dst.zeroed).toBe(0); // cleared outside any capture
    const a = randArray(8, 4);
    const b = randArray(8, 5);
    const sa = Tensor.from(r, a, [8]);
    const sb = Tensor.from(r, b, [8]);
    const seen = recordDispatches(r);
    accumulateInto(dst, sa);
    expect(seen.names).toEqual([]);
    expect(dst.zeroed).toBe(false);
    accumulateInto(dst, sb);
    expect(seen.names).toEqual(['accumulate_vec4']);
    expect(Array.from(await dst.read())).toEqual(Array.from(added(a, b)));
    copyInto(dst, sa);
    expect(dst.zeroed).toBe(false);
    for (const t of [dst, sa, sb]) t.dispose();
  });

  it('while capturing, a grad zeroed outside the capture still gets the add kernel (a replay does not repeat that clear)', async () => {
    const r = rt();
    const dst = Tensor.zeros(r, [8]);
    const first = randArray(8, 6);
    const x = Tensor.from(r, first, [8]);
    zeroInto(dst);
    const seen = recordDispatches(r);
    const cap = captureStep(r, () => {
      accumulateInto(dst, x);
      return Tensor.zeros(r, [1]);
    }, { inputs: [x] });
    expect(seen.names).toContain('accumulate_vec4');
    const data = randArray(8, 7);
    cap.replay([data]);
    const want = added(first, data); // the recording run added the first batch, the replay adds `data`
    expect(Array.from(await dst.read())).toEqual(Array.from(want));
    cap.dispose();
    for (const t of [dst, x]) t.dispose();
  });

  it('while capturing, a grad zeroed inside the same capture gets the copy, and replays repeat clear + copy', async () => {
    const r = rt();
    const dst = Tensor.from(r, randArray(8, 8), [8]);
    const first = randArray(8, 9);
    const x = Tensor.from(r, first, [8]);
    const seen = recordDispatches(r);
    const cap = captureStep(r, () => {
      zeroInto(dst);
      accumulateInto(dst, x);
      return Tensor.zeros(r, [1]);
    }, { inputs: [x] });
    expect(seen.names).not.toContain('accumulate_vec4');
    expect(Array.from(await dst.read())).toEqual(Array.from(first));
    for (const seed of [10, 11]) {
      const data = randArray(8, seed);
      cap.replay([data]);
      expect(Array.from(await dst.read())).toEqual(Array.from(data));
    }
    cap.dispose();
    for (const t of [dst, x]) t.dispose();
  });
});
