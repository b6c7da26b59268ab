// Upload host batches to GPU tensors: images f32 [N, C, H, W] + i32 labels; text ids/masks [B, T].
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import type { LabelledImageBatch } from './image-batch.js';
import type { MlmBatch } from './mlm.js';
import type { TextBatch } from './text-batch.js';

/** x: f32 [N, C, H, W], y: i32 [N]. */
export function imageBatchTensors(rt: Runtime, b: LabelledImageBatch): { x: Tensor; y: Tensor } {
  return { x: Tensor.from(rt, b.x, b.shape), y: Tensor.from(rt, b.y, [b.shape[0]], 'i32') };
}

/** inputIds, tokenTypeIds: i32 [B, T]; attentionMask: f32 [B, T]; labels: i32 [B] (classification) or [B, T] (MLM). */
export function textBatchTensors(rt: Runtime, b: TextBatch | MlmBatch): { inputIds: Tensor; attentionMask: Tensor; tokenTypeIds: Tensor; labels: Tensor } {
  const [B, T] = b.shape;
  return {
    inputIds: Tensor.from(rt, b.inputIds, [B, T], 'i32'),
    attentionMask: Tensor.from(rt, b.attentionMask, [B, T]),
    tokenTypeIds: Tensor.from(rt, b.tokenTypeIds, [B, T], 'i32'),
    labels: Tensor.from(rt, b.labels, b.labels.length === B ? [B] : [B, T], 'i32'),
  };
}
