// The WebGPU runtime: device, buffer pool, pipeline cache, and one command encoder per batch.
import { AdapterError, DeviceError, GraftError, ShapeError } from './errors.js';
import { getAdapter, type GpuRequest } from './gpu.js';
import { writeParams, type ParamValue } from './params.js';
import { PipelineCache, type Constants, type KernelDef } from './pipelines.js';
import { BufferPool, sizeClass } from './pool.js';
import { BufferUsage, MapMode } from './flags.js';
import { gpuAwait } from './keepalive.js';
import type { Tensor } from '../tensor.js';

export interface RuntimeOptions extends GpuRequest {
  /** Request shader-f16 when available (default true). */
  f16?: boolean;
  /** Request timestamp-query when available (default true). */
  timestamps?: boolean;
  /** Request subgroups when available (default true). */
  subgroups?: boolean;
  /** Uniform-parameter slots per batch before an automatic submit (default 4096). */
  uniformSlots?: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  adapterFeatures: string[];
  enabledFeatures: string[];
  limits: Record<string, number>;
}

export interface RuntimeStats {
  /** queue.submit calls. */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
}

/** A buffer binding: a whole buffer, or a window of one. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface DispatchOptions {
  /** Storage buffers bound at @binding(1..n) in order (or tensors, bound by their buffer). */
  buffers: readonly (Binding | Tensor)[];
  /** Scalars for the `var<uniform>` struct at @binding(0); omit if the kernel has none. */
  params?: readonly ParamValue[];
  /** Values for WGSL `override` declarations; part of the pipeline cache key. */
  constants?: Constants;
  /** Workgroup counts [x, y, z]. */
  workgroups: readonly number[];
  /**
   * Params that change from step to step with host state (e.g. a dropout seed): a captured step
   * (src/runtime/capture.ts) calls this on every replay instead of reusing `params`.
   */
  dynamic?: () => readonly ParamValue[];
}

/**
 * What a step capture (src/runtime/capture.ts) plugs into the runtime while it records: dispatches
 * and encoder commands are executed as usual and also handed to the sink.
 */
export interface CaptureSink {
  /** A uniform binding in capture-owned memory holding `params` (re-evaluated on replay if `dynamic`). */
  params(kernel: string, params: readonly ParamValue[], dynamic: (() => readonly ParamValue[]) | undefined): GPUBufferBinding;
  /** A dispatch just recorded with these (already created) objects. */
  dispatch(kernel: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, entries: readonly GPUBindGroupEntry[], wg: [number, number, number]): void;
  /** The encoder callers of commandEncoder() get while recording (records copies and clears). */
  wrapEncoder(enc: GPUCommandEncoder): GPUCommandEncoder;
  /** Called by submit(): a captured step must be one batch, so this throws. */
  submitted(): never;
}

const SLOT = 256; // minUniformBufferOffsetAlignment

interface TimingState {
  querySet: GPUQuerySet;
  labels: string[];
  capacity: number;
  perDispatch: boolean;
}

export class Runtime {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly stats: RuntimeStats = { submits: 0, dispatches: 0 };
  readonly features: { f16: boolean; timestamps: boolean; subgroups: boolean };
  /** Per-runtime scratch for kernels (e.g. autotuned choices), keyed by kernel family. */
  readonly tuning = new Map<string, unknown>();
  /** Stack of open tensor scopes (see scope()). */
  readonly scopes: Set<Tensor>[] = [];

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaCpu: ArrayBuffer;
  private arenaView: DataView;
  private arenaSlots: number;
  private arenaUsed = 0;
  private errors: string[] = [];
  private lostInfo: GPUDeviceLostInfo | null = null;
  private lastKernel = '(none)';
  private staging = new Map<number, GPUBuffer[]>();
  private timing: TimingState | null = null;
  private destroyed = false;
  private sink: CaptureSink | null = null;
  private wrapped: { raw: GPUCommandEncoder; proxy: GPUCommandEncoder } | null = null;

  private constructor(
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    opts: RuntimeOptions,
  ) {
    this.pool = new BufferPool(device);
    this.pipelines = new PipelineCache(device);
    const f = device.features;
    this.features = { f16: f.has('shader-f16'), timestamps: f.has('timestamp-query'), subgroups: f.has('subgroups') };
    this.arenaSlots = opts.uniformSlots ?? 4096;
    this.arena = device.createBuffer({ size: this.arenaSlots * SLOT, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    this.arenaCpu = new ArrayBuffer(this.arenaSlots * SLOT);
    this.arenaView = new DataView(this.arenaCpu);
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(`${e.constructor.name}: ${e.message} (last kernel recorded: ${this.lastKernel})`);
    });
    void device.lost.then((info) => {
      this.lostInfo = info;
    });
  }

