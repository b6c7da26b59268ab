// CPU references (plain loops) for transpose, slice and concat on row-major data.

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

function unravel(e: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length).fill(0);
  for (let i = shape.length - 1; i >= 0; i--) {
    c[i] = e % shape[i]!;
    e = Math.floor(e / shape[i]!);
  }
  return c;
}

/** out[c] = x[c permuted back]: out.shape[i] = shape[perm[i]]. */
export function transposeRef(x: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): { data: Float64Array; shape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  const xs = strides(shape);
  const data = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const c = unravel(e, outShape);
    let src = 0;
    for (let i = 0; i < perm.length; i++) src += c[i]! * xs[perm[i]!]!;
    data[e] = x[src]!;
  }
  return { data, shape: outShape };
}

/** The box starts..ends (non-negative, in range) of x. */
export function sliceRef(x: ArrayLike<number>, shape: readonly number[], starts: readonly number[], ends: readonly number[]): Float64Array {
  const box = starts.map((s, i) => ends[i]! - s);
  const n = box.reduce((a, d) => a * d, 1);
  const xs = strides(shape);
  const data = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    const c = unravel(e, box);
    let src = 0;
    for (let i = 0; i < box.length; i++) src += (c[i]! + starts[i]!) * xs[i]!;
    data[e] = x[src]!;
  }
  return data;
}

/** Inputs joined along `axis` (non-negative). */
export function concatRef(xs: { data: ArrayLike<number>; shape: readonly number[] }[], axis: number): { data: Float64Array; shape: number[] } {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((s, t) => s + t.shape[axis]!, 0);
  const n = shape.reduce((a, d) => a * d, 1);
  const data = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    const c = unravel(e, shape);
    let k = 0;
    let pos = c[axis]!;
    while (pos >= xs[k]!.shape[axis]!) pos -= xs[k++]!.shape[axis]!;
    const t = xs[k]!;
    const ts = strides(t.shape);
    let src = 0;
    for (let i = 0; i < shape.length; i++) src += (i === axis ? pos : c[i]!) * ts[i]!;
    data[e] = t.data[src]!;
  }
  return { data, shape };
}
