// Fashion-MNIST from the real IDX gzip files on this machine (checked against raw bytes) and the IDX parser's validation errors.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  FASHION_MNIST_CLASSES,
  loadFashionMnist,
  loadIdxImagePair,
  parseIdx,
  readIdx,
} from '../src/data/index.js';
import { GraftError } from '../src/runtime/errors.js';

const FMNIST = '/usr/share/datasets/fashion-mnist';
const tmp = mkdtempSync(join(tmpdir(), 'graft-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Raw IDX bytes of a Fashion-MNIST file, decompressed here independently of the loader. */
const raw = (f: string) => new Uint8Array(gunzipSync(readFileSync(join(FMNIST, f))));

function expectGraftError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GraftError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of parts) expect(msg).toMatch(p);
}

async function expectRejects(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GraftError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of parts) expect(msg).toMatch(p);
}

/** Big-endian IDX bytes for tests: type code, dims, payload bytes. */
function idxBytes(type: number, dims: number[], payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(4 + 4 * dims.length);
  h[2] = type;
  h[3] = dims.length;
  const v = new DataView(h.buffer);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(h.length + payload.length);
  out.set(h);
  out.set(payload, h.length);
  return out;
}

describe('Fashion-MNIST', () => {
  it('train: 60,000 × [1, 28, 28] in [0, 1], 6,000 per class, labels and pixels equal the raw IDX bytes', async () => {
    const ds = await loadFashionMnist({ split: 'train' });
    expect(ds.length).toBe(60000);
    expect(ds.classes).toEqual(FASHION_MNIST_CLASSES);
    const labBytes = raw('train-labels-idx1-ubyte.gz');
    const imgBytes = raw('train-images-idx3-ubyte.gz');
    // Independent header read: magic 0x801 / 0x803, counts 60000, 28×28.
    const lv = new DataView(labBytes.buffer);
    const iv = new DataView(imgBytes.buffer);
    expect([lv.getUint32(0), lv.getUint32(4)]).toEqual([0x801, 60000]);
    expect([iv.getUint32(0), iv.getUint32(4), iv.getUint32(8), iv.getUint32(12)]).toEqual([0x803, 60000, 28, 28]);
    expect(ds.labelOf(0)).toBe(labBytes[8]);
    expect(FASHION_MNIST_CLASSES[ds.labelOf(0)]).toBe('Ankle boot');
    const counts = new Array<number>(10).fill(0);
    let mismatches = 0;
    for (let i = 0; i < ds.length; i++) {
      if (ds.labelOf(i) !== labBytes[8 + i]) mismatches++;
      counts[ds.labelOf(i)]!++;
    }
    expect(mismatches).toBe(0);
    expect(counts).toEqual(new Array(10).fill(6000));
    for (const i of [0, 1, 12345, 59999]) {
      const ex = ds.get(i);
      expect([ex.channels, ex.height, ex.width, ex.label]).toEqual([1, 28, 28, labBytes[8 + i]]);
      const expected = Array.from(imgBytes.subarray(16 + i * 784, 16 + (i + 1) * 784), (b) => Math.fround(b / 255));
      expect(Array.from(ex.image)).toEqual(expected);
    }
    // Every pixel byte equals the file's payload; bytes span 0..255 (so floats span 0..1).
    expect(Buffer.compare(ds.pixels, imgBytes.subarray(16))).toBe(0);
    let lo = 255;
    let hi = 0;
    for (let k = 0; k < ds.pixels.length; k++) {
      const b = ds.pixels[k]!;
      if (b < lo) lo = b;
      if (b > hi) hi = b;
    }
    expect([lo, hi]).toEqual([0, 255]);
    const ex = ds.get(7);
    expect(Math.min(...ex.image)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...ex.image)).toBeLessThanOrEqual(1);
  });

  it('test: 10,000, 1,000 per class; limit reads a prefix identical to the full load', async () => {
    const full = await loadFashionMnist({ split: 'test' });
    expect(full.length).toBe(10000);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < full.length; i++) counts[full.labelOf(i)]!++;
    expect(counts).toEqual(new Array(10).fill(1000));
    const labBytes = raw('t10k-labels-idx1-ubyte.gz');
    expect(full.labelOf(0)).toBe(labBytes[8]);
    const part = await loadFashionMnist({ split: 'test', limit: 300 });
    expect(part.length).toBe(300);
    expect(Array.from(part.labels)).toEqual(Array.from(full.labels.subarray(0, 300)));
    expect(Array.from(part.pixels)).toEqual(Array.from(full.pixels.subarray(0, 300 * 784)));
    expect((await loadFashionMnist({ split: 'train', limit: 0 })).length).toBe(0);
  });

  it('rejects a bad split and a folder without the files', async () => {
    await expectRejects(loadFashionMnist({ split: 'val' as 'train' }), "'val'");
    await expectRejects(loadFashionMnist({ dir: join(tmp, 'nowhere'), split: 'train' }), join(tmp, 'nowhere'), /no such file/);
  });
});

