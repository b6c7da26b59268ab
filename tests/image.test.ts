// Image pipeline vs PIL (fixture from scripts/fixtures/resnet_parity.py): decode, PIL-exact resize, crop, normalise, batch.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import {
  CAFFE,
  TORCHVISION,
  centerCrop,
  decodeImage,
  loadImageBatch,
  normalizeToChw,
  preprocessBatch,
  readImage,
  resizeImage,
  resizeShorterSide,
  roundHalfEven,
  KERAS_CAFFE_PREPROCESS,
  type ResizeFilter,
  type RgbImage,
} from '../src/image/index.js';
import { hashUniform, keySeed } from '../src/models/resnet-synthetic.js';
import { GraftError } from '../src/runtime/errors.js';

interface ResizeCase {
  src: [number, number];
  dst: [number, number];
  filter: ResizeFilter;
  pixels: string;
}
interface PhotoCase {
  file: string;
  size: [number, number];
  decodedSha256: string;
  resized256: [number, number];
  crop224Sample: string;
  crop224Mean: number[];
  rounded256: [number, number];
  roundedCrop224Sample: string;
  small32: { size: [number, number]; pixels: string };
}
interface JpegCase {
  name: string;
  jpeg: string;
  size: [number, number];
  pixels: string;
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/resnet-image.json', import.meta.url), 'utf8')) as {
  resize: ResizeCase[];
  jpeg: JpegCase[];
  photos: PhotoCase[];
};
const IMAGES = new URL('../../shared/assets/images/', import.meta.url).pathname;
const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));

/** The fixture's noise image: floor(u · 256) with seed keySeed('image{w}x{h}'). */
function noiseImage(w: number, h: number): RgbImage {
  const seed = keySeed(`image${w}x${h}`);
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(hashUniform(seed, i) * 256);
  return { width: w, height: h, data };
}

/** Rows/cols [r0::step] x [c0::step] of an [H, W, 3] image. */
function sample(img: RgbImage, r0: number, c0: number, step: number): Uint8Array {
  const out: number[] = [];
  for (let y = r0; y < img.height; y += step) for (let x = c0; x < img.width; x += step) for (let c = 0; c < 3; c++) out.push(img.data[(y * img.width + x) * 3 + c]!);
  return Uint8Array.from(out);
}

function diffStats(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

describe('PIL-exact resize', () => {
  for (const c of fx.resize) {
    it(`${c.filter} ${c.src.join('×')} -> ${c.dst.join('×')} matches PIL exactly`, () => {
      const out = resizeImage(noiseImage(c.src[0], c.src[1]), c.dst[0], c.dst[1], c.filter);
      expect([out.width, out.height]).toEqual(c.dst);
      expect(diffStats(out.data, bytes(c.pixels)).max).toBe(0);
    });
  }

  it('same size is a copy; bad sizes and filters throw', () => {
    const img = noiseImage(5, 3);
    const same = resizeImage(img, 5, 3);
    expect(same.data).toEqual(img.data);
    expect(same.data).not.toBe(img.data);
    expect(() => resizeImage(img, 0, 3)).toThrow(GraftError);
    expect(() => resizeImage(img, 2.5, 3)).toThrow(/positive integers/);
    expect(() => resizeImage(img, 2, 3, 'lanczos' as ResizeFilter)).toThrow(/unknown filter/);
  });

  it('resizeShorterSide keeps the aspect ratio with torchvision truncation', () => {
    expect(resizeShorterSide(noiseImage(37, 23), 10)).toMatchObject({ width: 16, height: 10 });
    expect(resizeShorterSide(noiseImage(23, 37), 10)).toMatchObject({ width: 10, height: 16 });
  });
});

describe('JPEG decoding vs PIL (libjpeg-turbo)', () => {
  for (const c of fx.jpeg) {
    it(`${c.name} ${c.size.join('×')} is bit-exact`, () => {
      const img = decodeImage(bytes(c.jpeg), c.name);
      expect([img.width, img.height]).toEqual(c.size);
      expect(diffStats(img.data, bytes(c.pixels)).max).toBe(0);
    });
  }
  it('the fixture covers restart markers (made with jpegtran) and progressive files', () => {
    expect(fx.jpeg.filter((c) => c.name.includes('restart')).length).toBe(3);
    expect(fx.jpeg.filter((c) => c.name.startsWith('progressive')).length).toBe(4);
  });

  it('truncated and malformed JPEGs are errors, not garbage', () => {
    const c = fx.jpeg.find((x) => x.name === '420-q75')!;
    const full = bytes(c.jpeg);
    expect(() => decodeImage(full.subarray(0, full.length - 40), 'cut.jpg')).toThrow(/cut\.jpg: corrupt JPEG/);
    expect(() => decodeImage(full.subarray(0, 200), 'head.jpg')).toThrow(/head\.jpg: corrupt JPEG/);
  });
});

describe('photos vs PIL', () => {
  for (const p of fx.photos) {
    it(`${p.file}: decode, resize 256, crop 224 are bit-exact`, async () => {
      const img = await readImage(join(IMAGES, p.file));
      expect([img.width, img.height]).toEqual(p.size);
      expect(createHash('sha256').update(img.data).digest('hex')).toBe(p.decodedSha256);
      const small = resizeShorterSide(img, 32);
      expect([small.width, small.height]).toEqual(p.small32.size);
      expect(diffStats(small.data, bytes(p.small32.pixels)).max).toBe(0);
      const r = resizeShorterSide(img, 256);
      expect([r.width, r.height]).toEqual(p.resized256);
      const crop = centerCrop(r, 224);
      expect(diffStats(sample(crop, 1, 2, 4), bytes(p.crop224Sample)).max).toBe(0);
      // The Keras preset rounds the longer side (385×256 for chelsea instead of 384×256).
      const rr = resizeShorterSide(img, 256, 'bilinear', 'round');
      expect([rr.width, rr.height]).toEqual(p.rounded256);
      expect(diffStats(sample(centerCrop(rr, 224), 2, 1, 4), bytes(p.roundedCrop224Sample)).max).toBe(0);
      const mean = [0, 0, 0];
      for (let i = 0; i < crop.data.length; i++) mean[i % 3]! += crop.data[i]! / (224 * 224);
      for (let c = 0; c < 3; c++) expect(Math.abs(mean[c]! - p.crop224Mean[c]!)).toBeLessThan(1e-6);
    });
  }
});

describe('decode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'graft-image-'));

  function pngBytes(w: number, h: number, colorType: 0 | 2 | 4 | 6, rgba: number[]): Buffer {
    const png = new PNG({ width: w, height: h, colorType, inputColorType: 6, inputHasAlpha: true });
    png.data = Buffer.from(rgba);
    return PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true });
  }

  it('grayscale PNG becomes RGB and RGBA drops alpha', () => {
    const px = [10, 10, 10, 255, 200, 200, 200, 255];
    const g = decodeImage(pngBytes(2, 1, 0, px));
    expect(Array.from(g.data)).toEqual([10, 10, 10, 200, 200, 200]);
    const rgba = decodeImage(pngBytes(2, 1, 6, [1, 2, 3, 4, 5, 6, 7, 0]));
    expect(Array.from(rgba.data)).toEqual([1, 2, 3, 5, 6, 7]);
  });

  it('not an image, truncated data and missing files are one-line GraftErrors', async () => {
    expect(() => decodeImage(new TextEncoder().encode('hello world'), 'notes.txt')).toThrow('notes.txt: not a PNG or JPEG image');
    const png = readFileSync(join(IMAGES, 'coffee.png'));
    expect(() => decodeImage(png.subarray(0, 5000), 'cut.png')).toThrow(/cut\.png: corrupt PNG/);
    const jpg = readFileSync(join(IMAGES, 'china.jpg'));
    expect(() => decodeImage(jpg.subarray(0, 3000), 'cut.jpg')).toThrow(/cut\.jpg: corrupt JPEG/);
    await expect(readImage(join(dir, 'missing.png'))).rejects.toThrow(/missing\.png: cannot read image \(no such file\)/);
    const bad = join(dir, 'fake.jpg');
    writeFileSync(bad, 'GIF89a....');
    await expect(readImage(bad)).rejects.toThrow(GraftError);
  });
});

