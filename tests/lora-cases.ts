// Shared by the fused LoRA kernel tests: tolerance, the awkward shapes, and a runner against the float64 CPU reference.
import { Tensor } from '../src/tensor.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { loraLinearForward, type LoraFusedVariant } from '../src/kernels/lora.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { loraLinearRef } from './ref/lora.js';

/**
 * Tolerance. Inputs are uniform in [-1, 1): x·Wᵀ sums K products (f32 error ≲ 6e-8·K in the worst case,
 * ~1e-5·√K typical, as the matmul tests), and the adapter adds s·Σ_r u_r·B with |u| ≲ √K/2, i.e. R more
 * terms of size ≲ √K: atol = 1e-5·√K·(1 + s·√R). Any indexing bug moves results by ≥ 1e-2.
 */
export const tol = (K: number, R: number, s: number) => ({ atol: 1e-5 * Math.sqrt(Math.max(K, 1)) * (1 + s * Math.sqrt(R)) + 1e-6, rtol: 1e-4 });

export interface Case {
  M: number;
  K: number;
  N: number;
  R: number;
  bias?: boolean;
  s?: number;
  /** also run the separate-matmul path (a few cases: each new shape class compiles matmul pipelines) */
  matmul?: boolean;
}

// rows 1, 7, 128 (and tile-row edges); in / out 1, 3, 17, 33, 255, 768; r 1, 4, 8, 16 (and past a tile's ranks)
export const CASES: Case[] = [
  { M: 1, K: 1, N: 1, R: 1 },
  { M: 7, K: 3, N: 17, R: 4, matmul: true },
  { M: 7, K: 17, N: 3, R: 1, bias: false },
  { M: 128, K: 33, N: 255, R: 8 },
  { M: 1, K: 768, N: 33, R: 16 },
  { M: 128, K: 768, N: 768, R: 8, s: 2, matmul: true },
  { M: 7, K: 255, N: 1, R: 16, s: 0.25 },
  { M: 33, K: 16, N: 260, R: 4 },
  { M: 65, K: 20, N: 36, R: 100 },
  { M: 9, K: 12, N: 5, R: 300, bias: false, matmul: true },
];

export function run(rt: () => Runtime, c: Case, variant: LoraFusedVariant | 'matmul') {
  const { M, K, N, R } = c;
  const s = c.s ?? 0.5;
  const seed = M * 1000003 + K * 1009 + N * 31 + R;
  const x = randArray(M * K, seed);
  const w = randArray(N * K, seed + 1);
  const a = randArray(R * K, seed + 2);
  const b = randArray(N * R, seed + 3);
  const bias = c.bias === false ? null : randArray(N, seed + 4);
  const X = Tensor.from(rt(), x, [M, K]);
  const W = Tensor.from(rt(), w, [N, K]);
  const A = Tensor.from(rt(), a, [R, K]);
  const B = Tensor.from(rt(), b, [N, R]);
  const BI = bias ? Tensor.from(rt(), bias, [N]) : null;
  const opts = variant === 'matmul' ? { path: 'matmul' as const } : { variant };
  const r = loraLinearForward(X, W, A, B, { bias: BI, scaling: s, wantU: true, ...opts });
  const ref = loraLinearRef({ M, K, N, R }, x, w, a, b, bias, s);
  return { r, ref, s, inputs: [X, W, A, B, BI] };
}

/** Run `c` on each of `variants` and compare y and u with the reference. */
export async function checkCase(rt: () => Runtime, c: Case, variants: readonly (LoraFusedVariant | 'matmul')[]): Promise<void> {
  for (const v of variants) {
    const { r, ref, s, inputs } = run(rt, c, v);
    expectClose(await r.y.read(), ref.y, tol(c.K, c.R, s), `${v} y`);
    expectClose(await r.u!.read(), ref.u, tol(c.K, 1, 0), `${v} u`);
    for (const t of [r.y, r.u, ...inputs]) t?.dispose();
  }
}
