// Image-folder datasets (torchvision ImageFolder layout): root/<class>/<image>.png|jpg, classes sorted by name.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import { decodeImage } from '../image/decode.js';
import { checkIndex, type ImageExample, type LabelledDataset } from './dataset.js';

export interface ImageFolderOptions {
  /** File extensions to accept, case-insensitive (default .png .jpg .jpeg). */
  extensions?: readonly string[];
}

/** Lists the files up front; get(i) reads and decodes image i (RGB, [3, H, W] in 0..1) each time. */
export class ImageFolderDataset implements LabelledDataset<ImageExample> {
  constructor(
    readonly root: string,
    readonly classes: readonly string[],
    /** Paths, grouped by class in class order, sorted by file name within a class. */
    readonly files: readonly string[],
    readonly labels: Int32Array,
  ) {}

  get length(): number {
    return this.files.length;
  }

  labelOf(i: number): number {
    checkIndex(i, this.files.length, this.root);
    return this.labels[i]!;
  }

  get(i: number): ImageExample {
    checkIndex(i, this.files.length, this.root);
    const path = this.files[i]!;
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new GraftError(`${path}: cannot read image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const rgb = decodeImage(bytes, path);
    const hw = rgb.width * rgb.height;
    const image = new Float32Array(3 * hw);
    for (let p = 0; p < hw; p++) {
      image[p] = rgb.data[3 * p]! / 255;
      image[hw + p] = rgb.data[3 * p + 1]! / 255;
      image[2 * hw + p] = rgb.data[3 * p + 2]! / 255;
    }
    return { image, channels: 3, height: rgb.height, width: rgb.width, label: this.labels[i]! };
  }
}

/** Code-unit order (Python's sorted(), as torchvision uses), independent of locale. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Scan `root`: every non-hidden subfolder is a class (sorted by name → ids 0..), every file with an accepted
 * extension inside it (not recursive) an example. A class folder without images is an error, as in torchvision.
 */
export function loadImageFolder(root: string, opts: ImageFolderOptions = {}): ImageFolderDataset {
  const exts = new Set((opts.extensions ?? ['.png', '.jpg', '.jpeg']).map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase()));
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new GraftError(`${root}: cannot read image folder (${code === 'ENOENT' ? 'no such directory' : code ?? (e as Error).message})`);
  }
  const isDir = (name: string): boolean => {
    try {
      return statSync(join(root, name)).isDirectory();
    } catch {
      return false;
    }
  };
  const classes = entries
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && isDir(e.name))))
    .map((e) => e.name)
    .sort(byName);
  if (!classes.length) throw new GraftError(`${root}: no class subfolders (expected ${root}/<class>/<image>)`);
  const files: string[] = [];
  const labels: number[] = [];
  classes.forEach((c, label) => {
    const dir = join(root, c);
    const names = readdirSync(dir)
      .filter((n) => !n.startsWith('.') && exts.has(extname(n).toLowerCase()))
      .sort(byName);
    if (!names.length) throw new GraftError(`${dir}: class folder has no images (${[...exts].join(' ')})`);
    for (const n of names) {
      files.push(join(dir, n));
      labels.push(label);
    }
  });
  return new ImageFolderDataset(root, classes, files, Int32Array.from(labels));
}
