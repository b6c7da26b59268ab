// The classification input pipeline: decode -> resize shorter side -> center crop -> normalise -> NCHW batch.
import { GraftError } from '../runtime/errors.js';
import { readImage, type RgbImage } from './decode.js';
import { resizeShorterSide, type LongSideRounding, type ResizeFilter } from './resize.js';
import { centerCrop } from './crop.js';
import { normalization, normalizeToChw, type Normalization } from './normalize.js';

export interface PreprocessOptions {
  /** Shorter side after resizing (PIL semantics), e.g. 256; null skips the resize. */
  resize: number | null;
  /** Center-crop size, e.g. 224 (square); null skips the crop. */
  crop: number | null;
  normalize: Normalization | 'caffe' | 'torchvision';
  filter?: ResizeFilter;
  /** Rounding of the longer side when resizing (default 'trunc', torchvision's). */
  longSide?: LongSideRounding;
}

/**
 * Keras ResNet50 / caffe-style models: resize 256 (longer side rounded, as the reference outputs in
 * shared/assets/README.md were computed), crop 224, BGR minus means.
 */
export const KERAS_CAFFE_PREPROCESS: PreprocessOptions = { resize: 256, crop: 224, normalize: 'caffe', longSide: 'round' };
/** torchvision ImageNet classifiers: resize 256, crop 224, /255, mean/std. */
export const TORCHVISION_PREPROCESS: PreprocessOptions = { resize: 256, crop: 224, normalize: 'torchvision' };

/** Resize and crop (the uint8 part of the pipeline). */
export function resizeAndCrop(img: RgbImage, opts: PreprocessOptions): RgbImage {
  let out = img;
  if (opts.resize !== null) out = resizeShorterSide(out, opts.resize, opts.filter ?? 'bilinear', opts.longSide ?? 'trunc');
  if (opts.crop !== null) out = centerCrop(out, opts.crop);
  return out;
}

/** One image -> [3, H, W] floats. */
export function preprocessImage(img: RgbImage, opts: PreprocessOptions): Float32Array {
  return normalizeToChw(resizeAndCrop(img, opts), normalization(opts.normalize));
}

export interface ImageBatch {
  /** [N, 3, H, W] */
  data: Float32Array;
  shape: [number, number, number, number];
}

/** Images of any sizes -> one [N, 3, H, W] batch; with crop = null every image must end up the same size. */
export function preprocessBatch(images: readonly RgbImage[], opts: PreprocessOptions): ImageBatch {
  const norm = normalization(opts.normalize);
  const ready = images.map((im) => resizeAndCrop(im, opts));
  const first = ready[0];
  if (!first) return { data: new Float32Array(0), shape: [0, 3, opts.crop ?? 0, opts.crop ?? 0] };
  const { width: w, height: h } = first;
  const per = 3 * w * h;
  const data = new Float32Array(ready.length * per);
  ready.forEach((im, i) => {
    if (im.width !== w || im.height !== h) {
      throw new GraftError(`preprocessBatch: image ${i} is ${im.width}×${im.height} after resizing but image 0 is ${w}×${h}; set a crop size`);
    }
    normalizeToChw(im, norm, data, i * per);
  });
  return { data, shape: [ready.length, 3, h, w] };
}

/** Read, decode and preprocess image files into one batch. */
export async function loadImageBatch(paths: readonly string[], opts: PreprocessOptions): Promise<ImageBatch> {
  const imgs: RgbImage[] = [];
  for (const p of paths) imgs.push(await readImage(p));
  return preprocessBatch(imgs, opts);
}
