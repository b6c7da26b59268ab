// An in-memory labelled image dataset stored as uint8 pixels [N, C, H, W]; get(i) yields 0..1 floats.
import { GraftError } from '../runtime/errors.js';
import { checkIndex, type ImageExample, type LabelledDataset } from './dataset.js';

export class ByteImageDataset implements LabelledDataset<ImageExample> {
  readonly length: number;

  /**
   * @param pixels [N, channels, height, width] uint8
   * @param labels [N] class ids in 0..classes.length-1
   */
  constructor(
    readonly pixels: Uint8Array,
    readonly labels: Int32Array,
    readonly channels: number,
    readonly height: number,
    readonly width: number,
    readonly classes: readonly string[],
  ) {
    this.length = labels.length;
    const per = channels * height * width;
    if (pixels.length !== this.length * per) {
      throw new GraftError(`ByteImageDataset: ${pixels.length} pixels for ${this.length} images of ${channels}×${height}×${width}`);
    }
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (l < 0 || l >= classes.length) throw new GraftError(`ByteImageDataset: label ${l} of image ${i} is not a class id in [0, ${classes.length})`);
    }
  }

  labelOf(i: number): number {
    checkIndex(i, this.length);
    return this.labels[i]!;
  }

  /** The raw bytes of image i, [C, H, W] (a view, not a copy). */
  bytes(i: number): Uint8Array {
    checkIndex(i, this.length);
    const per = this.channels * this.height * this.width;
    return this.pixels.subarray(i * per, (i + 1) * per);
  }

  get(i: number): ImageExample {
    const b = this.bytes(i);
    const image = new Float32Array(b.length);
    for (let k = 0; k < b.length; k++) image[k] = b[k]! / 255;
    return { image, channels: this.channels, height: this.height, width: this.width, label: this.labels[i]! };
  }
}
