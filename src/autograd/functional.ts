// The differentiable functional API (PyTorch's torch.* / torch.nn.functional names, camelCase).
import { GraftError, ShapeError } from '../runtime/errors.js';
import type { Shape, Tensor } from '../tensor.js';
import type { Pool2dOptions } from '../kernels/pool2d.js';
import type { Pair } from '../kernels/conv2d-backward.js';
import { apply, apply1 } from './engine.js';
import { defaultRng } from './random.js';
import type { DiffUnary } from './ops/elementwise.js';
import { fusionEnabled, fusionExplicit } from '../runtime/fusion.js';
import { attentionUnfused, crossEntropyUnfused } from './ops/unfused.js';

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Resolve a possibly negative dim against `rank`. */
function dim(op: string, shape: Shape, d: number, rankPlus = 0): number {
  const r = shape.length + rankPlus;
  const a = d < 0 ? d + r : d;
  if (!Number.isInteger(d) || a < 0 || a >= r) throw new ShapeError(`${op}: dim ${d} is out of range for shape ${fmt(shape)}`);
  return a;
}

// ---- arithmetic (numpy broadcasting; a number operand becomes an affine map) ----

export function add(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number') return typeof b === 'number' ? noTensor('add') : affine(b, 1, a);
  if (typeof b === 'number') return affine(a, 1, b);
  return apply1('add', [a, b], null);
}

export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number') return typeof b === 'number' ? noTensor('sub') : affine(b, -1, a);
  if (typeof b === 'number') return affine(a, 1, -b);
  return apply1('sub', [a, b], null);
}

export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number') return typeof b === 'number' ? noTensor('mul') : affine(b, a, 0);
  if (typeof b === 'number') return affine(a, b, 0);
  return apply1('mul', [a, b], null);
}

export function div(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === 'number') return typeof b === 'number' ? noTensor('div') : mul(a, reciprocal(b));
  if (typeof b === 'number') return affine(a, 1 / b, 0);
  return apply1('div', [a, b], null);
}

function noTensor(op: string): never {
  throw new GraftError(`${op}: at least one operand must be a tensor`);
}

/** alpha·x + beta. */
export function affine(x: Tensor, alpha: number, beta = 0): Tensor {
  return apply1('affine', [x], { alpha, beta });
}

export const neg = (x: Tensor): Tensor => affine(x, -1, 0);
/** x ** p for a constant exponent. */
export const pow = (x: Tensor, p: number): Tensor => apply1('powScalar', [x], { p });

const un = (op: DiffUnary) => (x: Tensor): Tensor => apply1('unary', [x], { op });
export const exp = un('exp');
export const log = un('log');
export const sqrt = un('sqrt');
export const rsqrt = un('rsqrt');
export const abs = un('abs');
export const sin = un('sin');
export const cos = un('cos');
export const square = un('square');
export const reciprocal = un('reciprocal');
export const relu = un('relu');
export const tanh = un('tanh');
export const sigmoid = un('sigmoid');

/** GELU: exact (erf) by default, `approximate: 'tanh'` for the tanh form (torch's `approximate`). */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return apply1('unary', [x], { op: approximate === 'tanh' ? 'gelu_tanh' : 'gelu' });
}

// ---- linear algebra ----

/** a [..., M, K] @ b [..., K, N] (same batch) or b [K, N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return apply1('matmul', [a, b], null);
}

/** x [..., in] · weight [out, in]ᵀ + bias [out]; `activation: 'relu'` fuses a relu into the same kernel (bias and relu are separate kernels when fusion 'matmul-epilogue' is off). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, activation: 'none' | 'relu' = 'none'): Tensor {
  if ((!bias && activation === 'none') || fusionEnabled('matmul-epilogue')) return apply1('linear', bias ? [x, weight, bias] : [x, weight], { activation });
  // Fusion 'matmul-epilogue' off: the bias add and the relu run as their own element-wise kernels.
  let y = apply1('linear', [x, weight], { activation: 'none' });
  if (bias) {
    const b = add(y, bias);
    y.dispose();
    y = b;
  }
  if (activation === 'relu') {
    const r = relu(y);
    y.dispose();
    y = r;
  }
  return y;
}

// ---- convolution and pooling (NCHW) ----

export interface Conv2dOpts {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Fused epilogue after the bias. */
  activation?: 'none' | 'relu';
}

