// Fashion-MNIST from its IDX gzip files (Debian package dataset-fashion-mnist): 60,000 train / 10,000 test, 28×28 gray.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import { ByteImageDataset } from './byte-images.js';
import { readIdx } from './idx.js';

/** torchvision's FashionMNIST.classes, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface IdxImageOptions {
  /** Folder holding the four files (default /usr/share/datasets/fashion-mnist). */
  dir?: string;
  split: 'train' | 'test';
  /** Read only the first `limit` examples (decompression stops early). */
  limit?: number;
}

/**
 * An MNIST-layout image/label pair of IDX files ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]) as a
 * dataset of [1, H, W] images; checks dtypes, ranks and that both files agree on the count.
 */
export async function loadIdxImagePair(dir: string, split: 'train' | 'test', classes: readonly string[], limit?: number): Promise<ByteImageDataset> {
  if (split !== 'train' && split !== 'test') throw new GraftError(`split must be 'train' or 'test', got '${String(split)}'`);
  const stem = split === 'train' ? 'train' : 't10k';
  const imgPath = idxPath(dir, `${stem}-images-idx3-ubyte`);
  const labPath = idxPath(dir, `${stem}-labels-idx1-ubyte`);
  const [img, lab] = await Promise.all([readIdx(imgPath, { limit }), readIdx(labPath, { limit })]);
  if (!(img.data instanceof Uint8Array) || img.dims.length !== 3) throw new GraftError(`${imgPath}: expected u8 images [N, H, W], got ${img.dtype} [${img.dims.join(', ')}]`);
  if (lab.dtype !== 'u8' || lab.dims.length !== 1) throw new GraftError(`${labPath}: expected u8 labels [N], got ${lab.dtype} [${lab.dims.join(', ')}]`);
  if (img.dims[0] !== lab.dims[0]) throw new GraftError(`${imgPath} has ${img.dims[0]} images but ${labPath} has ${lab.dims[0]} labels`);
  const labels = Int32Array.from(lab.data);
  const bad = labels.findIndex((l) => l >= classes.length);
  if (bad >= 0) throw new GraftError(`${labPath}: label ${labels[bad]} at item ${bad} is not a class id in [0, ${classes.length})`);
  return new ByteImageDataset(img.data, labels, 1, img.dims[1]!, img.dims[2]!, classes);
}

/** `<dir>/<stem>.gz`, or `<dir>/<stem>` when only the uncompressed file is there. */
function idxPath(dir: string, stem: string): string {
  const gz = join(dir, `${stem}.gz`);
  const raw = join(dir, stem);
  return !existsSync(gz) && existsSync(raw) ? raw : gz;
}

/** Fashion-MNIST: images [1, 28, 28] in 0..1, labels 0..9 named by FASHION_MNIST_CLASSES. */
export function loadFashionMnist(opts: IdxImageOptions): Promise<ByteImageDataset> {
  return loadIdxImagePair(opts.dir ?? FASHION_MNIST_DIR, opts.split, FASHION_MNIST_CLASSES, opts.limit);
}
