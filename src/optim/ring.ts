// Per-step host data for kernels (optimizer hyper-parameters) without a submit: each write gets a region no pending command reads.
import { BufferUsage } from '../runtime/flags.js';
import type { Runtime } from '../runtime/runtime.js';

const ALIGN = 256; // ≥ minStorageBufferOffsetAlignment on every adapter
const PER_BUFFER = 16;

/**
 * queue.writeBuffer lands before the next submitted command buffer, so rewriting one buffer each
 * step would clobber the values a step recorded earlier in the same batch still has to read. The
 * ring hands out a fresh region per write and recycles them all once a submit has carried every
 * command that read them (tracked through `rt.stats.submits`).
 */
export class UploadRing {
  private readonly buffers: GPUBuffer[] = [];
  private next = 0;
  private lastUse = -1;
  readonly regionBytes: number;

  constructor(
    readonly rt: Runtime,
    bytes: number,
  ) {
    this.regionBytes = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  /** Upload `data` (at most the region size) and return the binding of its region. */
  push(data: ArrayBuffer): GPUBufferBinding {
    if (data.byteLength > this.regionBytes) throw new RangeError(`UploadRing: ${data.byteLength} B exceeds the region size ${this.regionBytes} B`);
    if (this.rt.stats.submits !== this.lastUse) this.next = 0;
    const b = Math.floor(this.next / PER_BUFFER);
    if (b === this.buffers.length) {
      this.buffers.push(this.rt.device.createBuffer({ size: this.regionBytes * PER_BUFFER, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST }));
    }
    const buffer = this.buffers[b]!;
    const offset = (this.next % PER_BUFFER) * this.regionBytes;
    this.next++;
    this.rt.device.queue.writeBuffer(buffer, offset, data, 0, data.byteLength);
    this.lastUse = this.rt.stats.submits;
    return { buffer, offset, size: this.regionBytes };
  }

  /** Call after recording every dispatch that reads the last region (they may have auto-submitted). */
  markUsed(): void {
    this.lastUse = this.rt.stats.submits;
  }

  dispose(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }
}
