// CPU references (float64 accumulation, plain loops) for reduce, argmax and sumTo.
import type { ReduceOp } from '../../src/kernels/reduce.js';

/** Reduce `data` of `shape` over `axes` (non-negative). Output in row-major order of the kept dims. */
export function reduceRef(
  op: ReduceOp,
  data: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
  keepDims = false,
): { data: Float64Array; shape: number[] } {
  const red = shape.map((_, i) => axes.includes(i));
  const outShape = keepDims ? shape.map((d, i) => (red[i] ? 1 : d)) : shape.filter((_, i) => !red[i]);
  let nout = 1;
  for (let i = 0; i < shape.length; i++) if (!red[i]) nout *= shape[i]!;
  let R = 1;
  for (let i = 0; i < shape.length; i++) if (red[i]) R *= shape[i]!;
  const acc = new Float64Array(nout).fill(op === 'max' ? -Infinity : op === 'min' ? Infinity : 0);
  // Output stride of each input dim (0 for reduced dims); walk x in order with an odometer.
  const ostride = new Array<number>(shape.length).fill(0);
  for (let i = shape.length - 1, s = 1; i >= 0; i--) {
    if (!red[i]) {
      ostride[i] = s;
      s *= shape[i]!;
    }
  }
  const coord = new Array<number>(shape.length).fill(0);
  let o = 0;
  for (let e = 0; e < data.length; e++) {
    const v = data[e]!;
    if (op === 'max') acc[o] = Math.max(acc[o]!, v);
    else if (op === 'min') acc[o] = Math.min(acc[o]!, v);
    else acc[o] = acc[o]! + v;
    for (let i = shape.length - 1; i >= 0; i--) {
      coord[i] = coord[i]! + 1;
      o += ostride[i]!;
      if (coord[i]! < shape[i]!) break;
      o -= ostride[i]! * shape[i]!;
      coord[i] = 0;
    }
  }
  if (op === 'mean') for (let k = 0; k < nout; k++) acc[k] = acc[k]! / R;
  return { data: acc, shape: outShape };
}

/** Per output, Σ|x| over its reduced elements (scales the rounding-error bound of a sum). */
export function absSumRef(data: ArrayLike<number>, shape: readonly number[], axes: readonly number[]): Float64Array {
  return reduceRef('sum', Float64Array.from(data, Math.abs), shape, axes).data;
}

/** First index of the maximum along `axis`. */
export function argmaxRef(data: ArrayLike<number>, shape: readonly number[], axis: number): Int32Array {
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  const R = shape[axis]!;
  const out = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = -Infinity;
      let idx = 0;
      for (let r = 0; r < R; r++) {
        const v = data[(o * R + r) * inner + j]!;
        if (v > best) {
          best = v;
          idx = r;
        }
      }
      out[o * inner + j] = idx;
    }
  }
  return out;
}
