// Image transforms on CHW float examples: grayscale→RGB, bilinear resize, crops, seeded flips, normalisation.
import { GraftError } from '../runtime/errors.js';
import { roundHalfEven } from '../image/crop.js';
import { normalization, type Normalization } from '../image/normalize.js';
import type { ImageExample } from './dataset.js';
import type { Rng } from './rng.js';

function withImage(ex: ImageExample, image: Float32Array, channels: number, height: number, width: number): ImageExample {
  return { ...ex, image, channels, height, width };
}

/** 1 channel → 3 identical channels; 3-channel examples are returned unchanged. */
export function grayscaleToRgb(ex: ImageExample): ImageExample {
  if (ex.channels === 3) return ex;
  if (ex.channels !== 1) throw new GraftError(`grayscaleToRgb: expected 1 or 3 channels, got ${ex.channels}`);
  const hw = ex.height * ex.width;
  const out = new Float32Array(3 * hw);
  out.set(ex.image, 0);
  out.set(ex.image, hw);
  out.set(ex.image, 2 * hw);
  return withImage(ex, out, 3, ex.height, ex.width);
}

/** Per output pixel along one axis: first source index, tap count, normalised weights. */
interface AxisCoeffs {
  ksize: number;
  /** [out, 2] */
  bounds: Int32Array;
  /** [out, ksize] */
  weights: Float64Array;
}

/**
 * Triangle-filter (bilinear) coefficients with half-pixel centres. With antialias the filter widens by the
 * shrink factor when downsampling (PIL / torchvision antialias=True); without it, or when upsampling, this is
 * plain bilinear interpolation (align_corners=False, edge pixels clamped), like torch's F.interpolate.
 */
function axisCoeffs(inSize: number, outSize: number, antialias: boolean): AxisCoeffs {
  const scale = inSize / outSize;
  const fs = antialias ? Math.max(scale, 1) : 1;
  const support = fs;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(2 * outSize);
  const weights = new Float64Array(outSize * ksize);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const n = Math.min(Math.trunc(centre + support + 0.5), inSize) - lo;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const x = Math.abs((lo + k - centre + 0.5) / fs);
      const w = x < 1 ? 1 - x : 0;
      weights[o * ksize + k] = w;
      sum += w;
    }
    if (sum > 0) for (let k = 0; k < n; k++) weights[o * ksize + k]! /= sum;
    bounds[2 * o] = lo;
    bounds[2 * o + 1] = Math.max(n, 0);
  }
  return { ksize, bounds, weights };
}

export interface ResizeOptions {
  /** Widen the filter when shrinking (default true; no effect when enlarging). */
  antialias?: boolean;
}

/** Bilinear resize of every channel to height×width (e.g. 28×28 → 112×112 for an ImageNet backbone). */
export function resize(ex: ImageExample, height: number, width = height, o: ResizeOptions = {}): ImageExample {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) throw new GraftError(`resize: target ${height}×${width} must be positive integers`);
  const { channels: C, height: H, width: W } = ex;
  if (H === height && W === width) return ex;
  const aa = o.antialias ?? true;
  const cx = axisCoeffs(W, width, aa);
  const cy = axisCoeffs(H, height, aa);
  // Horizontal pass: [C, H, W] -> [C, H, width]
  const tmp = new Float32Array(C * H * width);
  for (let r = 0; r < C * H; r++) {
    const src = r * W;
    const dst = r * width;
    for (let x = 0; x < width; x++) {
      const lo = cx.bounds[2 * x]!;
      const n = cx.bounds[2 * x + 1]!;
      const wb = x * cx.ksize;
      let s = 0;
      for (let k = 0; k < n; k++) s += ex.image[src + lo + k]! * cx.weights[wb + k]!;
      tmp[dst + x] = s;
    }
  }
  // Vertical pass: [C, H, width] -> [C, height, width]
  const out = new Float32Array(C * height * width);
  for (let c = 0; c < C; c++) {
    const plane = c * H * width;
    for (let y = 0; y < height; y++) {
      const lo = cy.bounds[2 * y]!;
      const n = cy.bounds[2 * y + 1]!;
      const wb = y * cy.ksize;
      const dst = (c * height + y) * width;
      for (let k = 0; k < n; k++) {
        const w = cy.weights[wb + k]!;
        const src = plane + (lo + k) * width;
        for (let x = 0; x < width; x++) out[dst + x]! += tmp[src + x]! * w;
      }
    }
  }
  return withImage(ex, out, C, height, width);
}

/** The height×width window at (top, left), zero-filled where it leaves the image. */
export function crop(ex: ImageExample, top: number, left: number, height: number, width: number, fill = 0): ImageExample {
  const { channels: C, height: H, width: W } = ex;
  const out = new Float32Array(C * height * width);
  if (fill !== 0) out.fill(fill);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, W - left);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < height; y++) {
      const sy = top + y;
      if (sy < 0 || sy >= H || x1 <= x0) continue;
      const src = (c * H + sy) * W + left;
      out.set(ex.image.subarray(src + x0, src + x1), (c * height + y) * width + x0);
    }
  }
  return withImage(ex, out, C, height, width);
}

