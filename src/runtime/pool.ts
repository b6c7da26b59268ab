// Size-classed GPU buffer pool: steady-state loops reuse buffers instead of creating new ones.

import { BufferUsage } from './flags.js';
/** Usage every pooled storage buffer has, so any buffer can serve any tensor. */
export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** Round a byte count up to its size class: 256 B minimum, then 4 steps per power of two (≤ 25% waste). */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  if (p === bytes) return p;
  const step = p / 4;
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Buffers ever created by the pool. */
  created: number;
  /** Buffers currently handed out. */
  live: number;
  /** Bytes currently handed out (size-class bytes). */
  liveBytes: number;
  /** Highest liveBytes seen since the last resetPeak(). */
  peakBytes: number;
  /** Bytes held by the pool in total (handed out + free). */
  heldBytes: number;
  /** Buffers reserved by live step captures (src/runtime/capture.ts), handed out or not. */
  pinned: number;
  /** Size-class bytes of those buffers. */
  pinnedBytes: number;
}

/**
 * Buffers released during the current batch go to `recycled`: kernels may reuse them at once
 * (commands run in order), but queue.writeBuffer may not (it would run before the pending
 * commands that still read them), so uploads take only from `clean`, which recycled joins at flush.
 */
export class BufferPool {
  private clean = new Map<number, GPUBuffer[]>();
  private recycled = new Map<number, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  /** Pinned by a capture: true while handed out, false once released (then only the capture uses it). */
  private pinned = new Map<GPUBuffer, boolean>();
  /** While a capture records: upload targets acquired, and those released (kept out of the free lists). */
  private recording: { uploads: Set<GPUBuffer>; held: GPUBuffer[] } | null = null;
  readonly stats: PoolStats = { created: 0, live: 0, liveBytes: 0, peakBytes: 0, heldBytes: 0, pinned: 0, pinnedBytes: 0 };

  constructor(private device: GPUDevice) {}

  /** Take a buffer of at least `bytes`. `forUpload` buffers are safe targets for queue.writeBuffer. */
  acquire(bytes: number, forUpload = false): GPUBuffer {
    const size = sizeClass(bytes);
    let buf = forUpload ? undefined : this.recycled.get(size)?.pop();
    buf ??= this.clean.get(size)?.pop();
    if (!buf) {
      buf = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      this.sizes.set(buf, size);
      this.stats.created++;
      this.stats.heldBytes += size;
    }
    this.stats.live++;
    this.stats.liveBytes += size;
    if (this.stats.liveBytes > this.stats.peakBytes) this.stats.peakBytes = this.stats.liveBytes;
    if (forUpload && this.recording) this.recording.uploads.add(buf);
    return buf;
  }

  /** Give a buffer back; it becomes reusable by kernels now and by uploads after the next flush. */
  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf);
    if (size === undefined) throw new Error('BufferPool.release: buffer does not belong to this pool');
    this.stats.live--;
    this.stats.liveBytes -= size;
    if (this.pinned.size !== 0 && this.pinned.has(buf)) {
      this.pinned.set(buf, false);
      return;
    }
    if (this.recording?.uploads.has(buf)) {
      this.recording.held.push(buf); // host data a capture uploaded: no later kernel of the step may overwrite it
      return;
    }
    let list = this.recycled.get(size);
    if (!list) this.recycled.set(size, (list = []));
    list.push(buf);
  }

  /** Called after a submit: recycled buffers become safe for uploads too. */
  onFlush(): void {
    for (const [size, list] of this.recycled) {
      let dst = this.clean.get(size);
      if (!dst) this.clean.set(size, (dst = []));
      dst.push(...list);
    }
    this.recycled.clear();
  }

  /**
   * A capture starts recording (src/runtime/capture.ts): buffers acquired as upload targets and
   * released before endCapture are not reused, so the host data written into them stays valid
   * for every replay.
   */
  beginCapture(): void {
    if (this.recording) throw new Error('BufferPool.beginCapture: a capture is already recording');
    this.recording = { uploads: new Set(), held: [] };
  }

  /**
   * End the recording and pin every pool buffer among `used` (the buffers the captured commands
   * bind): free ones leave the free lists, handed-out ones stay out of them once released, until
   * unpin(). Returns the pinned buffers.
   */
  endCapture(used: Iterable<GPUBuffer>): GPUBuffer[] {
    const rec = this.recording;
    this.recording = null;
    const out: GPUBuffer[] = [];
    const held = new Set(rec?.held ?? []);
    for (const buf of used) {
      const size = this.sizes.get(buf);
      if (size === undefined || this.pinned.has(buf)) continue;
      let free = held.delete(buf);
      for (const m of [this.recycled, this.clean]) {
        const list = m.get(size);
        const at = list ? list.indexOf(buf) : -1;
        if (list && at >= 0) {
          list.splice(at, 1);
          free = true;
        }
      }
      this.pinned.set(buf, !free);
      this.stats.pinnedBytes += size;
      out.push(buf);
    }
    for (const buf of held) this.toRecycled(buf);
    this.stats.pinned = this.pinned.size;
    return out;
  }

  /** Give pinned buffers back: released ones return to the free lists, handed-out ones are released normally later. */
  unpin(bufs: Iterable<GPUBuffer>): void {
    for (const buf of bufs) {
      const live = this.pinned.get(buf);
      if (live === undefined) continue;
      this.pinned.delete(buf);
      this.stats.pinnedBytes -= this.sizes.get(buf) ?? 0;
      if (!live) this.toRecycled(buf);
    }
    this.stats.pinned = this.pinned.size;
  }

  /** Whether `buf` is pinned by a capture. */
  isPinned(buf: GPUBuffer): boolean {
    return this.pinned.has(buf);
  }

  private toRecycled(buf: GPUBuffer): void {
    const size = this.sizes.get(buf)!;
    let list = this.recycled.get(size);
    if (!list) this.recycled.set(size, (list = []));
    list.push(buf);
  }

  resetPeak(): void {
    this.stats.peakBytes = this.stats.liveBytes;
  }

  /** Destroy every free buffer (handed-out ones stay valid). */
  trim(): void {
    for (const m of [this.clean, this.recycled]) {
      for (const list of m.values()) {
        for (const b of list) {
          this.stats.heldBytes -= this.sizes.get(b) ?? 0;
          b.destroy();
        }
      }
      m.clear();
    }
  }
}
