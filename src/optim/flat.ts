// Flat optimizer storage: parameters, their grads and optimizer state packed into FlatArenas with one layout, plus the block→param table the fused kernels use.
import { FlatArena } from '../runtime/arena.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { BufferUsage } from '../runtime/flags.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, keep } from '../tensor.js';
import { captureEpoch } from '../runtime/capture.js';

/**
 * Elements per lookup block. Arena views start on 256-byte boundaries, so for f32 no 64-element
 * block holds two tensors: each block maps to exactly one parameter (its tail is zero padding).
 */
export const BLOCK = 64;

/**
 * Parameters relocated into a FlatArena, a grad arena with the same layout (each `p.grad` is its
 * view), and `blockParam`: u32 per 64-element block of every chunk (chunk c's blocks start at
 * `blockBase[c]`) naming the parameter (flat index) the block belongs to.
 */
export class FlatParams {
  readonly data: FlatArena;
  readonly grads: FlatArena;
  readonly blockParam: GPUBuffer;
  readonly blockBase: number[] = [];
  private readonly views: Tensor[];

  constructor(
    readonly rt: Runtime,
    readonly params: readonly Tensor[],
    readonly maxChunkBytes?: number,
  ) {
    const shapes = params.map((p) => p.shape);
    this.data = new FlatArena(rt, shapes, 'f32', maxChunkBytes);
    this.grads = new FlatArena(rt, shapes, 'f32', maxChunkBytes);
    for (const t of this.data.tensors) keep(t);
    for (const t of this.grads.tensors) keep(t);
    this.views = [...this.grads.tensors];
    let blocks = 0;
    for (const c of this.data.chunks) {
      this.blockBase.push(blocks);
      blocks += c.elements / BLOCK;
    }
    this.blockParam = rt.device.createBuffer({
      size: Math.max(16, blocks * 4),
      usage: BufferUsage.STORAGE,
      mappedAtCreation: true,
    });
    const table = new Uint32Array(this.blockParam.getMappedRange());
    this.data.segments.forEach((s, i) => {
      if (s.offset % BLOCK !== 0) throw new GraftError(`optimizer arena: parameter ${i} starts at element ${s.offset}, not on a ${BLOCK}-element block`);
      const first = this.blockBase[s.chunk]! + s.offset / BLOCK;
      const count = Math.max(1, Math.ceil(s.size / BLOCK));
      table.fill(i, first, first + count);
    });
    this.blockParam.unmap();
    params.forEach((p, i) => {
      const old = p.grad;
      p.relocate(this.data.tensors[i]!);
      if (old && !old.disposed && old !== this.views[i]) {
        this.copyInto(this.views[i]!, old);
        old.dispose();
      }
      p.grad = this.views[i]!;
    });
  }

  get chunkCount(): number {
    return this.data.chunks.length;
  }

  /** A zero-filled arena with the parameters' layout (for momentum, m, v, ...). */
  newState(): FlatArena {
    const a = new FlatArena(this.rt, this.params.map((p) => p.shape), 'f32', this.maxChunkBytes);
    for (const t of a.tensors) keep(t);
    a.segments.forEach((s, i) => {
      const d = this.data.segments[i]!;
      if (s.chunk !== d.chunk || s.offset !== d.offset) throw new GraftError('optimizer arena: state layout differs from the parameter layout');
    });
    return a;
  }

  /** The arena view parameter `i` has as its grad. */
  gradView(i: number): Tensor {
    return this.views[i]!;
  }

  /**
   * Make every `p.grad` the arena view again after outside code replaced it: a replacement tensor
   * is copied in (and disposed), a missing grad (null or disposed) leaves the view zeroed. Returns
   * the flat indices whose grad was missing (PyTorch skips such parameters in a step). Throws if a
   * parameter no longer lives in the arena.
   */
  reconcile(): number[] {
    const missing: number[] = [];
    this.params.forEach((p, i) => {
      const home = this.data.tensors[i]!;
      if (p.disposed || p.buffer !== home.buffer || p.byteOffset !== home.byteOffset) {
        throw new GraftError(`optimizer: parameter ${i} ${p} was disposed or moved out of the optimizer's arena`);
      }
      let v = this.views[i]!;
      const g = p.grad;
      if (g === v && !v.disposed) return;
      if (v.disposed) {
        const s = this.grads.segments[i]!;
        v = keep(Tensor.view(this.rt, this.grads.chunks[s.chunk]!.storage, p.shape, 'f32', s.offset * 4));
        this.views[i] = v;
      }
      if (g && !g.disposed && g !== v) {
        if (g.size !== p.size) throw new ShapeError(`optimizer: parameter ${i} ${p} has a grad of shape [${g.shape.join(', ')}]`);
        this.copyInto(v, g);
        g.dispose();
      } else if (!g || g.disposed) {
        if (v.size) this.rt.commandEncoder().clearBuffer(v.buffer, v.byteOffset, (v.byteLength + 3) & ~3);
        missing.push(i);
      }
      p.grad = v;
    });
    return missing;
  }

  /** Record a copy of `src` into arena view `dst` (different buffers: src is not in this arena). */
  copyInto(dst: Tensor, src: Tensor): void {
    if (src.dtype !== 'f32' || src.size !== dst.size) {
      throw new ShapeError(`optimizer: cannot copy ${src.dtype}[${src.shape.join(', ')}] into f32[${dst.shape.join(', ')}]`);
    }
    dst.zeroed = false;
    if (!dst.size) return;
    const bytes = (dst.byteLength + 3) & ~3;
    const enc = this.rt.commandEncoder();
    if (src.buffer !== dst.buffer) {
      enc.copyBufferToBuffer(src.buffer, src.byteOffset, dst.buffer, dst.byteOffset, bytes);
      return;
    }
    if (src.byteOffset === dst.byteOffset) return;
    const tmp = Tensor.empty(this.rt, dst.shape);
    enc.copyBufferToBuffer(src.buffer, src.byteOffset, tmp.buffer, 0, bytes);
    enc.copyBufferToBuffer(tmp.buffer, 0, dst.buffer, dst.byteOffset, bytes);
    tmp.dispose();
  }

  /** Zero every grad chunk: one clearBuffer per chunk. */
  zeroGrads(): void {
    const enc = this.rt.commandEncoder();
    for (const c of this.grads.chunks) enc.clearBuffer(c.buffer);
    const epoch = captureEpoch();
    for (const v of this.views) v.zeroed = epoch;
  }

  /**
   * Move the parameters back to pooled buffers (they stay usable), drop their grads
   * (`p.grad = null`) and free the arenas.
   */
  dispose(): void {
    this.params.forEach((p, i) => {
      if (!p.disposed) {
        const out = Tensor.empty(this.rt, p.shape);
        p.relocate(out);
        out.dispose();
      }
      if (p.grad === this.views[i]) p.grad = null;
      this.views[i]!.dispose();
    });
    this.rt.submit(); // the relocation copies read the arena: submit before its buffers are destroyed
    this.data.dispose();
    this.grads.dispose();
    this.blockParam.destroy();
  }
}