/** x [N, C, H, W] ⋆ weight [K, C/groups, R, S] + bias [K]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOpts = {}): Tensor {
  const p = { stride: opts.stride, padding: opts.padding, dilation: opts.dilation, groups: opts.groups, activation: opts.activation ?? 'none' };
  return apply1('conv2d', bias ? [x, weight, bias] : [x, weight], p);
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return apply1('maxPool2d', [x], opts);
}

export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return apply1('avgPool2d', [x], opts);
}

/** Mean over H, W: x [N, C, H, W] -> [N, C]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  return apply1('globalAvgPool2d', [x], null);
}

/** torch's adaptive_avg_pool2d for output size 1: x [N, C, H, W] -> [N, C, 1, 1]. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: 1 | [1, 1]): Tensor {
  const o = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  if (o[0] !== 1 || o[1] !== 1) throw new GraftError(`adaptiveAvgPool2d: only output size 1 is supported, got ${JSON.stringify(outputSize)}`);
  const g = globalAvgPool2d(x);
  const y = reshape(g, [...g.shape, 1, 1]);
  g.dispose();
  return y;
}

// ---- normalisation, softmax, losses ----

export function softmax(x: Tensor, axis = -1): Tensor {
  return apply1('softmax', [x], { axis: dim('softmax', x.shape, axis) });
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return apply1('logSoftmax', [x], { axis: dim('logSoftmax', x.shape, axis) });
}

/** Layer norm over the trailing `normalizedShape` dims of x (biased variance, as torch). */
export function layerNorm(x: Tensor, normalizedShape: number | Shape, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const tail = x.shape.slice(x.rank - ns.length);
  if (ns.length > x.rank || ns.some((d, i) => d !== tail[i])) {
    throw new ShapeError(`layerNorm: normalizedShape ${fmt(ns)} does not match the trailing dims of x ${fmt(x.shape)}`);
  }
  const d = ns.reduce((a, b) => a * b, 1);
  const flat = ns.length === 1;
  const x2 = flat ? x : reshape(x, [...x.shape.slice(0, x.rank - ns.length), d]);
  const w = weight && !flat ? reshape(weight, [d]) : weight;
  const b = bias && !flat ? reshape(bias, [d]) : bias;
  const inputs = [x2, ...(w ? [w] : []), ...(b ? [b] : [])];
  const y = apply1('layerNorm', inputs, { weight: !!w, bias: !!b, eps });
  if (flat) return y;
  for (const t of [x2, w, b]) t?.dispose();
  const out = reshape(y, x.shape);
  y.dispose();
  return out;
}

export interface BatchNormOpts {
  /** Use batch statistics and update the running ones (default false: use the running stats). */
  training?: boolean;
  momentum?: number;
  eps?: number;
  /** Fused relu after the affine map (eval mode only; in training apply relu() separately). */
  activation?: 'none' | 'relu';
}

/** Batch norm on x [N, C, H, W]; runningMean / runningVar [C] are updated in place when training. */
export function batchNorm2d(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  opts: BatchNormOpts = {},
): Tensor {
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const affine = { weight: !!weight, bias: !!bias };
  const eps = opts.eps ?? 1e-5;
  const act = opts.activation ?? 'none';
  if (opts.training || !runningMean || !runningVar) {
    const y = apply1('batchNorm2dTrain', inputs, { ...affine, runningMean: opts.training ? runningMean : null, runningVar: opts.training ? runningVar : null, momentum: opts.momentum ?? 0.1, eps });
    if (act === 'none') return y;
    const r = relu(y);
    y.dispose();
    return r;
  }
  return apply1('batchNorm2dEval', inputs, { ...affine, mean: runningMean, variance: runningVar, eps, activation: act });
}

export interface CrossEntropyOpts {
  labelSmoothing?: number;
  /** Targets equal to this are skipped (default -100, as torch). */
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
}

