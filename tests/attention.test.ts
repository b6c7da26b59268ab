// Fused attention forward + flash-style backward: CPU reference vs finite differences, GPU vs CPU over T, Dh,
// H, B, padding masks (partly and fully masked rows), causal, Tq != Tk, custom scale; determinism.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { attention, attentionBackward, type AttentionOptions } from '../src/kernels/attention.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { attentionBackwardRef, attentionRef, dot, numericGrad, type AttnRefOptions } from './ref/transformer-backward.js';

const rt = useRuntime();

/** Padding mask [B, Tk]: batch 0 attends everywhere, 1 has its tail and one middle key padded, 2 is fully padded. */
function makeMask(B: number, Tk: number): Float32Array {
  const m = new Float32Array(B * Tk).fill(1);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < Tk; j++) {
      if (b % 3 === 1 && (j >= Math.ceil((2 * Tk) / 3) || j === Math.floor(Tk / 3))) m[b * Tk + j] = 0;
      if (b % 3 === 2) m[b * Tk + j] = 0;
    }
  }
  // With a single batch, still pad something (when there is more than one key).
  if (B === 1 && Tk > 1) m[Tk - 1] = 0;
  return m;
}

interface Case {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  mask: boolean;
  causal: boolean;
  scale?: number;
}

function describeCase(c: Case): string {
  return `B=${c.B} H=${c.H} Tq=${c.Tq} Tk=${c.Tk} Dh=${c.Dh}${c.mask ? ' mask' : ''}${c.causal ? ' causal' : ''}${c.scale !== undefined ? ` scale=${c.scale}` : ''}`;
}

async function check(c: Case, seed: number): Promise<void> {
  const { B, H, Tq, Tk, Dh } = c;
  const q = randArray(B * H * Tq * Dh, seed, -2, 2);
  const k = randArray(B * H * Tk * Dh, seed + 1, -2, 2);
  const v = randArray(B * H * Tk * Dh, seed + 2);
  const dOut = randArray(B * H * Tq * Dh, seed + 3);
  const mask = c.mask ? makeMask(B, Tk) : null;
  const o: AttnRefOptions = { B, H, Tq, Tk, Dh, mask, causal: c.causal, scale: c.scale };
  const r = rt();
  const tq = Tensor.from(r, q, [B, H, Tq, Dh]);
  const tk = Tensor.from(r, k, [B, H, Tk, Dh]);
  const tv = Tensor.from(r, v, [B, H, Tk, Dh]);
  const tdo = Tensor.from(r, dOut, [B, H, Tq, Dh]);
  const tm = mask ? Tensor.from(r, mask, [B, Tk]) : null;
  const opts: AttentionOptions = { mask: tm, causal: c.causal, scale: c.scale };
  const fwd = attention(tq, tk, tv, opts);
  const g = attentionBackward(tdo, tq, tk, tv, fwd.out, fwd.lse, opts);
  const what = describeCase(c);
  expect(fwd.out.shape).toEqual([B, H, Tq, Dh]);
  expect(fwd.lse.shape).toEqual([B, H, Tq]);
  const ref = attentionRef(q, k, v, o);
  expectClose(await fwd.out.read(), ref.out, { atol: 2e-5, rtol: 1e-4 }, `${what} out`);
  expectClose(await fwd.lse.read(), ref.lse, { atol: 2e-5, rtol: 1e-5 }, `${what} lse`);
  const gr = attentionBackwardRef(dOut, q, k, v, o);
  expectClose(await g.dq.read(), gr.dq, { atol: 5e-5, rtol: 1e-3 }, `${what} dq`);
  expectClose(await g.dk.read(), gr.dk, { atol: 5e-5, rtol: 1e-3 }, `${what} dk`);
  expectClose(await g.dv.read(), gr.dv, { atol: 5e-5, rtol: 1e-3 }, `${what} dv`);
  for (const t of [tq, tk, tv, tdo, tm, fwd.out, fwd.lse, g.dq, g.dk, g.dv]) t?.dispose();
}

