// GPU tensors: shape + dtype over a pooled, ref-counted storage buffer; scopes free temporaries.
import { ShapeError, GraftError } from './runtime/errors.js';
import { fromHalfArray, toHalfArray } from './runtime/half.js';
import type { Runtime } from './runtime/runtime.js';

export type DType = 'f32' | 'f16' | 'i32';
export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, i32: 4 };

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A buffer shared by a tensor and its views. Pooled storage returns its buffer to the pool at
 * refs = 0; arena storage (pooled = false) belongs to a FlatArena, which frees it.
 */
export class Storage {
  refs = 1;
  constructor(
    readonly rt: Runtime,
    public buffer: GPUBuffer | null,
    readonly pooled = true,
  ) {}
  release(): void {
    if (--this.refs === 0 && this.buffer) {
      if (this.pooled) this.rt.pool.release(this.buffer);
      this.buffer = null;
    }
  }
}

/** The autograd node that produced a tensor (implemented in src/autograd). */
export interface GradFn {
  readonly name: string;
}

let nextId = 1;

type BackwardFn = (root: Tensor, gradOutput?: Tensor, opts?: { retainGraph?: boolean }) => void;
let backwardImpl: BackwardFn | null = null;

/** Installed by src/autograd/engine.ts so `t.backward()` works without a circular import. */
export function setBackwardImpl(fn: BackwardFn): void {
  backwardImpl = fn;
}

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  private storage: Storage;
  private _byteOffset: number;
  private alive = true;
  /** Autograd: gradients flow to this tensor. */
  requiresGrad = false;
  /** Autograd: accumulated gradient of a leaf (set by backward). */
  grad: Tensor | null = null;
  /** Autograd: the node that produced this tensor (null for leaves and untracked results). */
  gradFn: GradFn | null = null;
  /**
   * Autograd: while this (gradient) tensor is known to hold only zeros, the capture epoch it was cleared in
   * (0 outside any step capture; see captureEpoch), else false. Set where a grad is cleared (zeroInto, an
   * optimizer's zeroGrad), reset by accumulateInto/copyInto. accumulateInto then records a buffer copy instead
   * of the add kernel — within a capture only if the clear was recorded by the same capture.
   */
  zeroed: number | false = false;

  /** Use `Tensor.empty`, `Tensor.from`, `Tensor.view` or a kernel to make tensors. */
  private constructor(
    readonly rt: Runtime,
    readonly shape: Shape,
    readonly dtype: DType,
    storage: Storage,
    offset = 0,
  ) {
    this.size = numel(shape);
    this.storage = storage;
    this._byteOffset = offset;
    rt.scopes[rt.scopes.length - 1]?.add(this);
  }

  /** A tensor over `storage` at `byteOffset` (used by FlatArena; the storage gains a reference). */
  static view(rt: Runtime, storage: Storage, shape: Shape, dtype: DType, byteOffset: number): Tensor {
    checkShape(shape);
    storage.refs++;
    return new Tensor(rt, [...shape], dtype, storage, byteOffset);
  }

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  static empty(rt: Runtime, shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    const bytes = Math.max(4, numel(shape) * BYTES_PER_ELEMENT[dtype]);
    return new Tensor(rt, [...shape], dtype, new Storage(rt, rt.pool.acquire(bytes)));
  }

  /** A zero-filled tensor (cleared on the GPU timeline, in order with recorded kernels). */
  static zeros(rt: Runtime, shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = Tensor.empty(rt, shape, dtype);
    rt.commandEncoder().clearBuffer(t.buffer, t.byteOffset, alignedBytes(t));
    return t;
  }

  /** Upload host data. f16 tensors are converted on the CPU; needs the shader-f16 feature. */
  static from(rt: Runtime, data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    const n = numel(shape);
    if (data.length !== n) throw new ShapeError(`data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
    if (dtype === 'f16' && !rt.features.f16) throw new GraftError('f16 tensors need the shader-f16 feature, which this adapter lacks');
    const host =
      dtype === 'f32' ? Float32Array.from(data) : dtype === 'i32' ? Int32Array.from(data) : toHalfArray(data);
    const bytes = Math.max(4, n * BYTES_PER_ELEMENT[dtype]);
    const buf = rt.pool.acquire(bytes, true);
    const padded = (host.byteLength + 3) & ~3;
    if (padded === host.byteLength) rt.device.queue.writeBuffer(buf, 0, host.buffer, host.byteOffset, host.byteLength);
    else {
      const tmp = new Uint8Array(padded);
      tmp.set(new Uint8Array(host.buffer, host.byteOffset, host.byteLength));
      rt.device.queue.writeBuffer(buf, 0, tmp);
    }
    return new Tensor(rt, [...shape], dtype, new Storage(rt, buf));
  }

  /**
   * Overwrite the contents from host data. Pending GPU work is submitted first, so the write
   * lands after every command already recorded (queue.writeBuffer would otherwise jump ahead).
   */
  write(data: ArrayLike<number>): void {
    if (data.length !== this.size) throw new ShapeError(`write: ${data.length} values for tensor [${this.shape.join(', ')}] of ${this.size}`);
    const host =
      this.dtype === 'f32' ? Float32Array.from(data) : this.dtype === 'i32' ? Int32Array.from(data) : toHalfArray(data);
    this.rt.submit();
    const padded = new Uint8Array((host.byteLength + 3) & ~3);
    padded.set(new Uint8Array(host.buffer, host.byteOffset, host.byteLength));
    this.rt.device.queue.writeBuffer(this.buffer, this.byteOffset, padded);
  }

  get buffer(): GPUBuffer {
    const b = this.storage.buffer;
    if (!this.alive || !b) throw new GraftError(`tensor #${this.id} [${this.shape.join(', ')}] was disposed`);
    return b;
  }

  /** Byte offset of element 0 in the buffer (non-zero for arena views; a multiple of 256). */
  get byteOffset(): number {
    return this._byteOffset;
  }

  /**
   * Copy this tensor's data into `dst` (same shape and dtype, e.g. a FlatArena view) and make
   * this tensor live there from now on, keeping its identity (modules and optimizers keep their
   * references). The old buffer goes back to the pool.
   */
  relocate(dst: Tensor): void {
    if (dst.dtype !== this.dtype || dst.size !== this.size) {
      throw new ShapeError(`relocate: ${this.dtype}[${this.shape.join(', ')}] into ${dst.dtype}[${dst.shape.join(', ')}]`);
    }
    const bytes = alignedBytes(this);
    this.rt.commandEncoder().copyBufferToBuffer(this.buffer, this._byteOffset, dst.buffer, dst._byteOffset, bytes);
    dst.storage.refs++;
    this.storage.release();
    this.storage = dst.storage;
    this._byteOffset = dst._byteOffset;
  }

  /** True when another tensor (a reshape view, an arena, …) holds the same buffer. */
  get shared(): boolean {
    return this.storage.refs > 1;
  }

  /** Reverse-mode autograd from this tensor (see src/autograd: `backward(root, gradOutput, opts)`). */
  backward(gradOutput?: Tensor, opts?: { retainGraph?: boolean }): void {
    if (!backwardImpl) throw new GraftError('autograd is not loaded: import it from graft (src/autograd)');
    backwardImpl(this, gradOutput, opts);
  }

  get disposed(): boolean {
    return !this.alive;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Bytes the elements occupy (the buffer may be larger: pooled size class). */
  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  /** The buffer window this tensor occupies, for bind groups (size rounded up to 4 bytes). */
  get binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: this.byteOffset, size: Math.max(4, alignedBytes(this)) };
  }

  /** A view with a new shape over the same storage (one dimension may be -1). */
  reshape(shape: Shape): Tensor {
    const s = [...shape];
    const neg = s.indexOf(-1);
    if (neg >= 0) {
      const rest = numel(s.filter((_, i) => i !== neg));
      if (rest === 0 || this.size % rest !== 0) throw new ShapeError(`cannot reshape [${this.shape}] to [${shape}]`);
      s[neg] = this.size / rest;
    }
    if (numel(s) !== this.size) throw new ShapeError(`cannot reshape [${this.shape}] (${this.size} elements) to [${shape}]`);
    void this.buffer;
    this.storage.refs++;
    return new Tensor(this.rt, s, this.dtype, this.storage, this.byteOffset);
  }

  /** Release this tensor's hold on its buffer (safe to call twice). */
  dispose(): void {
    if (!this.alive) return;
    this.alive = false;
    this.storage.release();
    for (const s of this.rt.scopes) s.delete(this);
  }

  /** Download as float32 (f16 widened, i32 converted). Submits pending work. */
  async read(): Promise<Float32Array> {
    const raw = await this.rt.readBuffer(this.buffer, this.byteLength, this.byteOffset);
    if (this.dtype === 'f32') return new Float32Array(raw);
    if (this.dtype === 'f16') return fromHalfArray(new Uint16Array(raw));
    return Float32Array.from(new Int32Array(raw));
  }

  /** Download an i32 tensor. */
  async readInt(): Promise<Int32Array> {
    if (this.dtype !== 'i32') throw new GraftError(`readInt on a ${this.dtype} tensor`);
    return new Int32Array(await this.rt.readBuffer(this.buffer, this.byteLength, this.byteOffset));
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}[${this.shape.join(', ')}])`;
  }
}

function alignedBytes(t: Tensor): number {
  return (t.byteLength + 3) & ~3;
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid shape [${shape.join(', ')}]`);
  }
}

/** Walk a value and collect the tensors it holds (arrays, plain objects, Maps). */
function collect(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) v.forEach((x) => collect(x, out, depth + 1));
  else if (v instanceof Map) v.forEach((x) => collect(x, out, depth + 1));
  else if (Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach((x) => collect(x, out, depth + 1));
}

/**
 * Run `fn`, then dispose every tensor created inside it except those it returns (and those
 * passed to `keep`). Returned tensors move to the enclosing scope.
 */
export function scope<T>(rt: Runtime, fn: () => T): T {
  const s = new Set<Tensor>();
  rt.scopes.push(s);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of s) t.dispose();
    throw e;
  } finally {
    rt.scopes.pop();
  }
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of s) if (!kept.has(t)) t.dispose();
  const parent = rt.scopes[rt.scopes.length - 1];
  if (parent) for (const t of kept) if (!t.disposed) parent.add(t);
  return result;
}

/** Exempt a tensor from disposal by the scopes currently open. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of t.rt.scopes) s.delete(t);
  return t;
}
