// Flat arenas: many tensors as 256-byte-aligned views into a few large buffers, so one dispatch can update them all.
import { ShapeError } from './errors.js';
import { BufferUsage } from './flags.js';
import type { Runtime } from './runtime.js';
import { Storage, Tensor, numel, type DType, type Shape, BYTES_PER_ELEMENT } from '../tensor.js';

const ALIGN = 256; // minStorageBufferOffsetAlignment upper bound

/** Where one tensor lives: chunk index and element offset within that chunk's buffer. */
export interface ArenaSegment {
  chunk: number;
  /** First element of the tensor in the chunk (byte offset / element size). */
  offset: number;
  size: number;
}

export interface ArenaChunk {
  storage: Storage;
  buffer: GPUBuffer;
  /** Elements spanned by the chunk, padding included. */
  elements: number;
}

export class FlatArena {
  readonly tensors: Tensor[] = [];
  readonly segments: ArenaSegment[] = [];
  readonly chunks: ArenaChunk[] = [];

  /**
   * Lay out `shapes` in order, each view starting on a 256-byte boundary; a new chunk starts when
   * the current one would exceed the adapter's storage binding size (or `maxChunkBytes`).
   * Buffers start zero-filled.
   */
  constructor(
    readonly rt: Runtime,
    shapes: readonly Shape[],
    readonly dtype: DType = 'f32',
    maxChunkBytes?: number,
  ) {
    const el = BYTES_PER_ELEMENT[dtype];
    const limit = Math.min(maxChunkBytes ?? Infinity, rt.limits.maxStorageBufferBindingSize, rt.limits.maxBufferSize);
    const plan: { start: number; bytes: number }[][] = [[]];
    let used = 0;
    for (const shape of shapes) {
      const bytes = Math.max(4, numel(shape) * el);
      if (bytes > limit) throw new ShapeError(`arena: tensor [${shape.join(', ')}] (${bytes} B) exceeds the storage binding limit ${limit} B`);
      let start = Math.ceil(used / ALIGN) * ALIGN;
      if (start + bytes > limit) {
        plan.push([]);
        start = 0;
      }
      plan[plan.length - 1]!.push({ start, bytes });
      used = start + bytes;
    }
    let i = 0;
    plan.forEach((items, c) => {
      if (!items.length) return;
      const last = items[items.length - 1]!;
      const size = Math.ceil((last.start + last.bytes) / ALIGN) * ALIGN;
      const buffer = rt.device.createBuffer({ size, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST });
      const storage = new Storage(rt, buffer, false);
      this.chunks.push({ storage, buffer, elements: size / el });
      for (const it of items) {
        const shape = shapes[i++]!;
        this.tensors.push(Tensor.view(rt, storage, shape, dtype, it.start));
        this.segments.push({ chunk: c, offset: it.start / el, size: numel(shape) });
      }
    });
  }

  /** Free every buffer (views become unusable). */
  dispose(): void {
    for (const t of this.tensors) t.dispose();
    for (const c of this.chunks) {
      c.storage.release();
      c.buffer.destroy();
    }
    this.chunks.length = 0;
  }
}