/** Cross-entropy of logits [B, C] against i32 class targets [B]. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOpts = {}): Tensor {
  const p = { labelSmoothing: opts.labelSmoothing ?? 0, ignoreIndex: opts.ignoreIndex ?? -100, reduction: opts.reduction ?? 'mean' } as const;
  if (fusionEnabled('cross-entropy')) return apply1('crossEntropy', [logits], { targets, ...p });
  // Fusion 'cross-entropy' off: log-softmax, weighted gather, mean as separate ops (same checks first).
  if (logits.dtype !== 'f32' || logits.rank !== 2) throw new ShapeError(`crossEntropy: logits must be f32 [B, C], got ${logits.dtype} ${fmt(logits.shape)}`);
  if (targets.dtype !== 'i32' || targets.rank !== 1 || targets.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`crossEntropy: targets must be i32 [${logits.shape[0]}] for logits ${fmt(logits.shape)}, got ${targets.dtype} ${fmt(targets.shape)}`);
  }
  if (!(p.labelSmoothing >= 0 && p.labelSmoothing <= 1)) throw new GraftError(`crossEntropy: labelSmoothing must be in [0, 1], got ${p.labelSmoothing}`);
  if (logits.shape[1] === 0) throw new ShapeError(`crossEntropy: logits ${fmt(logits.shape)} have no classes`);
  return crossEntropyUnfused(logits, targets, p);
}

/** Mean squared error (derived from sub, square, mean / sum). */
export function mseLoss(input: Tensor, target: Tensor, reduction: 'mean' | 'sum' = 'mean'): Tensor {
  const d = sub(input, target);
  const s = square(d);
  d.dispose();
  const out = reduction === 'mean' ? mean(s) : sum(s);
  s.dispose();
  return out;
}

export interface AttentionOpts {
  /** [B, Tk]: 1 keep, 0 padding. */
  mask?: Tensor | null;
  /** Mask out keys after the query position. */
  causal?: boolean;
  /** Default 1/sqrt(Dh). */
  scale?: number;
}

/** softmax(q kᵀ · scale + mask) v for q, k, v [B, H, T, Dh]. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOpts = {}): Tensor {
  const p = { mask: opts.mask ?? null, scale: opts.scale, causal: opts.causal ?? false };
  if (fusionEnabled('attention')) return apply1('attention', [q, k, v], p);
  // The unfused path materialises scores [B, H, Tq, Tk]: when they do not fit one storage binding, the
  // default (not a forced off) keeps the fused kernel, which never forms them.
  const scoreBytes = 4 * q.shape.slice(0, -1).reduce((a, b) => a * b, 1) * (k.shape[2] ?? 0);
  const limit = q.rt.limits.maxStorageBufferBindingSize;
  if (scoreBytes > limit) {
    if (fusionExplicit('attention') === undefined) return apply1('attention', [q, k, v], p);
    throw new GraftError(
      `attention: the unfused path needs scores of ${(scoreBytes / 2 ** 20).toFixed(0)} MiB for q ${fmt(q.shape)}, k ${fmt(k.shape)}, over this adapter's ${(limit / 2 ** 20).toFixed(0)} MiB binding limit; turn fusion 'attention' on (GRAFT_FUSE_ATTENTION=1)`,
    );
  }
  // Fusion 'attention' off: matmul, scale, mask add, softmax, matmul (shape checks as the fused kernel's).
  for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.dtype !== 'f32' || t.rank !== 4) throw new ShapeError(`attention: ${n} must be f32 [B, H, T, Dh], got ${t.dtype} ${fmt(t.shape)}`);
  }
  const [B, H, , Dh] = q.shape as [number, number, number, number];
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== Dh) throw new ShapeError(`attention: k ${fmt(k.shape)} does not fit q ${fmt(q.shape)}`);
  if (fmt(v.shape) !== fmt(k.shape)) throw new ShapeError(`attention: v ${fmt(v.shape)} must match k ${fmt(k.shape)}`);
  const m = p.mask;
  if (m && (m.dtype !== 'f32' || m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== k.shape[2])) {
    throw new ShapeError(`attention: mask must be f32 [${B}, ${k.shape[2]}] for q ${fmt(q.shape)} and k ${fmt(k.shape)}, got ${m.dtype} ${fmt(m.shape)}`);
  }
  return attentionUnfused(q, k, v, m, p.scale, p.causal);
}

// ---- lookup and dropout ----

/** Rows of table [V, D] for i32 ids (any shape) -> [...ids, D]; rows at paddingIdx get no gradient. */
export function embedding(ids: Tensor, table: Tensor, paddingIdx?: number): Tensor {
  return apply1('embedding', [table], { ids, paddingIdx });
}