/** torchvision CenterCrop offsets: top = round((H - h) / 2) (half to even); the image must be large enough. */
export function centerCrop(ex: ImageExample, height: number, width = height): ImageExample {
  if (height > ex.height || width > ex.width) throw new GraftError(`centerCrop: ${height}×${width} is larger than the image ${ex.height}×${ex.width}`);
  return crop(ex, roundHalfEven((ex.height - height) / 2), roundHalfEven((ex.width - width) / 2), height, width);
}

export interface RandomCropOptions {
  /** Output size (square when a number). */
  size: number | readonly [number, number];
  /** Zero padding on every side before cropping (torchvision RandomCrop(size, padding)). */
  padding?: number;
  /** Value of the padding (default 0). */
  fill?: number;
}

/** torchvision RandomCrop: pad, then a uniformly placed window (top drawn first, then left). */
export function randomCrop(ex: ImageExample, rng: Rng, o: RandomCropOptions): ImageExample {
  const [h, w] = typeof o.size === 'number' ? [o.size, o.size] : o.size;
  const p = o.padding ?? 0;
  if (!Number.isInteger(p) || p < 0) throw new GraftError(`randomCrop: padding must be a non-negative integer, got ${p}`);
  const ph = ex.height + 2 * p;
  const pw = ex.width + 2 * p;
  if (h > ph || w > pw) throw new GraftError(`randomCrop: ${h}×${w} is larger than the padded image ${ph}×${pw}`);
  const top = rng.int(ph - h + 1);
  const left = rng.int(pw - w + 1);
  return crop(ex, top - p, left - p, h, w, o.fill ?? 0);
}

/** Mirror left-right. */
export function horizontalFlip(ex: ImageExample): ImageExample {
  const { channels: C, height: H, width: W } = ex;
  const out = new Float32Array(ex.image.length);
  for (let r = 0; r < C * H; r++) for (let x = 0; x < W; x++) out[r * W + x] = ex.image[r * W + W - 1 - x]!;
  return withImage(ex, out, C, H, W);
}

/** Flip with probability p (one draw from rng either way). */
export function randomHorizontalFlip(ex: ImageExample, rng: Rng, p = 0.5): ImageExample {
  return rng.float() < p ? horizontalFlip(ex) : ex;
}

/**
 * Normalise 0..1 RGB pixels for a model, with src/image's presets: 'torchvision' (x - mean) / std on RGB;
 * 'caffe' (Keras ResNet50) reorders to BGR and subtracts the BGR means on the 0..255 scale.
 * out[c] = (255 · x[src(c)] · n.scale - n.mean[c]) / n.std[c], src(c) = 2 - c when n.bgr.
 */
export function normalize(ex: ImageExample, n: Normalization | 'caffe' | 'torchvision'): ImageExample {
  const norm = normalization(n);
  if (ex.channels !== 3) throw new GraftError(`normalize: expected 3 channels, got ${ex.channels} (apply grayscaleToRgb first)`);
  const hw = ex.height * ex.width;
  const out = new Float32Array(3 * hw);
  for (let c = 0; c < 3; c++) {
    const s = (norm.bgr ? 2 - c : c) * hw;
    const k = 255 * norm.scale;
    const m = norm.mean[c];
    const inv = 1 / norm.std[c];
    for (let i = 0; i < hw; i++) out[c * hw + i] = (ex.image[s + i]! * k - m) * inv;
  }
  return withImage(ex, out, 3, ex.height, ex.width);
}

export interface ImagePipeline {
  /** Repeat a gray channel to RGB. */
  rgb?: boolean;
  /** Resize to this size (square when a number), bilinear. */
  resize?: number | readonly [number, number];
  antialias?: boolean;
  /** Random crop (training augmentation), after the resize. */
  randomCrop?: RandomCropOptions;
  /** Center crop (evaluation), after the resize. */
  centerCrop?: number | readonly [number, number];
  /** Random horizontal flip probability (true = 0.5). */
  flip?: boolean | number;
  normalize?: Normalization | 'caffe' | 'torchvision';
}

/**
 * A DataLoader transform applying, in this order: rgb → resize → randomCrop / centerCrop → flip → normalize.
 * Random draws happen in that order from the example's rng, so a seed fixes the augmentation.
 */
export function imagePipeline(p: ImagePipeline): (ex: ImageExample, rng: Rng) => ImageExample {
  if (p.randomCrop && p.centerCrop !== undefined) throw new GraftError('imagePipeline: give randomCrop or centerCrop, not both');
  const flipP = p.flip === true ? 0.5 : p.flip === false || p.flip === undefined ? 0 : p.flip;
  return (ex, rng) => {
    let e = ex;
    if (p.rgb) e = grayscaleToRgb(e);
    if (p.resize !== undefined) {
      const [h, w] = typeof p.resize === 'number' ? [p.resize, p.resize] : p.resize;
      e = resize(e, h, w, { antialias: p.antialias });
    }
    if (p.randomCrop) e = randomCrop(e, rng, p.randomCrop);
    if (p.centerCrop !== undefined) {
      const [h, w] = typeof p.centerCrop === 'number' ? [p.centerCrop, p.centerCrop] : p.centerCrop;
      e = centerCrop(e, h, w);
    }
    if (flipP > 0) e = randomHorizontalFlip(e, rng, flipP);
    if (p.normalize !== undefined) e = normalize(e, p.normalize);
    return e;
  };
}
