// CPU reference for conv2d forward: plain loops, float64 accumulation. x [N,C,H,W], w [K,C/g,R,S] -> [N,K,P,Q].
export type RefPair = number | [number, number];

export interface RefConvOptions {
  stride?: RefPair;
  padding?: RefPair;
  dilation?: RefPair;
  groups?: number;
  bias?: ArrayLike<number>; // [K]
  activation?: 'none' | 'relu';
  residual?: ArrayLike<number>; // [N, K, P, Q]
}

const two = (v: RefPair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

/** Returns the output and its shape [N, K, P, Q]. */
export function conv2dRef(
  x: ArrayLike<number>,
  xShape: readonly number[],
  w: ArrayLike<number>,
  wShape: readonly number[],
  o: RefConvOptions = {},
): { out: Float64Array; shape: [number, number, number, number] } {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [K, Cg, R, S] = wShape as [number, number, number, number];
  const G = o.groups ?? 1;
  const Kg = K / G;
  const [sh, sw] = two(o.stride, 1);
  const [ph, pw] = two(o.padding, 0);
  const [dh, dw] = two(o.dilation, 1);
  const P = Math.floor((H + 2 * ph - dh * (R - 1) - 1) / sh) + 1;
  const Q = Math.floor((W + 2 * pw - dw * (S - 1) - 1) / sw) + 1;
  const out = new Float64Array(N * K * P * Q);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = Math.floor(k / Kg);
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          let acc = 0;
          for (let c = 0; c < Cg; c++) {
            const ci = g * Cg + c;
            for (let r = 0; r < R; r++) {
              const h = p * sh - ph + r * dh;
              if (h < 0 || h >= H) continue;
              for (let s = 0; s < S; s++) {
                const ww = q * sw - pw + s * dw;
                if (ww < 0 || ww >= W) continue;
                acc += x[((n * C + ci) * H + h) * W + ww]! * w[((k * Cg + c) * R + r) * S + s]!;
              }
            }
          }
          if (o.bias) acc += o.bias[k]!;
          if (o.activation === 'relu') acc = Math.max(acc, 0);
          const i = ((n * K + k) * P + p) * Q + q;
          if (o.residual) acc += o.residual[i]!;
          out[i] = acc;
        }
      }
    }
  }
  return { out, shape: [N, K, P, Q] };
}
