// Resize 8-bit RGB images exactly as PIL's Image.resize does (separable, antialiased, fixed-point, uint8 between passes).
//
// PIL (Resample.c): for each output pixel x, the source centre is (x + 0.5)·scale with scale = in/out; the
// filter is stretched by max(scale, 1) (so shrinking averages over more source pixels: antialiasing); taps
// run over [trunc(centre - support + 0.5), trunc(centre + support + 0.5)) clipped to the image, weighted
// filter((i - centre + 0.5) / max(scale, 1)) and normalised to sum 1. Weights become 22-bit fixed point,
// each pass rounds half up and clamps to 0..255. The horizontal pass runs first (on the rows the vertical
// pass needs), then the vertical pass; a pass whose size does not change is skipped.
import { GraftError } from '../runtime/errors.js';
import type { RgbImage } from './decode.js';
import { roundHalfEven } from './crop.js';

export type ResizeFilter = 'bilinear' | 'bicubic' | 'box';

interface Filter {
  support: number;
  f: (x: number) => number;
}

const FILTERS: Record<ResizeFilter, Filter> = {
  // triangle
  bilinear: { support: 1, f: (x) => ((x = Math.abs(x)) < 1 ? 1 - x : 0) },
  // Keys cubic with a = -0.5
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Per output pixel: first source index, tap count, and ksize fixed-point weights. */
interface Coeffs {
  ksize: number;
  /** [out, 2]: first tap, tap count */
  bounds: Int32Array;
  /** [out, ksize] */
  kk: Int32Array;
}

function precompute(inSize: number, outSize: number, filter: Filter): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax ? (ww !== 0 ? k[x]! / ww : k[x]!) : 0;
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = Math.max(xmax, 0);
  }
  return { ksize, bounds, kk };
}

/** Fixed-point accumulator -> uint8 (PIL's clip8: arithmetic shift, clamp). */
function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass over rows [y0, y0 + rows) of src (width w) -> [rows, outW, 3]. */
function horizontal(src: Uint8Array, w: number, y0: number, rows: number, outW: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(rows * outW * 3);
  for (let y = 0; y < rows; y++) {
    const rowIn = (y0 + y) * w * 3;
    const rowOut = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.bounds[2 * xx]!;
      const n = c.bounds[2 * xx + 1]!;
      const kb = xx * c.ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0; x < n; x++) {
        const k = c.kk[kb + x]!;
        const p = rowIn + (xmin + x) * 3;
        s0 += src[p]! * k;
        s1 += src[p + 1]! * k;
        s2 += src[p + 2]! * k;
      }
      out[rowOut + 3 * xx] = clip8(s0);
      out[rowOut + 3 * xx + 1] = clip8(s1);
      out[rowOut + 3 * xx + 2] = clip8(s2);
    }
  }
  return out;
}

/** Vertical pass: src [*, w, 3] whose row 0 is source row `yFirst` -> [outH, w, 3]. */
function vertical(src: Uint8Array, w: number, yFirst: number, outH: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outH * w * 3);
  const stride = w * 3;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.bounds[2 * yy]! - yFirst;
    const n = c.bounds[2 * yy + 1]!;
    const kb = yy * c.ksize;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let y = 0; y < n; y++) s += src[(ymin + y) * stride + i]! * c.kk[kb + y]!;
      out[yy * stride + i] = clip8(s);
    }
  }
  return out;
}

/** PIL's `img.resize((width, height), filter)` on an RGB image (bilinear by default). */
export function resizeImage(img: RgbImage, width: number, height: number, filter: ResizeFilter = 'bilinear'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new GraftError(`resize: target size ${width}×${height} must be positive integers`);
  }
  if (img.width < 1 || img.height < 1) throw new GraftError(`resize: empty source image ${img.width}×${img.height}`);
  const f = FILTERS[filter];
  if (!f) throw new GraftError(`resize: unknown filter '${String(filter)}' (known: ${Object.keys(FILTERS).join(', ')})`);
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV) return { width, height, data: img.data.slice() };
  const cv = precompute(img.height, height, f);
  let data = img.data;
  let yFirst = 0;
  if (needH) {
    const ch = precompute(img.width, width, f);
    // Only the source rows the vertical pass reads (all of them when there is no vertical pass).
    const yLast = needV ? cv.bounds[2 * height - 2]! + cv.bounds[2 * height - 1]! : img.height;
    yFirst = needV ? cv.bounds[0]! : 0;
    data = horizontal(data, img.width, yFirst, yLast - yFirst, width, ch);
  }
  if (needV) data = vertical(data, width, yFirst, height, cv);
  return { width, height, data };
}

/**
 * How the longer side is rounded when the shorter one is resized to `size`: 'trunc' = int(size · long / short)
 * (torchvision's Resize), 'round' = Python round() (what the Keras ResNet50 reference outputs used).
 */
export type LongSideRounding = 'trunc' | 'round';

/** The shorter side becomes `size`, the longer size · long / short rounded by `rounding`; resampled like PIL. */
export function resizeShorterSide(img: RgbImage, size: number, filter: ResizeFilter = 'bilinear', rounding: LongSideRounding = 'trunc'): RgbImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const exact = (size * long) / short;
  const newLong = rounding === 'round' ? roundHalfEven(exact) : Math.trunc(exact);
  const [nw, nh] = w <= h ? [size, newLong] : [newLong, size];
  return resizeImage(img, nw, nh, filter);
}