describe('attention CPU reference vs central differences', () => {
  for (const [mask, causal] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`dq, dk, dv${mask ? ', padding mask (one batch fully padded)' : ''}${causal ? ', causal' : ''}`, () => {
      const [B, H, Tq, Tk, Dh] = [3, 2, 3, 4, 3];
      const o: AttnRefOptions = { B, H, Tq, Tk, Dh, mask: mask ? makeMask(B, Tk) : null, causal, scale: 0.7 };
      const q = Float64Array.from(randArray(B * H * Tq * Dh, 1, -2, 2));
      const k = Float64Array.from(randArray(B * H * Tk * Dh, 2, -2, 2));
      const v = Float64Array.from(randArray(B * H * Tk * Dh, 3));
      const dOut = Float64Array.from(randArray(B * H * Tq * Dh, 4));
      const g = attentionBackwardRef(dOut, q, k, v, o);
      const all = (n: number) => [...Array(n).keys()];
      const tol = { atol: 1e-9, rtol: 1e-6 };
      expectClose(g.dq, numericGrad((x) => dot(dOut, attentionRef(x, k, v, o).out), q, all(q.length)), tol, 'dq');
      expectClose(g.dk, numericGrad((x) => dot(dOut, attentionRef(q, x, v, o).out), k, all(k.length)), tol, 'dk');
      expectClose(g.dv, numericGrad((x) => dot(dOut, attentionRef(q, k, x, o).out), v, all(v.length)), tol, 'dv');
    });
  }
});

