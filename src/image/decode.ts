// Decode PNG (pngjs) and JPEG (jpeg-js) bytes to 8-bit RGB pixels [H, W, 3]: alpha dropped, grayscale expanded.
import { readFile } from 'node:fs/promises';
import { PNG } from 'pngjs';
import { decode as decodeJpeg } from 'jpeg-js';
import { GraftError } from '../runtime/errors.js';
import { decodeJpegExact, yccToRgbInPlace } from './jpeg.js';

/** An 8-bit RGB image, row-major, channels last: data[(y·width + x)·3 + c]. */
export interface RgbImage {
  width: number;
  height: number;
  /** [height, width, 3] */
  data: Uint8Array;
}

export type ImageFormat = 'png' | 'jpeg';

/** The format named by the file's magic bytes, or null when it is neither PNG nor JPEG. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** RGBA [H, W, 4] -> RGB [H, W, 3] (alpha dropped, as PIL's convert('RGB')). */
function dropAlpha(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[3 * i] = rgba[4 * i]!;
    out[3 * i + 1] = rgba[4 * i + 1]!;
    out[3 * i + 2] = rgba[4 * i + 2]!;
  }
  return out;
}

/**
 * True for a 3-component JPEG without an Adobe APP14 colour-transform flag, i.e. YCbCr that jpeg-js leaves
 * untouched when asked (colorTransform: false). Walks the marker segments up to the first scan.
 */
function jpegIsYcc(b: Uint8Array): boolean {
  let p = 2;
  let comps = 0;
  let adobeTransform = false;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const m = b[p + 1]!;
    if (m === 0xff) {
      p++;
      continue;
    }
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    const seg = p + 4;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) comps = b[seg + 5] ?? 0;
    if (m === 0xee && len >= 14 && String.fromCharCode(...b.subarray(seg, seg + 5)) === 'Adobe') adobeTransform = true;
    if (m === 0xda) break;
    p += 2 + len;
  }
  return comps === 3 && !adobeTransform;
}

/**
 * Decode a PNG or JPEG to RGB (sequential JPEGs bit-exact with libjpeg-turbo / PIL). `name` labels errors ("photo.png: not a PNG or JPEG image").
 * PNGs of any colour type / bit depth become 8-bit RGB (pngjs scales 16-bit and expands palettes
 * and grayscale); grayscale and CMYK JPEGs become RGB. Truncated or corrupt data is an error.
 */
export function decodeImage(bytes: Uint8Array, name = 'image'): RgbImage {
  const fmt = sniffFormat(bytes);
  if (!fmt) throw new GraftError(`${name}: not a PNG or JPEG image`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (fmt === 'png') {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: dropAlpha(png.data, png.width, png.height) };
    }
    // Sequential JPEGs: graft's own decoder, bit-exact with libjpeg-turbo (what PIL uses).
    const exact = decodeJpegExact(bytes);
    if (exact) return exact;
    // Others (progressive, ...): jpeg-js. It converts YCbCr to RGB in floating point and truncates, so ask
    // for the raw planes when the file is plain YCbCr and convert them like libjpeg does.
    const raw = jpegIsYcc(bytes);
    const j = decodeJpeg(buf, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 1024, colorTransform: !raw });
    if (j.data.length !== j.width * j.height * 3) throw new Error(`decoder returned ${j.data.length} bytes for ${j.width}×${j.height}`);
    if (raw) yccToRgbInPlace(j.data);
    return { width: j.width, height: j.height, data: j.data };
  } catch (e) {
    throw new GraftError(`${name}: corrupt ${fmt === 'png' ? 'PNG' : 'JPEG'} (${(e as Error).message})`);
  }
}

/** Read and decode an image file. */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new GraftError(`${path}: cannot read image (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`);
  }
  return decodeImage(bytes, path);
}
