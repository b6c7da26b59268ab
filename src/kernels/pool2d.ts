// 2-D max / average pooling and global average pooling on NCHW (shaders/pool2d.wgsl, global_avg_pool.wgsl).
import poolSrc from '../../shaders/pool2d.wgsl';
import gapSrc from '../../shaders/global_avg_pool.wgsl';
import { f32 } from '../runtime/params.js';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';
import { planRows } from './rowplan.js';

const K_POOL = { name: 'pool2d', code: poolSrc };
const K_GAP = { name: 'global_avg_pool', code: gapSrc };

export interface Pool2dOptions {
  kernel: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;
const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** PyTorch's pooled length along one axis: floor/ceil((len + 2p - d(k-1) - 1) / s) + 1, last window starting in bounds. */
export function poolOutSize(len: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = len + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= len + p) out--;
  return out;
}

function pool(op: 'maxPool2d' | 'avgPool2d', x: Tensor, o: Pool2dOptions): Tensor {
  if (x.rank !== 3 && x.rank !== 4) throw new ShapeError(`${op}: x must be [N, C, H, W] or [C, H, W], got shape ${fmt(x.shape)}`);
  if (x.dtype !== 'f32') throw new ShapeError(`${op}: x must be f32, got ${x.dtype} ${fmt(x.shape)}`);
  const k = pair(o.kernel);
  const s = pair(o.stride ?? o.kernel);
  const p = pair(o.padding ?? 0);
  const d = pair(o.dilation ?? 1);
  const ok = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (![...k, ...s, ...d].every((v) => ok(v, 1)) || !p.every((v) => ok(v, 0))) {
    throw new ShapeError(`${op}: kernel ${fmt(k)}, stride ${fmt(s)}, dilation ${fmt(d)} must be integers >= 1 and padding ${fmt(p)} >= 0`);
  }
  if (p[0] > Math.floor(k[0] / 2) || p[1] > Math.floor(k[1] / 2)) {
    throw new ShapeError(`${op}: padding ${fmt(p)} must be at most half the kernel ${fmt(k)} (as in PyTorch)`);
  }
  if (op === 'avgPool2d' && (d[0] !== 1 || d[1] !== 1)) {
    throw new ShapeError(`${op}: dilation ${fmt(d)} is not supported (PyTorch's AvgPool2d has none)`);
  }
  const [h, w] = x.shape.slice(-2) as [number, number];
  const ceil = !!o.ceilMode;
  const oh = poolOutSize(h, k[0], s[0], p[0], d[0], ceil);
  const ow = poolOutSize(w, k[1], s[1], p[1], d[1], ceil);
  if (oh < 1 || ow < 1) {
    throw new ShapeError(`${op}: input shape ${fmt(x.shape)} is too small for kernel ${fmt(k)} dilation ${fmt(d)} padding ${fmt(p)} (output ${oh}×${ow})`);
  }
  const outShape = [...x.shape.slice(0, -2), oh, ow];
  const out = Tensor.empty(x.rt, outShape, 'f32');
  if (out.size === 0) return out;
  const rt = x.rt;
  rt.dispatch(K_POOL, {
    buffers: [x, out],
    params: [out.size, h, w, oh, ow, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], f32(-Infinity)],
    constants: { WG: 256, MAX: op === 'maxPool2d', INCLUDE_PAD: o.countIncludePad ?? true },
    workgroups: grid1d(out.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/** Max pooling on x [N, C, H, W] (or [C, H, W]); padding counts as -inf, stride defaults to kernel. */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return pool('maxPool2d', x, opts);
}

/** Average pooling on x [N, C, H, W] (or [C, H, W]); countIncludePad defaults to true (PyTorch). */
export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return pool('avgPool2d', x, opts);
}

/** Mean over H and W: x [N, C, H, W] -> [N, C]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  if (x.rank !== 4) throw new ShapeError(`globalAvgPool2d: x must be [N, C, H, W], got shape ${fmt(x.shape)}`);
  if (x.dtype !== 'f32') throw new ShapeError(`globalAvgPool2d: x must be f32, got ${x.dtype} ${fmt(x.shape)}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const out = Tensor.empty(x.rt, [n, c], 'f32');
  const planes = n * c;
  const hw = h * w;
  if (planes === 0) return out;
  if (hw === 0) throw new ShapeError(`globalAvgPool2d: empty spatial dims in shape ${fmt(x.shape)}`);
  const plan = planRows(x.rt, planes, hw);
  x.rt.dispatch(K_GAP, {
    buffers: [x, out],
    params: [planes, hw],
    constants: { WG: plan.wg, T: plan.t },
    workgroups: plan.workgroups,
  });
  return out;
}
