// Whole-step capture: record a step's dispatches and copies once (pipelines, prebuilt bind groups, capture-owned uniforms, pinned buffers), then replay them with one re-encode and one submit.
import { GraftError, ShapeError } from './errors.js';
import { BufferUsage } from './flags.js';
import { writeParams, type ParamValue } from './params.js';
import type { CaptureSink, Runtime } from './runtime.js';
import { Tensor, keep, scope, type DType } from '../tensor.js';
import { toHalfArray } from './half.js';

const SLOT = 256; // minUniformBufferOffsetAlignment
const SLOTS_PER_BLOCK = 256;

/** Kernels whose params carry host-drawn randomness: they must pass `dynamic` params to be captured (the dropout rule does). */
const HOST_SEEDED = new Set(['dropout']);

/** New host data for one captured input tensor (same element count as the tensor). */
export type InputData = Float32Array | Int32Array | Uint16Array | readonly number[];

/** One recorded command, in order: a dispatch (pipeline + bind group + grid) or an encoder command. */
type Item =
  | { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; x: number; y: number; z: number; run: null }
  | { pipeline: null; bindGroup: null; x: 0; y: 0; z: 0; run: (enc: GPUCommandEncoder) => void };

/** Capture-owned uniform memory: blocks of 256 slots, each a GPU buffer with a host copy. */
interface UniformBlock {
  gpu: GPUBuffer;
  cpu: ArrayBuffer;
  view: DataView;
  used: number;
}

/** A host-side action a replay repeats, in recording order (optimizer hyper-parameters, lr schedules, dynamic params). */
export type ReplayHook = () => void;

let recording: Recorder | null = null;

/**
 * Register `hook` to run on every replay of the step being captured, at the same point of the
 * step as now (hooks run in recording order, before the replay is encoded). No-op when nothing
 * records. Components with per-step host state (optimizer step counts, lr schedulers) call this
 * so a replayed step advances them exactly as running the step again would.
 */
export function onReplay(hook: ReplayHook): void {
  recording?.hooks.push(hook);
}

/** True while a step capture is recording (on any runtime). */
export function isCapturing(): boolean {
  return recording !== null;
}

const recorderIds = new WeakMap<Recorder, number>();
let nextRecorderId = 1;

/** The capture recording now: 0 when none, else an id unique to that recording (for "done within this capture" checks). */
export function captureEpoch(): number {
  if (!recording) return 0;
  let id = recorderIds.get(recording);
  if (id === undefined) recorderIds.set(recording, (id = nextRecorderId++));
  return id;
}

function isBuffer(v: unknown): v is GPUBuffer {
  return typeof v === 'object' && v !== null && 'mapState' in v && 'destroy' in v;
}

/** Records one step through the runtime's CaptureSink hooks. */
class Recorder implements CaptureSink {
  readonly items: Item[] = [];
  readonly hooks: ReplayHook[] = [];
  readonly blocks: UniformBlock[] = [];
  readonly used = new Set<GPUBuffer>();
  dispatches = 0;
  dynamicBlocks = new Set<number>();

  constructor(readonly rt: Runtime) {}

  params(kernel: string, params: readonly ParamValue[], dynamic: (() => readonly ParamValue[]) | undefined): GPUBufferBinding {
    if (HOST_SEEDED.has(kernel) && !dynamic) {
      throw new GraftError(
        `cannot capture kernel '${kernel}' called without a dynamic seed: its random seed is drawn on the host each step (a replay would repeat the same mask); use F.dropout, which draws a fresh seed per replay`,
      );
    }
    let b = this.blocks[this.blocks.length - 1];
    if (!b || b.used === SLOTS_PER_BLOCK) {
      const cpu = new ArrayBuffer(SLOT * SLOTS_PER_BLOCK);
      b = {
        gpu: this.rt.device.createBuffer({ size: SLOT * SLOTS_PER_BLOCK, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST }),
        cpu,
        view: new DataView(cpu),
        used: 0,
      };
      this.blocks.push(b);
    }
    const off = b.used++ * SLOT;
    writeParams(b.view, off, params);
    if (dynamic) {
      const view = b.view;
      this.dynamicBlocks.add(this.blocks.length - 1);
      this.hooks.push(() => writeParams(view, off, dynamic()));
    }
    return { buffer: b.gpu, offset: off, size: Math.max(16, 4 * params.length + 15) & ~15 };
  }

  dispatch(_kernel: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, entries: readonly GPUBindGroupEntry[], wg: [number, number, number]): void {
    for (const e of entries) {
      const r = e.resource;
      if (isBuffer(r)) this.used.add(r);
      else if (typeof r === 'object' && r !== null && 'buffer' in r && isBuffer(r.buffer)) this.used.add(r.buffer);
    }
    this.items.push({ pipeline, bindGroup, x: wg[0], y: wg[1], z: wg[2], run: null });
    this.dispatches++;
  }

