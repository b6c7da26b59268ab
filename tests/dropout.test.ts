// Dropout (Philox-4x32-10 counter RNG): known-answer vectors, GPU mask == host mask, keep rate, offsets, backward reuse.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { dropout, dropoutBackward, dropoutMaskHost, philox4x32 } from '../src/kernels/dropout.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { dot, dropoutBackwardRef, dropoutRef, numericGrad } from './ref/transformer-backward.js';

const rt = useRuntime();

/** Positive data so a kept element is never 0 and the mask can be read back from y. */
const positive = (n: number, seed: number) => randArray(n, seed, 0.5, 1.5);

async function gpuMask(n: number, p: number, seed: number, offset: number): Promise<{ mask: Uint8Array; y: Float32Array; x: Float32Array }> {
  const x = positive(n, n + seed);
  const tx = Tensor.from(rt(), x, [n]);
  const ty = dropout(tx, p, seed, offset);
  const y = await ty.read();
  tx.dispose();
  ty.dispose();
  return { mask: Uint8Array.from(y, (v) => (v !== 0 ? 1 : 0)), y, x };
}

describe('dropout RNG (host)', () => {
  it('Philox-4x32-10 matches the Random123 known-answer vectors', () => {
    const hex = (w: number[]) => w.map((v) => v.toString(16).padStart(8, '0'));
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  it('a mask at an offset is the matching slice of a longer mask', () => {
    const long = dropoutMaskHost(1000, 0.3, 7, 0);
    for (const off of [1, 2, 3, 5, 250]) expect(Array.from(dropoutMaskHost(100, 0.3, 7, off))).toEqual(Array.from(long.slice(off, off + 100)));
  });

  it('p = 0 keeps everything, p = 1 drops everything', () => {
    expect(dropoutMaskHost(100, 0, 3).every((v) => v === 1)).toBe(true);
    expect(dropoutMaskHost(100, 1, 3).every((v) => v === 0)).toBe(true);
  });

  it('CPU reference backward matches central differences', () => {
    const n = 30;
    const mask = dropoutMaskHost(n, 0.4, 9);
    const x = Float64Array.from(randArray(n, 1));
    const dy = Float64Array.from(randArray(n, 2));
    const g = numericGrad((xx) => dot(dy, dropoutRef(xx, mask, 0.4)), x, [...Array(n).keys()]);
    expectClose(dropoutBackwardRef(dy, mask, 0.4), g, { atol: 1e-9, rtol: 1e-6 });
  });
});

describe('dropout on the GPU', () => {
  it('mask equals dropoutMaskHost and kept values are scaled by 1/(1-p)', async () => {
    for (const [n, p, seed, offset] of [
      [1, 0.5, 1, 0],
      [3, 0.5, 2, 1],
      [17, 0.1, 3, 2],
      [33, 0.9, 4, 3],
      [255, 0.25, 5, 0],
      [1000, 0.5, 0xdeadbeef, 4097],
      [4099, 0.1, 2 ** 40 + 12345, 3 * 2 ** 32 + 2], // 64-bit seed and an offset past 2^32 (carry)
    ] as const) {
      const { mask, y, x } = await gpuMask(n, p, seed, offset);
      const host = dropoutMaskHost(n, p, seed, offset);
      expect(Array.from(mask), `n=${n} p=${p} seed=${seed} offset=${offset}`).toEqual(Array.from(host));
      expectClose(y, dropoutRef(x, host, p), { atol: 0, rtol: 2e-7 });
    }
  });

  it('keep rate is within 5 standard deviations of 1 - p; masks differ across seeds and offsets', async () => {
    const n = 1 << 20;
    for (const p of [0.1, 0.5]) {
      const { mask } = await gpuMask(n, p, 1234, 0);
      const kept = mask.reduce((a, b) => a + b, 0);
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(kept - n * (1 - p))).toBeLessThan(5 * sd);
      // Neighbouring elements are independent: P(both kept) ≈ (1-p)^2.
      let both = 0;
      for (let i = 0; i + 1 < n; i += 2) both += mask[i]! & mask[i + 1]!;
      const pairs = n / 2;
      const q = (1 - p) ** 2;
      expect(Math.abs(both - pairs * q)).toBeLessThan(5 * Math.sqrt(pairs * q * (1 - q)));
    }
    const a = (await gpuMask(4096, 0.5, 1, 0)).mask;
    const b = (await gpuMask(4096, 0.5, 2, 0)).mask;
    const c = (await gpuMask(4096, 0.5, 1, 4096)).mask;
    const agree = (u: Uint8Array, v: Uint8Array) => u.reduce((s, x, i) => s + (x === v[i] ? 1 : 0), 0) / u.length;
    expect(agree(a, b)).toBeGreaterThan(0.45);
    expect(agree(a, b)).toBeLessThan(0.55);
    expect(agree(a, c)).toBeLessThan(0.55);
  });

  it('backward applies the same mask and scale as the forward', async () => {
    for (const [shape, p, seed, offset] of [
      [[3, 17], 0.3, 11, 5],
      [[2, 33, 65], 0.1, 99, 1 << 20],
    ] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const dy = randArray(n, 5);
      const tdy = Tensor.from(rt(), dy, shape);
      const tdx = dropoutBackward(tdy, p, seed, offset);
      expect(tdx.shape).toEqual(shape);
      const mask = dropoutMaskHost(n, p, seed, offset);
      expectClose(await tdx.read(), dropoutBackwardRef(dy, mask, p), { atol: 0, rtol: 2e-7 });
      // And the forward with the same arguments zeroes exactly the same positions.
      const tx = Tensor.from(rt(), positive(n, 6), shape);
      const ty = dropout(tx, p, seed, offset);
      const y = await ty.read();
      expect(Array.from(y, (v) => (v !== 0 ? 1 : 0))).toEqual(Array.from(mask));
      for (const t of [tdy, tdx, tx, ty]) t.dispose();
    }
  });

  it('p = 0 is the identity, p = 1 gives zeros; bad arguments throw', async () => {
    const x = randArray(100, 8);
    const tx = Tensor.from(rt(), x, [100]);
    const y0 = dropout(tx, 0, 1);
    const y1 = dropout(tx, 1, 1);
    expectClose(await y0.read(), x, { atol: 0, rtol: 0 });
    expect((await y1.read()).every((v) => v === 0)).toBe(true);
    expect(() => dropout(tx, 1.5, 1)).toThrow(/p must be/);
    expect(() => dropout(tx, 0.5, -1)).toThrow(/seed/);
    expect(() => dropout(tx, 0.5, 1, 0.5)).toThrow(/offset/);
    for (const t of [tx, y0, y1]) t.dispose();
  });
});