describe('IDX parser', () => {
  it('decodes big-endian u8 / i16 / i32 / f32 / f64 payloads and the dims', () => {
    const u8 = parseIdx(idxBytes(0x08, [2, 3], Uint8Array.from([1, 2, 3, 250, 251, 252])));
    expect(u8.dtype).toBe('u8');
    expect(u8.dims).toEqual([2, 3]);
    expect(Array.from(u8.data)).toEqual([1, 2, 3, 250, 251, 252]);
    const vals = [-2, 300, -32768];
    const p16 = new Uint8Array(6);
    vals.forEach((x, i) => new DataView(p16.buffer).setInt16(2 * i, x, false));
    expect(Array.from(parseIdx(idxBytes(0x0b, [3], p16)).data)).toEqual(vals);
    const p32 = new Uint8Array(8);
    new DataView(p32.buffer).setInt32(0, -70000, false);
    new DataView(p32.buffer).setInt32(4, 123456789, false);
    expect(Array.from(parseIdx(idxBytes(0x0c, [2, 1], p32)).data)).toEqual([-70000, 123456789]);
    const pf = new Uint8Array(8);
    new DataView(pf.buffer).setFloat32(0, 1.5, false);
    new DataView(pf.buffer).setFloat32(4, -0.25, false);
    expect(Array.from(parseIdx(idxBytes(0x0d, [2], pf)).data)).toEqual([1.5, -0.25]);
    const pd = new Uint8Array(8);
    new DataView(pd.buffer).setFloat64(0, Math.PI, false);
    expect(Array.from(parseIdx(idxBytes(0x0e, [1], pd)).data)).toEqual([Math.PI]);
    const i8 = parseIdx(idxBytes(0x09, [2], Uint8Array.from([255, 1])));
    expect(Array.from(i8.data)).toEqual([-1, 1]);
    // limit reads a prefix and may ignore what follows.
    const lim = parseIdx(idxBytes(0x08, [3, 2], Uint8Array.from([1, 2, 3, 4, 5, 6])), 'x', 2);
    expect(lim.dims).toEqual([2, 2]);
    expect(Array.from(lim.data)).toEqual([1, 2, 3, 4]);
  });

  it('validation errors name the source: magic, type, header, truncation, trailing bytes', () => {
    expectGraftError(() => parseIdx(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), 'a.idx'), 'a.idx', /not an IDX file/);
    expectGraftError(() => parseIdx(Uint8Array.from([0, 0, 7, 1, 0, 0, 0, 0]), 'b.idx'), 'b.idx', /unknown IDX data type 07/);
    expectGraftError(() => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0]), 'c.idx'), 'c.idx', /truncated IDX header/);
    expectGraftError(() => parseIdx(Uint8Array.from([0, 0, 8, 0]), 'd.idx'), 'd.idx', /0 dimensions/);
    expectGraftError(() => parseIdx(idxBytes(0x08, [4, 2], new Uint8Array(7)), 'e.idx'), 'e.idx', /truncated IDX file/, /needs 20 bytes, found 19/);
    expectGraftError(() => parseIdx(idxBytes(0x0c, [2], new Uint8Array(9)), 'f.idx'), 'f.idx', /1 unexpected bytes/);
    expectGraftError(() => parseIdx(idxBytes(0x08, [4, 2], new Uint8Array(3)), 'g.idx', 2), 'g.idx', /for 2 items/);
  });

  it('readIdx: gzip or raw; a truncated real file or a cut gzip stream is a clear error naming the file', async () => {
    const labels = raw('train-labels-idx1-ubyte.gz');
    const rawPath = join(tmp, 'labels-raw-idx1-ubyte');
    writeFileSync(rawPath, labels);
    const a = await readIdx(rawPath);
    expect(a.dims).toEqual([60000]);
    expect(a.data[0]).toBe(labels[8]);
    // IDX payload cut short, then gzipped (a valid gzip of a truncated file).
    const cut = join(tmp, 'train-images-truncated.gz');
    writeFileSync(cut, gzipSync(raw('t10k-images-idx3-ubyte.gz').subarray(0, 16 + 784 * 100 + 5)));
    await expectRejects(readIdx(cut), cut, /truncated IDX file/, /\[10000, 28, 28\]/);
    // ... still fine for a prefix that is present.
    expect((await readIdx(cut, { limit: 100 })).dims).toEqual([100, 28, 28]);
    await expectRejects(readIdx(cut, { limit: 101 }), cut, /truncated/);
    // The gzip stream itself cut in the middle.
    const gz = readFileSync(join(FMNIST, 't10k-labels-idx1-ubyte.gz'));
    const cutGz = join(tmp, 'labels-cut.gz');
    writeFileSync(cutGz, gz.subarray(0, gz.length >> 1));
    await expectRejects(readIdx(cutGz), cutGz, /gzip/);
    await expectRejects(readIdx(join(tmp, 'missing.gz')), 'missing.gz', /no such file/);
    const notIdx = join(tmp, 'not-idx');
    writeFileSync(notIdx, 'hello world, not an idx file');
    await expectRejects(readIdx(notIdx, { limit: 3 }), notIdx, /not an IDX file/);
  });

  it('an image/label pair with different counts is rejected naming both files', async () => {
    const dir = join(tmp, 'pair');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idxBytes(0x08, [3, 2, 2], new Uint8Array(12))));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxBytes(0x08, [2], Uint8Array.from([0, 1]))));
    await expectRejects(loadIdxImagePair(dir, 'train', ['a', 'b']), 'has 3 images', /has 2 labels/);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxBytes(0x08, [3], Uint8Array.from([0, 1, 5]))));
    await expectRejects(loadIdxImagePair(dir, 'train', ['a', 'b']), /label 5 at item 2/);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxBytes(0x08, [3], Uint8Array.from([0, 1, 1]))));
    const ok = await loadIdxImagePair(dir, 'train', ['a', 'b']);
    expect([ok.length, ok.height, ok.width]).toEqual([3, 2, 2]);
  });
});