  wrapEncoder(enc: GPUCommandEncoder): GPUCommandEncoder {
    const record = (name: 'clearBuffer' | 'copyBufferToBuffer', args: unknown[]): void => {
      for (const a of args) if (isBuffer(a)) this.used.add(a);
      const run = (e: GPUCommandEncoder): void => {
        Reflect.apply(e[name], e, args);
      };
      this.items.push({ pipeline: null, bindGroup: null, x: 0, y: 0, z: 0, run });
      run(enc);
    };
    return new Proxy(enc, {
      get: (target, prop) => {
        if (prop === 'clearBuffer' || prop === 'copyBufferToBuffer') return (...args: unknown[]) => record(prop, args);
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v === 'function') {
          return () => {
            throw new GraftError(`a captured step can record only dispatches, clearBuffer and copyBufferToBuffer, not encoder.${String(prop)}`);
          };
        }
        return v;
      },
    });
  }

  submitted(): never {
    throw new GraftError('a captured step must be one batch: it may not submit, read a tensor back, write a tensor or time GPU work while it records');
  }

  /** Upload the uniform blocks (all of them, or only those with dynamic params). */
  upload(onlyDynamic: boolean): void {
    this.blocks.forEach((b, i) => {
      if (onlyDynamic && !this.dynamicBlocks.has(i)) return;
      this.rt.device.queue.writeBuffer(b.gpu, 0, b.cpu, 0, b.used * SLOT);
    });
  }
}

export interface CaptureOptions {
  /**
   * Tensors the step reads whose contents change per step (the batch): replay() writes new data
   * into their buffers. They must stay alive (and keep their shape) as long as the capture.
   */
  inputs?: readonly Tensor[];
}

/**
 * A recorded step. `captureStep(rt, fn)` runs `fn` once for real (inside a tensor scope, one
 * submit) while recording every dispatch and copy; `replay()` repeats it: host hooks (optimizer
 * hyper-parameters, scheduler), new input data, then the recorded commands re-encoded with their
 * prebuilt bind groups, one submit. No JS autograd, no bind group or buffer creation per replay.
 *
 * Memory plan: every pool buffer the step binds is pinned while the capture lives (the pool hands
 * it to nobody else); dispose() gives them back. Outputs are the tensors `fn` returned: each
 * replay overwrites them in place, and returns fresh views of them (dispose those when done).
 *
 * Not captured: anything `fn` computes on the host from data (it runs once), `Tensor.write`,
 * readbacks and submits inside `fn` (they throw). Dropout through F.dropout / nn.Dropout and the
 * fused LoRA rule's lora_dropout is captured: each replay draws each call's seed anew from the
 * default generator (in call order, as F.dropout does when run for real; see autograd/ops/misc.ts);
 * the dropout kernel called directly without a dynamic seed throws.
 */
export class CapturedStep {
  readonly outputs: readonly Tensor[];
  readonly inputs: readonly Tensor[];
  /** Dispatches per replay. */
  readonly dispatchCount: number;
  /** Encoder commands (dispatches + copies/clears) per replay. */
  readonly commandCount: number;
  private readonly items: Item[];
  private readonly hooks: ReplayHook[];
  private readonly rec: Recorder;
  private readonly pinned: GPUBuffer[];
  private alive = true;

  private constructor(
    readonly rt: Runtime,
    rec: Recorder,
    outputs: Tensor[],
    inputs: readonly Tensor[],
  ) {
    this.rec = rec;
    this.items = rec.items;
    this.hooks = rec.hooks;
    this.outputs = outputs;
    this.inputs = inputs;
    this.dispatchCount = rec.dispatches;
    this.commandCount = rec.items.length;
    for (const t of inputs) rec.used.add(t.buffer);
    for (const t of outputs) rec.used.add(t.buffer);
    this.pinned = rt.pool.endCapture(rec.used);
  }

  /** Record `fn` (run once for real, one submit) into a replayable step. */
  static record(rt: Runtime, fn: () => Tensor | readonly Tensor[], opts: CaptureOptions = {}): CapturedStep {
    if (recording) throw new GraftError('captureStep: another step capture is already recording');
    const inputs = [...(opts.inputs ?? [])];
    for (const t of inputs) if (t.rt !== rt || t.disposed) throw new GraftError(`captureStep: input ${t} is disposed or belongs to another runtime`);
    const rec = new Recorder(rt);
    rt.setCaptureSink(rec); // submits pending work first
    recording = rec;
    rt.pool.beginCapture();
    let outs: Tensor[];
    try {
      const r = scope(rt, fn);
      outs = (r instanceof Tensor ? [r] : [...r]).map((t) => keep(t));
    } catch (e) {
      recording = null;
      rt.pool.endCapture([]);
      rt.setCaptureSink(null);
      rt.submit(); // what ran is real work (as an uncaptured step that failed half-way)
      throw e;
    }
    recording = null;
    rt.setCaptureSink(null);
    const cap = new CapturedStep(rt, rec, outs, inputs);
    rec.upload(false);
    rt.submit();
    return cap;
  }