describe('attention on the GPU', () => {
  it('T 1, 3, 17, 33, 128 with Dh 8, 16, 64, H 1-4, B 1-3, no mask', async () => {
    const cases: Case[] = [
      { B: 1, H: 1, Tq: 1, Tk: 1, Dh: 8, mask: false, causal: false },
      { B: 2, H: 3, Tq: 3, Tk: 3, Dh: 16, mask: false, causal: false },
      { B: 3, H: 2, Tq: 17, Tk: 17, Dh: 64, mask: false, causal: false },
      { B: 1, H: 4, Tq: 33, Tk: 33, Dh: 8, mask: false, causal: false },
      { B: 2, H: 2, Tq: 128, Tk: 128, Dh: 64, mask: false, causal: false },
    ];
    for (const [n, c] of cases.entries()) await check(c, 100 + 10 * n);
  });

  it('padding masks: partly masked rows and a fully masked batch', async () => {
    const cases: Case[] = [
      { B: 3, H: 2, Tq: 3, Tk: 3, Dh: 8, mask: true, causal: false },
      { B: 3, H: 1, Tq: 17, Tk: 17, Dh: 16, mask: true, causal: false },
      { B: 2, H: 4, Tq: 33, Tk: 33, Dh: 64, mask: true, causal: false },
      { B: 3, H: 2, Tq: 128, Tk: 128, Dh: 64, mask: true, causal: false },
      { B: 1, H: 3, Tq: 17, Tk: 17, Dh: 16, mask: true, causal: false },
    ];
    for (const [n, c] of cases.entries()) await check(c, 200 + 10 * n);
  });

  it('causal, with and without padding (causal + padded prefix gives fully masked rows)', async () => {
    const cases: Case[] = [
      { B: 1, H: 1, Tq: 1, Tk: 1, Dh: 16, mask: false, causal: true },
      { B: 2, H: 2, Tq: 17, Tk: 17, Dh: 8, mask: false, causal: true },
      { B: 3, H: 2, Tq: 33, Tk: 33, Dh: 64, mask: true, causal: true },
      { B: 1, H: 4, Tq: 128, Tk: 128, Dh: 16, mask: false, causal: true },
    ];
    for (const [n, c] of cases.entries()) await check(c, 300 + 10 * n);
  });

  it('Tq != Tk (cross attention), custom scale, head dims that are not multiples of 4', async () => {
    const cases: Case[] = [
      { B: 2, H: 2, Tq: 3, Tk: 17, Dh: 16, mask: true, causal: false },
      { B: 3, H: 1, Tq: 33, Tk: 5, Dh: 8, mask: true, causal: false, scale: 0.3 },
      { B: 2, H: 3, Tq: 17, Tk: 33, Dh: 64, mask: false, causal: true },
      { B: 1, H: 2, Tq: 33, Tk: 17, Dh: 8, mask: false, causal: true },
      { B: 2, H: 2, Tq: 17, Tk: 17, Dh: 6, mask: true, causal: false },
      { B: 1, H: 1, Tq: 3, Tk: 3, Dh: 1, mask: false, causal: true, scale: 2 },
      { B: 1, H: 2, Tq: 17, Tk: 9, Dh: 128, mask: false, causal: false },
      { B: 1, H: 1, Tq: 5, Tk: 7, Dh: 126, mask: true, causal: true },
    ];
    for (const [n, c] of cases.entries()) await check(c, 400 + 10 * n);
  });

  it('fully masked rows output 0 with lse -inf and get zero gradients', async () => {
    const [B, H, T, Dh] = [3, 2, 17, 16];
    const r = rt();
    const tq = Tensor.from(r, randArray(B * H * T * Dh, 1), [B, H, T, Dh]);
    const tk = Tensor.from(r, randArray(B * H * T * Dh, 2), [B, H, T, Dh]);
    const tv = Tensor.from(r, randArray(B * H * T * Dh, 3), [B, H, T, Dh]);
    const tdo = Tensor.from(r, randArray(B * H * T * Dh, 4), [B, H, T, Dh]);
    const tm = Tensor.from(r, makeMask(B, T), [B, T]); // batch 2 is fully padded
    const fwd = attention(tq, tk, tv, { mask: tm });
    const g = attentionBackward(tdo, tq, tk, tv, fwd.out, fwd.lse, { mask: tm });
    const per = H * T * Dh;
    const out = await fwd.out.read();
    const lse = await fwd.lse.read();
    expect(out.slice(2 * per).every((x) => x === 0)).toBe(true);
    expect(lse.slice(2 * H * T).every((x) => x === -Infinity)).toBe(true);
    expect(lse.slice(0, 2 * H * T).every(Number.isFinite)).toBe(true);
    for (const t of [g.dq, g.dk, g.dv]) expect((await t.read()).slice(2 * per).every((x) => x === 0)).toBe(true);
    // Padded keys of batch 1 get no dk / dv.
    const dk = await g.dk.read();
    const j = T - 1;
    for (let h = 0; h < H; h++) for (let d = 0; d < Dh; d++) expect(dk[((1 * H + h) * T + j) * Dh + d]).toBe(0);
    for (const t of [tq, tk, tv, tdo, tm, fwd.out, fwd.lse, g.dq, g.dk, g.dv]) t.dispose();
  });

  it('backward is bit-identical across runs', async () => {
    const [B, H, T, Dh] = [2, 2, 33, 16];
    const r = rt();
    const tq = Tensor.from(r, randArray(B * H * T * Dh, 5), [B, H, T, Dh]);
    const tk = Tensor.from(r, randArray(B * H * T * Dh, 6), [B, H, T, Dh]);
    const tv = Tensor.from(r, randArray(B * H * T * Dh, 7), [B, H, T, Dh]);
    const tdo = Tensor.from(r, randArray(B * H * T * Dh, 8), [B, H, T, Dh]);
    const fwd = attention(tq, tk, tv, { causal: true });
    const bits = async () => {
      const g = attentionBackward(tdo, tq, tk, tv, fwd.out, fwd.lse, { causal: true });
      const res = [];
      for (const t of [g.dq, g.dk, g.dv]) res.push(Array.from(new Uint32Array((await t.read()).buffer)));
      for (const t of [g.dq, g.dk, g.dv]) t.dispose();
      return res;
    };
    expect(await bits()).toEqual(await bits());
    for (const t of [tq, tk, tv, tdo, fwd.out, fwd.lse]) t.dispose();
  });

  it('rejects bad shapes', () => {
    const r = rt();
    const q = Tensor.from(r, randArray(2 * 3 * 4, 1), [1, 2, 3, 4]);
    const k5 = Tensor.from(r, randArray(2 * 5 * 4, 1), [1, 2, 5, 4]);
    const kBadD = Tensor.from(r, randArray(2 * 3 * 8, 1), [1, 2, 3, 8]);
    const m = Tensor.from(r, [1, 1, 1], [1, 3]);
    const big = Tensor.from(r, new Float32Array(129), [1, 1, 1, 129]);
    expect(() => attention(q, kBadD, kBadD)).toThrow(ShapeError);
    expect(() => attention(q, k5, k5, { mask: m })).toThrow(/mask/);
    expect(() => attention(q.reshape([2, 3, 4]), q, q)).toThrow(/\[B, H, T, Dh\]/);
    expect(() => attention(big, big, big)).toThrow(/head dim/);
    const f = attention(q, k5, k5);
    expect(() => attentionBackward(q, q, k5, k5, f.out, k5, {})).toThrow(/lse/);
    for (const t of [q, k5, kBadD, m, big, f.out, f.lse]) t.dispose();
  });
});