  /** Open an adapter and device, enabling shader-f16 / timestamp-query / subgroups where present. */
  static async create(opts: RuntimeOptions = {}): Promise<Runtime> {
    const adapter = await getAdapter(opts);
    const want: GPUFeatureName[] = [];
    const add = (on: boolean | undefined, name: string) => {
      if (on !== false && adapter.features.has(name)) want.push(name as GPUFeatureName);
    };
    add(opts.f16, 'shader-f16');
    add(opts.timestamps, 'timestamp-query');
    add(opts.subgroups, 'subgroups');
    const L = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: L.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
    };
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits });
    } catch (e) {
      throw new AdapterError(`requestDevice failed: ${(e as Error).message}`);
    }
    return new Runtime(adapter, device, opts);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Adapter identity, enabled features and limits (for `graft info`). */
  summary(): AdapterSummary {
    const info = this.adapter.info;
    const limits: Record<string, number> = {};
    const L = this.device.limits as unknown as Record<string, number>;
    for (const k in L) if (typeof L[k] === 'number') limits[k] = L[k]!;
    return {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
      adapterFeatures: [...this.adapter.features].sort(),
      enabledFeatures: [...this.device.features].sort(),
      limits,
    };
  }

  /** A stable string naming this adapter, for tuning caches. */
  adapterKey(): string {
    const i = this.adapter.info;
    return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join('/').replace(/\s+/g, '_');
  }

  /** The current command encoder, with no compute pass open (for copies and clears). */
  commandEncoder(): GPUCommandEncoder {
    const enc = this.rawEncoder();
    if (!this.sink) return enc;
    if (this.wrapped?.raw !== enc) this.wrapped = { raw: enc, proxy: this.sink.wrapEncoder(enc) };
    return this.wrapped.proxy;
  }

  private rawEncoder(): GPUCommandEncoder {
    this.assertAlive();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  /** The capture recording this runtime's work, if any (see src/runtime/capture.ts). */
  get capturing(): CaptureSink | null {
    return this.sink;
  }

  /**
   * Start or stop handing work to a capture. Starting submits pending work first, so the captured
   * batch holds the step alone; stopping leaves the captured batch unsubmitted (call submit()).
   */
  setCaptureSink(sink: CaptureSink | null): void {
    if (sink && this.sink) throw new GraftError('a step capture is already recording on this runtime');
    if (sink) {
      if (this.timing) throw new GraftError('cannot capture a step inside timeGpu()');
      this.submit();
    }
    this.sink = sink;
    this.wrapped = null;
  }

  /**
   * Submit pending work, then encode a captured step with `encode` into a fresh encoder and
   * submit it (one queue.submit), counting its dispatches.
   */
  submitCaptured(encode: (enc: GPUCommandEncoder) => void, dispatches: number): void {
    if (this.sink) throw new GraftError('cannot replay a captured step while another capture is recording');
    this.submit();
    const enc = this.device.createCommandEncoder();
    encode(enc);
    this.device.queue.submit([enc.finish()]);
    this.lastKernel = '(captured step replay)';
    this.stats.submits++;
    this.stats.dispatches += dispatches;
    this.pool.onFlush();
  }

  private computePass(label: string): GPUComputePassEncoder {
    const t = this.timing;
    if (this.pass && !(t && t.perDispatch)) return this.pass;
    const enc = this.rawEncoder();
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (t) {
      const i = t.labels.length;
      if (i < t.capacity) {
        t.labels.push(t.perDispatch ? label : 'pass');
        timestampWrites = { querySet: t.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
      }
    }
    this.pass = enc.beginComputePass({ timestampWrites });
    return this.pass;
  }

  /** Record one compute dispatch into the current batch (no submit). */
  dispatch(k: KernelDef, o: DispatchOptions): void {
    const [x = 1, y = 1, z = 1] = o.workgroups;
    const maxWg = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new ShapeError(`kernel '${k.name}': workgroup grid ${x}×${y}×${z} exceeds the adapter limit ${maxWg} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const pipeline = this.pipelines.get(k, o.constants);
    const entries: GPUBindGroupEntry[] = [];
    const sink = this.sink;
    if (o.params && sink) {
      entries.push({ binding: 0, resource: sink.params(k.name, o.params, o.dynamic) });
    } else if (o.params) {
      if (this.arenaUsed === this.arenaSlots) this.submit();
      const off = this.arenaUsed++ * SLOT;
      writeParams(this.arenaView, off, o.params);
      entries.push({ binding: 0, resource: { buffer: this.arena, offset: off, size: Math.max(16, 4 * o.params.length + 15) & ~15 } });
    }
    o.buffers.forEach((b, i) => {
      const bb = toBinding(b);
      entries.push({ binding: i + 1, resource: bb });
    });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    if (sink) sink.dispatch(k.name, pipeline, bindGroup, entries, [x, y, z]);
    const pass = this.computePass(k.name);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.lastKernel = k.name;
    this.stats.dispatches++;
  }

  /** Submit everything recorded so far (one queue.submit), if anything was. */
  submit(): void {
    this.assertAlive();
    if (this.sink) this.sink.submitted();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) return;
    if (this.arenaUsed) {
      this.device.queue.writeBuffer(this.arena, 0, this.arenaCpu, 0, this.arenaUsed * SLOT);
      this.arenaUsed = 0;
    }
    const cmd = this.encoder.finish();
    this.encoder = null;
    this.device.queue.submit([cmd]);
    this.stats.submits++;
    this.pool.onFlush();
  }

  /** Submit, wait for the GPU, and throw any shader, validation or device error seen. */
  async sync(): Promise<void> {
    this.submit();
    await gpuAwait(this.device.queue.onSubmittedWorkDone());
    await this.checkErrors();
  }

  /** Throw the first pending error (compile errors name kernel and WGSL line). */
  async checkErrors(): Promise<void> {
    try {
      await gpuAwait(this.pipelines.check());
    } catch (e) {
      this.errors = []; // validation errors that follow from a broken shader add nothing
      throw e;
    }
    if (this.lostInfo) throw new DeviceError(`GPU device lost (${this.lostInfo.reason}): ${this.lostInfo.message}`);
    if (this.errors.length) {
      const msg = this.errors.join('\n');
      this.errors = [];
      throw new DeviceError(msg);
    }
  }

  /** Copy `bytes` from a buffer back to the CPU (submits the batch first). */
  async readBuffer(src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = (bytes + 3) & ~3;
    const cls = sizeClass(size);
    const staging =
      this.staging.get(cls)?.pop() ??
      this.device.createBuffer({ size: cls, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.commandEncoder().copyBufferToBuffer(src, offset, staging, 0, size);
    this.submit();
    try {
      await gpuAwait(staging.mapAsync(MapMode.READ, 0, size));
    } catch (e) {
      await this.checkErrors();
      throw new DeviceError(`readback failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    let list = this.staging.get(cls);
    if (!list) this.staging.set(cls, (list = []));
    list.push(staging);
    await this.checkErrors();
    return out;
  }

  /**
   * Time GPU work with timestamp queries. `perDispatch` puts each dispatch in its own timed pass
   * (per-kernel breakdown). Returns null when the device has no timestamp-query.
   */
  async timeGpu(
    fn: () => void,
    opts: { perDispatch?: boolean; capacity?: number } = {},
  ): Promise<{ totalMs: number; entries: { label: string; ms: number }[] } | null> {
    if (!this.features.timestamps) {
      fn();
      await this.sync();
      return null;
    }
    this.submit();
    const capacity = opts.capacity ?? 256;
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
    this.timing = { querySet, labels: [], capacity, perDispatch: !!opts.perDispatch };
    try {
      fn();
    } finally {
      this.commandEncoder();
    }
    const t = this.timing;
    this.timing = null;
    const n = t.labels.length;
    const resolve = this.device.createBuffer({ size: Math.max(16, 16 * n), usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
    if (n) this.commandEncoder().resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
    const raw = n ? new BigUint64Array(await this.readBuffer(resolve, 16 * n)) : new BigUint64Array(0);
    resolve.destroy();
    querySet.destroy();
    const entries = t.labels.map((label, i) => ({ label, ms: Number(raw[2 * i + 1]! - raw[2 * i]!) / 1e6 }));
    return { totalMs: entries.reduce((s, e) => s + e.ms, 0), entries };
  }

  private assertAlive(): void {
    if (this.destroyed) throw new DeviceError('runtime was destroyed');
  }

  /** Release every GPU resource. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.trim();
    for (const l of this.staging.values()) for (const b of l) b.destroy();
    this.arena.destroy();
    this.device.destroy();
  }
}

function toBinding(b: Binding | Tensor): GPUBufferBinding {
  if ('shape' in b) return b.binding;
  if ('buffer' in b && !('mapState' in b)) {
    const w = b as { buffer: GPUBuffer; offset?: number; size?: number };
    return { buffer: w.buffer, offset: w.offset ?? 0, size: w.size };
  }
  return { buffer: b as GPUBuffer };
}
