// Image transforms vs plain-loop references: bilinear resize (torch align_corners=False; PIL antialias), crops, flips, normalisation, batching, GPU upload.
import { describe, expect, it } from 'vitest';
import {
  DataLoader,
  Rng,
  centerCrop,
  crop,
  grayscaleToRgb,
  horizontalFlip,
  imageBatchTensors,
  imagePipeline,
  loadFashionMnist,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  resize,
  textBatchTensors,
  toBatch,
  type ImageExample,
} from '../src/data/index.js';
import { CAFFE, TORCHVISION, normalizeToChw, resizeImage, type RgbImage } from '../src/image/index.js';
import { GraftError, ShapeError } from '../src/runtime/errors.js';
import { expectClose } from './helpers/close.js';
import { useRuntime } from './helpers/gpu.js';
import { randArray } from './helpers/rand.js';

function example(c: number, h: number, w: number, seed: number, label = 3): ImageExample {
  return { image: randArray(c * h * w, seed, 0, 1), channels: c, height: h, width: w, label };
}

/** torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=False), plain loops, float64. */
function bilinearRef(ex: ImageExample, oh: number, ow: number): Float64Array {
  const { channels: C, height: H, width: W } = ex;
  const out = new Float64Array(C * oh * ow);
  const src = (o: number, inSize: number, outSize: number) => Math.max((o + 0.5) * (inSize / outSize) - 0.5, 0);
  for (let c = 0; c < C; c++)
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) {
        const sy = src(y, H, oh);
        const sx = src(x, W, ow);
        const y0 = Math.min(Math.floor(sy), H - 1);
        const x0 = Math.min(Math.floor(sx), W - 1);
        const y1 = Math.min(y0 + 1, H - 1);
        const x1 = Math.min(x0 + 1, W - 1);
        const ly = sy - y0;
        const lx = sx - x0;
        const p = (yy: number, xx: number) => ex.image[(c * H + yy) * W + xx]!;
        out[(c * oh + y) * ow + x] = (1 - ly) * ((1 - lx) * p(y0, x0) + lx * p(y0, x1)) + ly * ((1 - lx) * p(y1, x0) + lx * p(y1, x1));
      }
  return out;
}

/** [3, H, W] floats in 0..1 with byte values -> the same image as 8-bit RGB [H, W, 3]. */
function toRgb(ex: ImageExample): RgbImage {
  const hw = ex.height * ex.width;
  const data = new Uint8Array(3 * hw);
  for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) data[3 * p + c] = Math.round(ex.image[c * hw + p]! * 255);
  return { width: ex.width, height: ex.height, data };
}

function byteExample(h: number, w: number, seed: number): ImageExample {
  const ex = example(3, h, w, seed);
  ex.image = ex.image.map((v) => Math.round(v * 255) / 255);
  return ex;
}

