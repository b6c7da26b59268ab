// CPU references (float64, plain loops) for unary ops, broadcasting binary ops, scale and fill.
import type { BinaryOp, UnaryOp } from '../../src/kernels/elementwise.js';

/** erfc(z) for z ≥ 3 by its continued fraction (exp(-z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))). */
function erfcLarge(z: number): number {
  let f = z;
  for (let k = 60; k >= 1; k--) f = z + k / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** erf(x) to ~1e-15: Taylor series for |x| < 3, the continued fraction for erfc beyond. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 3) return Math.sign(x) * (1 - erfcLarge(ax));
  // erf(x) = 2/√π Σ (-1)^k x^(2k+1) / (k! (2k+1))
  let term = ax;
  let sum = ax;
  for (let k = 1; k < 200; k++) {
    term *= (-ax * ax) / k;
    const add = term / (2 * k + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
}

/** erfc(x) = 1 - erf(x) without cancellation in the right tail (relative accuracy ~1e-11 or better). */
export function erfc(x: number): number {
  if (x >= 3) return erfcLarge(x);
  if (x <= -3) return 2 - erfcLarge(-x);
  return 1 - erf(x);
}

export function unaryRef(op: UnaryOp, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = unaryOne(op, x[i]!);
  return out;
}

function unaryOne(op: UnaryOp, v: number): number {
  switch (op) {
    case 'neg': return -v;
    case 'abs': return Math.abs(v);
    case 'exp': return Math.exp(v);
    case 'log': return Math.log(v);
    case 'sqrt': return Math.sqrt(v);
    case 'rsqrt': return 1 / Math.sqrt(v);
    case 'square': return v * v;
    case 'reciprocal': return 1 / v;
    case 'relu': return v > 0 ? v : 0;
    case 'gelu': return 0.5 * v * erfc(-v / Math.SQRT2);
    case 'gelu_tanh': return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    case 'tanh': return Math.tanh(v);
    case 'sigmoid': return 1 / (1 + Math.exp(-v));
    case 'sin': return Math.sin(v);
    case 'cos': return Math.cos(v);
    case 'sign': return v > 0 ? 1 : v < 0 ? -1 : 0;
    case 'step': return v > 0 ? 1 : 0;
  }
}

export function binaryOne(op: BinaryOp, u: number, v: number): number {
  switch (op) {
    case 'add': return u + v;
    case 'sub': return u - v;
    case 'mul': return u * v;
    case 'div': return u / v;
    case 'max': return Math.max(u, v);
    case 'min': return Math.min(u, v);
    case 'pow': return Math.pow(u, v);
    case 'eq': return u === v ? 1 : 0;
    case 'gt': return u > v ? 1 : 0;
    case 'lt': return u < v ? 1 : 0;
  }
}

/** numpy-broadcast a ∘ b by walking every output coordinate. */
export function binaryRef(
  op: BinaryOp,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): { data: Float64Array; shape: number[] } {
  const r = Math.max(aShape.length, bShape.length);
  const pa = [...new Array<number>(r - aShape.length).fill(1), ...aShape];
  const pb = [...new Array<number>(r - bShape.length).fill(1), ...bShape];
  const shape = pa.map((d, i) => (d === 1 ? pb[i]! : d));
  let n = 1;
  for (const d of shape) n *= d;
  const data = new Float64Array(n);
  const coord = new Array<number>(r).fill(0);
  for (let e = 0; e < n; e++) {
    let rem = e;
    for (let i = r - 1; i >= 0; i--) {
      coord[i] = rem % shape[i]!;
      rem = Math.floor(rem / shape[i]!);
    }
    let ia = 0;
    let ib = 0;
    for (let i = 0; i < r; i++) {
      ia = ia * pa[i]! + (pa[i] === 1 ? 0 : coord[i]!);
      ib = ib * pb[i]! + (pb[i] === 1 ? 0 : coord[i]!);
    }
    data[e] = binaryOne(op, a[ia]!, b[ib]!);
  }
  return { data, shape };
}
