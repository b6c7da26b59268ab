// Shape primitives: reshape (a view), permute, slice, concat, split, and sum/mean reductions.
import { concat, slice, transpose } from '../../kernels/transpose.js';
import { reduce } from '../../kernels/reduce.js';
import { binary, fill } from '../../kernels/elementwise.js';
import type { Shape, Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';
import { consume } from './util.js';

export type ShapePrims = {
  /** Same data, new shape (no copy). */
  reshape: { params: { shape: Shape }; saved: { xShape: Shape } };
  /** y.shape[i] = x.shape[perm[i]]. */
  permute: { params: { perm: readonly number[] }; saved: null };
  /** x[starts[d] : ends[d]] along every dim (full-length, non-negative). */
  slice: { params: { starts: readonly number[]; ends: readonly number[] }; saved: { xShape: Shape } };
  /** Join inputs along `axis` (non-negative). */
  concat: { params: { axis: number }; saved: { sizes: number[] } };
  /** Split x along `axis` into pieces of `sizes` (several outputs). */
  split: { params: { axis: number; sizes: readonly number[] }; saved: null };
  /** Sum over `axes` (non-negative, sorted). */
  sum: { params: { axes: readonly number[]; keepDims: boolean }; saved: { xShape: Shape } };
  /** Mean over `axes` (non-negative, sorted). */
  mean: { params: { axes: readonly number[]; keepDims: boolean }; saved: { xShape: Shape } };
};

/** g (the reduced gradient) times `factor`, broadcast back over the reduced axes to xShape. */
function expandReduced(g: Tensor, xShape: Shape, axes: readonly number[], factor: number): Tensor {
  const keep = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  const filler = fill(g.rt, xShape, factor);
  return consume(filler, (f) => consume(g.reshape(keep), (gk) => binary(f, gk, 'mul')));
}

/** Zero-pad g along `axis` with `before` and `after` slots (g is consumed). */
function padAxis(g: Tensor, axis: number, before: number, after: number): Tensor {
  if (!before && !after) return g;
  const parts: Tensor[] = [];
  const zeros = (n: number) => fill(g.rt, g.shape.map((d, i) => (i === axis ? n : d)), 0);
  if (before) parts.push(zeros(before));
  parts.push(g);
  if (after) parts.push(zeros(after));
  const out = concat(parts, axis);
  for (const t of parts) t.dispose();
  return out;
}

export const shapeRules: Rules<ShapePrims> = {
  reshape: {
    forward: (_ctx, [x], p) => ({ out: [x!.reshape(p.shape)], saved: { xShape: x!.shape } }),
    backward: (_ctx, [gy], s) => [gy!.reshape(s.xShape)],
  },
  permute: {
    forward: (_ctx, [x], p) => ({ out: [transpose(x!, [...p.perm])], saved: null }),
    backward: (_ctx, [gy], _s, p) => {
      const inv = new Array<number>(p.perm.length);
      p.perm.forEach((d, i) => (inv[d] = i));
      return [transpose(gy!, inv)];
    },
  },
  slice: {
    forward: (_ctx, [x], p) => ({ out: [slice(x!, [...p.starts], [...p.ends])], saved: { xShape: x!.shape } }),
    backward: (_ctx, [gy], s, p) => {
      let g = gy!.reshape(gy!.shape);
      s.xShape.forEach((d, axis) => {
        g = padAxis(g, axis, p.starts[axis]!, d - p.ends[axis]!);
      });
      return [g];
    },
  },
  concat: {
    forward: (_ctx, xs, p) => ({ out: [concat([...xs], p.axis)], saved: { sizes: xs.map((x) => x.shape[p.axis]!) } }),
    backward: (ctx, [gy], s, p) => {
      let at = 0;
      return s.sizes.map((n, i) => {
        const start = at;
        at += n;
        if (!ctx.needs[i]) return null;
        const starts = gy!.shape.map((_, d) => (d === p.axis ? start : 0));
        const ends = gy!.shape.map((len, d) => (d === p.axis ? start + n : len));
        return slice(gy!, starts, ends);
      });
    },
  },
  split: {
    forward: (_ctx, [x], p) => {
      let at = 0;
      const out = p.sizes.map((n) => {
        const starts = x!.shape.map((_, d) => (d === p.axis ? at : 0));
        const ends = x!.shape.map((len, d) => (d === p.axis ? at + n : len));
        at += n;
        return slice(x!, starts, ends);
      });
      return { out, saved: null };
    },
    backward: (_ctx, gys, _s, p) => [concat([...gys], p.axis)],
  },
  sum: {
    forward: (_ctx, [x], p) => ({ out: [reduce(x!, 'sum', [...p.axes], p.keepDims)], saved: { xShape: x!.shape } }),
    backward: (_ctx, [gy], s, p) => [expandReduced(gy!, s.xShape, p.axes, 1)],
  },
  mean: {
    forward: (_ctx, [x], p) => ({ out: [reduce(x!, 'mean', [...p.axes], p.keepDims)], saved: { xShape: x!.shape } }),
    backward: (_ctx, [gy], s, p) => {
      const n = p.axes.reduce((acc, a) => acc * s.xShape[a]!, 1);
      return [expandReduced(gy!, s.xShape, p.axes, n === 0 ? 0 : 1 / n)];
    },
  },
};