/**
 * Inverted dropout; identity (x itself) when not training or p = 0. The mask comes from (seed,
 * offset); without a seed one is drawn from the default generator (see manualSeed).
 */
export function dropout(x: Tensor, p = 0.5, training = true, seed?: number, offset = 0): Tensor {
  if (!training || p === 0) return x;
  return apply1('dropout', [x], { p, seed: seed ?? defaultRng().seed(), offset });
}

// ---- shape ----

export function reshape(x: Tensor, shape: Shape): Tensor {
  return apply1('reshape', [x], { shape });
}

/** Flatten dims startDim..endDim into one (torch.flatten; nn.Flatten uses startDim 1). */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const s = dim('flatten', x.shape, startDim);
  const e = dim('flatten', x.shape, endDim);
  if (e < s) throw new ShapeError(`flatten: endDim ${endDim} comes before startDim ${startDim} for shape ${fmt(x.shape)}`);
  const mid = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

/** y.shape[i] = x.shape[perm[i]] (negative dims allowed). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const p = perm.map((d) => dim('permute', x.shape, d));
  if (p.length !== x.rank || new Set(p).size !== p.length) throw new ShapeError(`permute: ${fmt(perm)} is not a permutation of the dims of ${fmt(x.shape)}`);
  return apply1('permute', [x], { perm: p });
}

/** Swap two dims. */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const perm = x.shape.map((_, i) => i);
  const a = dim('transpose', x.shape, dim0);
  const b = dim('transpose', x.shape, dim1);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Normalise reduction axes: undefined = all; negative allowed; sorted, unique. */
function axesOf(op: string, x: Tensor, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => dim(op, x.shape, a)))].sort((a, b) => a - b);
}

/** Sum over `axes` (all when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return apply1('sum', [x], { axes: axesOf('sum', x, axes), keepDims });
}

/** Mean over `axes` (all when omitted). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return apply1('mean', [x], { axes: axesOf('mean', x, axes), keepDims });
}

/** Join tensors along `axis` (same shape elsewhere). */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new ShapeError('concat: no tensors');
  return apply1('concat', xs, { axis: dim('concat', xs[0]!.shape, axis) });
}

/**
 * x[starts : ends] per dim. Shorter lists leave the remaining dims whole; negative indices
 * count from the end (as Python); ends are clamped to the dim.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  const norm = (v: number | undefined, d: number, dflt: number) => (v === undefined ? dflt : Math.min(d, Math.max(0, v < 0 ? v + d : v)));
  const s = x.shape.map((d, i) => norm(starts[i], d, 0));
  const e = x.shape.map((d, i) => Math.max(s[i]!, norm(ends[i], d, d)));
  return apply1('slice', [x], { starts: s, ends: e });
}

/** Split along `axis` into pieces of `sizes` (a number = equal pieces, the last may be smaller), as torch.split. */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = dim('split', x.shape, axis);
  const len = x.shape[a]!;
  let parts: number[];
  if (typeof sizes === 'number') {
    if (!(sizes > 0)) throw new ShapeError(`split: size must be positive, got ${sizes}`);
    parts = [];
    for (let at = 0; at < len; at += sizes) parts.push(Math.min(sizes, len - at));
  } else parts = [...sizes];
  if (parts.reduce((s, n) => s + n, 0) !== len) throw new ShapeError(`split: sizes ${fmt(parts)} do not add up to dim ${axis} of ${fmt(x.shape)}`);
  return apply('split', [x], { axis: a, sizes: parts });
}

/** Split into `chunks` nearly equal pieces along `axis` (torch.chunk). */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  const len = x.shape[dim('chunk', x.shape, axis)]!;
  return split(x, Math.ceil(len / chunks), axis);
}