  get disposed(): boolean {
    return !this.alive;
  }

  /** Pool buffers reserved by this capture. */
  get pinnedCount(): number {
    return this.pinned.length;
  }

  /**
   * Run the step again: host hooks, new data for the inputs (in the order given to captureStep;
   * omit to keep their contents), then one submit. Returns views of the outputs (caller disposes).
   */
  replay(data?: readonly InputData[]): Tensor[] {
    if (!this.alive) throw new GraftError('replay: this captured step was disposed');
    if (recording) throw new GraftError('replay: a step capture is recording');
    const uploads = data ? this.checkInputs(data) : [];
    this.rt.submitCaptured((enc) => {
      // after pending work was submitted: the hooks' queue writes must not overtake it
      for (const h of this.hooks) h();
      this.rec.upload(true);
      for (const [t, bytes] of uploads) this.rt.device.queue.writeBuffer(t.buffer, t.byteOffset, bytes);
      this.encode(enc);
    }, this.dispatchCount);
    return this.outputs.map((t) => t.reshape(t.shape));
  }

  private checkInputs(data: readonly InputData[]): [Tensor, Uint8Array<ArrayBuffer>][] {
    if (data.length !== this.inputs.length) {
      throw new GraftError(`replay: ${data.length} inputs given, the step was captured with ${this.inputs.length}`);
    }
    return this.inputs.map((t, i) => {
      const d = data[i]!;
      if (t.disposed) throw new GraftError(`replay: captured input ${i} was disposed`);
      if (d.length !== t.size) {
        throw new ShapeError(`replay: input ${i} has ${d.length} values, the step was captured for ${t.dtype} [${t.shape.join(', ')}] (${t.size}); a new shape needs a new capture`);
      }
      return [t, toBytes(d, t.dtype, i)];
    });
  }

  private encode(enc: GPUCommandEncoder): void {
    let pass: GPUComputePassEncoder | null = null;
    let last: GPUComputePipeline | null = null;
    for (const it of this.items) {
      if (it.run) {
        if (pass) {
          pass.end();
          pass = null;
          last = null;
        }
        it.run(enc);
        continue;
      }
      pass ??= enc.beginComputePass();
      if (it.pipeline !== last) {
        pass.setPipeline(it.pipeline);
        last = it.pipeline;
      }
      pass.setBindGroup(0, it.bindGroup);
      pass.dispatchWorkgroups(it.x, it.y, it.z);
    }
    pass?.end();
  }

  /** Release the outputs and give the pinned buffers back to the pool (submits pending work). */
  dispose(): void {
    if (!this.alive) return;
    this.alive = false;
    this.rt.submit();
    for (const t of this.outputs) t.dispose();
    this.rt.pool.unpin(this.pinned);
    for (const b of this.rec.blocks) b.gpu.destroy();
    this.items.length = 0;
    this.hooks.length = 0;
  }
}

function toBytes(d: InputData, dtype: DType, i: number): Uint8Array<ArrayBuffer> {
  let host: Float32Array | Int32Array | Uint16Array;
  if (dtype === 'f32') {
    if (d instanceof Int32Array || d instanceof Uint16Array) throw new GraftError(`replay: input ${i} is f32, got an ${d.constructor.name}`);
    host = d instanceof Float32Array ? d : Float32Array.from(d);
  } else if (dtype === 'i32') {
    if (d instanceof Float32Array || d instanceof Uint16Array) throw new GraftError(`replay: input ${i} is i32, got a ${d.constructor.name}`);
    host = d instanceof Int32Array ? d : Int32Array.from(d);
  } else {
    host = d instanceof Uint16Array ? d : toHalfArray(d);
  }
  const padded = (host.byteLength + 3) & ~3;
  const out = new Uint8Array(padded); // a copy: the caller may reuse its array for the next batch before the write lands
  out.set(new Uint8Array(host.buffer, host.byteOffset, host.byteLength));
  return out;
}

/** Record `fn` as a replayable step (see CapturedStep). */
export function captureStep(rt: Runtime, fn: () => Tensor | readonly Tensor[], opts: CaptureOptions = {}): CapturedStep {
  return CapturedStep.record(rt, fn, opts);
}