describe('image transforms', () => {
  it('grayscaleToRgb repeats the channel; 3 channels pass through', () => {
    const g = example(1, 5, 4, 1);
    const rgb = grayscaleToRgb(g);
    expect([rgb.channels, rgb.height, rgb.width, rgb.label]).toEqual([3, 5, 4, 3]);
    for (let c = 0; c < 3; c++) expect(Array.from(rgb.image.subarray(c * 20, c * 20 + 20))).toEqual(Array.from(g.image));
    expect(grayscaleToRgb(rgb)).toBe(rgb);
    expect(() => grayscaleToRgb(example(2, 2, 2, 1))).toThrow(GraftError);
  });

  it('resize upsampling equals torch bilinear (align_corners=False) on awkward sizes, 28×28 → 64/112/224', () => {
    const cases: [number, number, number, number, number][] = [
      [1, 28, 28, 112, 112],
      [1, 28, 28, 64, 64],
      [3, 28, 28, 224, 224],
      [1, 1, 1, 3, 5],
      [3, 3, 17, 33, 255],
      [2, 17, 5, 18, 6],
    ];
    for (const [c, h, w, oh, ow] of cases) {
      const ex = example(c, h, w, h * 100 + w);
      const out = resize(ex, oh, ow);
      expect([out.channels, out.height, out.width]).toEqual([c, oh, ow]);
      expectClose(out.image, bilinearRef(ex, oh, ow), { atol: 1e-6, rtol: 1e-6 }, `${c}x${h}x${w} -> ${oh}x${ow}`);
    }
  });

  it('resize downsampling: without antialias = torch bilinear; with antialias ≈ PIL (src/image) within one grey level', () => {
    for (const [h, w, oh, ow] of [
      [37, 53, 16, 11],
      [64, 64, 28, 28],
      [33, 17, 7, 17],
      [255, 3, 100, 1],
    ] as const) {
      const ex = byteExample(h, w, h + w);
      expectClose(resize(ex, oh, ow, { antialias: false }).image, bilinearRef(ex, oh, ow), { atol: 1e-6, rtol: 1e-6 });
      const ours = resize(ex, oh, ow);
      const pil = resizeImage(toRgb(ex), ow, oh, 'bilinear');
      const pilChw = new Float64Array(3 * oh * ow);
      for (let p = 0; p < oh * ow; p++) for (let c = 0; c < 3; c++) pilChw[c * oh * ow + p] = pil.data[3 * p + c]! / 255;
      expectClose(ours.image, pilChw, { atol: 1.01 / 255, rtol: 0 }, `${h}x${w} -> ${oh}x${ow}`);
    }
    // A constant image stays constant under any resize.
    const flat: ImageExample = { image: new Float32Array(3 * 40 * 30).fill(0.25), channels: 3, height: 40, width: 30, label: 0 };
    for (const v of resize(flat, 9, 13).image) expect(v).toBeCloseTo(0.25, 6);
  });

  it('crop / centerCrop / flips index the source exactly', () => {
    const ex = example(2, 7, 9, 5);
    const at = (e: ImageExample, c: number, y: number, x: number) => e.image[(c * e.height + y) * e.width + x]!;
    const cc = centerCrop(ex, 4, 5);
    // torchvision: top = round(1.5) = 2, left = round(2) = 2.
    for (let c = 0; c < 2; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) expect(at(cc, c, y, x)).toBe(at(ex, c, y + 2, x + 2));
    const pad = crop(ex, -2, -1, 11, 11, 0.5);
    for (let c = 0; c < 2; c++)
      for (let y = 0; y < 11; y++)
        for (let x = 0; x < 11; x++) {
          const sy = y - 2;
          const sx = x - 1;
          expect(at(pad, c, y, x)).toBe(sy >= 0 && sy < 7 && sx >= 0 && sx < 9 ? at(ex, c, sy, sx) : 0.5);
        }
    const f = horizontalFlip(ex);
    for (let c = 0; c < 2; c++) for (let y = 0; y < 7; y++) for (let x = 0; x < 9; x++) expect(at(f, c, y, x)).toBe(at(ex, c, y, 8 - x));
    expect(() => centerCrop(ex, 8, 5)).toThrow(GraftError);
  });

  it('randomCrop with padding: every offset reachable, window content = padded source, seeded', () => {
    const ex = example(1, 6, 6, 9);
    const at = (e: ImageExample, y: number, x: number) => e.image[y * e.width + x]!;
    const offsets = new Set<string>();
    for (let s = 0; s < 400; s++) {
      const out = randomCrop(ex, new Rng(s), { size: 6, padding: 2 });
      // torchvision's draws: top then left, each uniform over the 10 - 6 + 1 positions of the padded image.
      const r = new Rng(s);
      const top = r.int(10 - 6 + 1) - 2;
      const left = r.int(10 - 6 + 1) - 2;
      offsets.add(`${top},${left}`);
      for (let y = 0; y < 6; y++)
        for (let x = 0; x < 6; x++) {
          const sy = y + top;
          const sx = x + left;
          expect(at(out, y, x)).toBe(sy >= 0 && sy < 6 && sx >= 0 && sx < 6 ? at(ex, sy, sx) : 0);
        }
      expect(Array.from(randomCrop(ex, new Rng(s), { size: 6, padding: 2 }).image)).toEqual(Array.from(out.image));
    }
    expect(offsets.size).toBe(25);
    expect(() => randomCrop(ex, new Rng(1), { size: 11, padding: 2 })).toThrow(/larger than the padded image 10×10/);
  });

  it('randomHorizontalFlip flips about p of the time, deterministically per seed', () => {
    const ex = example(1, 2, 3, 4);
    let flips = 0;
    for (let s = 0; s < 2000; s++) {
      const out = randomHorizontalFlip(ex, new Rng(s), 0.3);
      if (out !== ex) flips++;
      expect(randomHorizontalFlip(ex, new Rng(s), 0.3) !== ex).toBe(out !== ex);
    }
    expect(Math.abs(flips / 2000 - 0.3)).toBeLessThan(4 * Math.sqrt((0.3 * 0.7) / 2000));
  });

  it('normalize presets equal src/image normalizeToChw (torchvision mean/std; Keras caffe BGR minus means)', () => {
    const ex = byteExample(5, 7, 42);
    const rgb = toRgb(ex);
    for (const [name, preset] of [
      ['torchvision', TORCHVISION],
      ['caffe', CAFFE],
    ] as const) {
      expectClose(normalize(ex, name).image, normalizeToChw(rgb, preset), { atol: 1e-4, rtol: 1e-6 }, name);
    }
    // Caffe by hand for one pixel: channel 0 is blue minus 103.939.
    expect(normalize(ex, 'caffe').image[0]).toBeCloseTo(rgb.data[2]! - 103.939, 3);
    expect(() => normalize(example(1, 2, 2, 1), 'torchvision')).toThrow(/grayscaleToRgb/);
  });

  it('toBatch stacks NCHW with int32 labels; mismatched sizes are a ShapeError', () => {
    const exs = [example(3, 4, 5, 1, 7), example(3, 4, 5, 2, 0)];
    const b = toBatch(exs);
    expect(b.shape).toEqual([2, 3, 4, 5]);
    expect(Array.from(b.y)).toEqual([7, 0]);
    expect(Array.from(b.x.subarray(60))).toEqual(Array.from(exs[1]!.image));
    expect(() => toBatch([exs[0]!, example(3, 5, 4, 3)])).toThrow(ShapeError);
    expect(() => toBatch([])).toThrow(ShapeError);
  });
});

