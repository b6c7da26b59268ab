// Center crop of an RGB image with torchvision's offsets (Python round-half-even) and zero padding when too small.
import { GraftError } from '../runtime/errors.js';
import type { RgbImage } from './decode.js';

/** Python 3's round(): halves go to the even neighbour. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision's CenterCrop((height, width)): top = round((H - height) / 2), left likewise; an image
 * smaller than the crop is first zero-padded symmetrically (extra pixel on the bottom/right).
 */
export function centerCrop(img: RgbImage, width: number, height = width): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new GraftError(`centerCrop: size ${width}×${height} must be positive integers`);
  }
  let src = img;
  if (img.width < width || img.height < height) src = padTo(img, Math.max(width, img.width), Math.max(height, img.height));
  const top = roundHalfEven((src.height - height) / 2);
  const left = roundHalfEven((src.width - width) / 2);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * src.width + left) * 3;
    out.set(src.data.subarray(s, s + width * 3), y * width * 3);
  }
  return { width, height, data: out };
}

/** Zero-pad to w×h: left = (w - W) // 2, top = (h - H) // 2 (torchvision's center_crop padding). */
function padTo(img: RgbImage, w: number, h: number): RgbImage {
  const left = Math.floor((w - img.width) / 2);
  const top = Math.floor((h - img.height) / 2);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < img.height; y++) {
    out.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((top + y) * w + left) * 3);
  }
  return { width: w, height: h, data: out };
}