describe('crop and normalise', () => {
  it('roundHalfEven is Python 3 round()', () => {
    expect([0.5, 1.5, 2.5, 79.5, 80.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 80, 80, 2, 3]);
  });

  it('centerCrop takes torchvision offsets and zero-pads small images', () => {
    const img = noiseImage(7, 4);
    const c = centerCrop(img, 4, 2); // top = round(1) = 1, left = round(1.5) = 2
    expect(Array.from(c.data.subarray(0, 3))).toEqual(Array.from(img.data.subarray((1 * 7 + 2) * 3, (1 * 7 + 2) * 3 + 3)));
    const p = centerCrop(noiseImage(1, 1), 2, 3); // padded 2×3: left 0, top 1 (extra on right/bottom)
    expect(Array.from(p.data)).toEqual([0, 0, 0, 0, 0, 0, ...Array.from(noiseImage(1, 1).data), 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('caffe: BGR minus means; torchvision: /255 then mean/std, NCHW', () => {
    const img: RgbImage = { width: 2, height: 1, data: Uint8Array.from([10, 20, 30, 255, 0, 128]) };
    const caffe = normalizeToChw(img, CAFFE);
    const f = Math.fround;
    expect(Array.from(caffe)).toEqual([30 - 103.939, 128 - 103.939, 20 - 116.779, 0 - 116.779, 10 - 123.68, 255 - 123.68].map(f));
    const tv = normalizeToChw(img, TORCHVISION);
    const want = [
      (10 / 255 - 0.485) / 0.229, (255 / 255 - 0.485) / 0.229,
      (20 / 255 - 0.456) / 0.224, (0 - 0.456) / 0.224,
      (30 / 255 - 0.406) / 0.225, (128 / 255 - 0.406) / 0.225,
    ];
    tv.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-6));
  });

  it('batches images of different sizes into [N, 3, 224, 224]', async () => {
    const files = ['chelsea.png', 'coffee.png', 'china.jpg'].map((f) => join(IMAGES, f));
    const batch = await loadImageBatch(files, KERAS_CAFFE_PREPROCESS);
    expect(batch.shape).toEqual([3, 3, 224, 224]);
    const one = preprocessBatch([await readImage(files[1]!)], KERAS_CAFFE_PREPROCESS);
    expect(batch.data.subarray(3 * 224 * 224, 2 * 3 * 224 * 224)).toEqual(one.data);
    expect(() => preprocessBatch([noiseImage(4, 4), noiseImage(5, 4)], { resize: null, crop: null, normalize: 'caffe' })).toThrow(/set a crop size/);
  });
});
