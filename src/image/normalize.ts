// Per-model normalisation of RGB pixels into a float CHW plane set (Keras caffe, torchvision ImageNet, custom).
import { GraftError } from '../runtime/errors.js';
import type { RgbImage } from './decode.js';

/**
 * How pixels p (0..255, RGB) become model inputs: out[c] = (p[src(c)] · scale - mean[c]) / std[c], where
 * src(c) = 2 - c when `bgr` (channel order reversed) else c; mean/std are in output channel order.
 */
export interface Normalization {
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  bgr: boolean;
}

/** Keras `preprocess_input(mode='caffe')` (Keras ResNet50): RGB→BGR, subtract the BGR ImageNet means, no scaling. */
export const CAFFE: Normalization = { scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1], bgr: true };

/** torchvision ImageNet models: /255, then (x - mean) / std per RGB channel. */
export const TORCHVISION: Normalization = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false };

export const NORMALIZATIONS: Record<string, Normalization> = { caffe: CAFFE, torchvision: TORCHVISION };

export function normalization(n: Normalization | keyof typeof NORMALIZATIONS): Normalization {
  if (typeof n !== 'string') return n;
  const hit = NORMALIZATIONS[n];
  if (!hit) throw new GraftError(`unknown normalisation '${n}' (known: ${Object.keys(NORMALIZATIONS).join(', ')})`);
  return hit;
}

/** RGB image [H, W, 3] -> normalised planes [3, H, W], written into `out` at `offset` (or a new array). */
export function normalizeToChw(img: RgbImage, norm: Normalization, out?: Float32Array, offset = 0): Float32Array {
  const hw = img.width * img.height;
  const dst = out ?? new Float32Array(3 * hw);
  if (dst.length < offset + 3 * hw) throw new GraftError(`normalize: output has ${dst.length - offset} floats after offset, needs ${3 * hw}`);
  for (let c = 0; c < 3; c++) {
    const s = norm.bgr ? 2 - c : c;
    const m = norm.mean[c];
    const inv = 1 / norm.std[c];
    const base = offset + c * hw;
    for (let i = 0; i < hw; i++) dst[base + i] = (img.data[3 * i + s]! * norm.scale - m) * inv;
  }
  return dst;
}
