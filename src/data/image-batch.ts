// Collate image examples into one NCHW float batch with int32 labels (ready for Tensor.from).
import { ShapeError } from '../runtime/errors.js';
import type { ImageExample } from './dataset.js';

export interface LabelledImageBatch {
  /** [N, C, H, W] */
  x: Float32Array;
  /** [N] class ids */
  y: Int32Array;
  shape: [number, number, number, number];
}

/** Stack same-sized examples; throws ShapeError naming the first example that differs. */
export function toBatch(examples: readonly ImageExample[]): LabelledImageBatch {
  const first = examples[0];
  if (!first) throw new ShapeError('toBatch: empty batch');
  const { channels: C, height: H, width: W } = first;
  const per = C * H * W;
  const x = new Float32Array(examples.length * per);
  const y = new Int32Array(examples.length);
  examples.forEach((ex, i) => {
    if (ex.channels !== C || ex.height !== H || ex.width !== W || ex.image.length !== per) {
      throw new ShapeError(`toBatch: example ${i} is [${ex.channels}, ${ex.height}, ${ex.width}] but example 0 is [${C}, ${H}, ${W}]`);
    }
    x.set(ex.image, i * per);
    y[i] = ex.label;
  });
  return { x, y, shape: [examples.length, C, H, W] };
}