describe('image pipeline through the DataLoader (real Fashion-MNIST)', () => {
  it('28×28 gray → 3×64×64 normalised batches; augmentation fixed by (seed, epoch, example) and resumable', async () => {
    const ds = await loadFashionMnist({ split: 'train', limit: 64 });
    const transform = imagePipeline({ rgb: true, resize: 72, randomCrop: { size: 64, padding: 4 }, flip: true, normalize: 'torchvision' });
    const opts = { batchSize: 16, shuffle: true, seed: 9, transform, collate: toBatch };
    const a = new DataLoader(ds, opts);
    const e0 = [...a];
    const e1 = [...a];
    expect(e0[0]!.shape).toEqual([16, 3, 64, 64]);
    const x = e0[0]!.x;
    // torchvision-normalised 0..1 pixels lie in [-0.485/0.229, (1-0.406)/0.225].
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    expect(lo).toBeGreaterThanOrEqual(-0.485 / 0.229 - 1e-4);
    expect(hi).toBeLessThanOrEqual((1 - 0.406) / 0.225 + 1e-4);
    const b = new DataLoader(ds, opts);
    b.setState({ epoch: 0, index: 32, seed: 9 });
    expect(Array.from(b.next().x)).toEqual(Array.from(e0[2]!.x));
    // Same example in another epoch gets different augmentation (almost surely).
    const i0 = a.order(0)[0]!;
    const pos1 = a.order(1).indexOf(i0);
    const inE1 = e1[Math.floor(pos1 / 16)]!.x.subarray((pos1 % 16) * 3 * 64 * 64, (pos1 % 16 + 1) * 3 * 64 * 64);
    expect(Array.from(inE1)).not.toEqual(Array.from(e0[0]!.x.subarray(0, 3 * 64 * 64)));
    // Evaluation pipeline (center crop, no randomness) is the same in every epoch.
    const evalT = imagePipeline({ rgb: true, resize: 72, centerCrop: 64, normalize: 'caffe' });
    const ev = new DataLoader(ds, { batchSize: 64, transform: evalT, collate: toBatch });
    expect(Array.from(ev.next().x)).toEqual(Array.from(ev.next().x));
    expect(() => imagePipeline({ randomCrop: { size: 2 }, centerCrop: 2 })).toThrow(GraftError);
  });
});

describe('GPU upload', () => {
  const rt = useRuntime();
  it('image and text batches become f32 / i32 tensors with the right shapes and contents', async () => {
    const b = toBatch([example(3, 4, 5, 1, 7), example(3, 4, 5, 2, 1)]);
    const t = imageBatchTensors(rt(), b);
    expect(t.x.shape).toEqual([2, 3, 4, 5]);
    expect(t.y.dtype).toBe('i32');
    expect(Array.from(await t.x.read())).toEqual(Array.from(b.x));
    expect(Array.from(await t.y.readInt())).toEqual([7, 1]);
    const text = { inputIds: Int32Array.from([101, 7, 102, 0]), attentionMask: Float32Array.from([1, 1, 1, 0]), tokenTypeIds: new Int32Array(4), labels: Int32Array.from([1, 0]), shape: [2, 2] as [number, number] };
    const tt = textBatchTensors(rt(), text);
    expect(tt.inputIds.shape).toEqual([2, 2]);
    expect(tt.labels.shape).toEqual([2]);
    expect(Array.from(await tt.inputIds.readInt())).toEqual([101, 7, 102, 0]);
    expect(Array.from(await tt.labels.readInt())).toEqual([1, 0]);
    expect(Array.from(await tt.attentionMask.read())).toEqual([1, 1, 1, 0]);
    for (const x of [t.x, t.y, tt.inputIds, tt.attentionMask, tt.tokenTypeIds, tt.labels]) x.dispose();
  });
});
