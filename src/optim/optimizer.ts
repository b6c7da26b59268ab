// Optimizer base: parameter groups over flat arenas, one fused update dispatch per arena chunk, GPU-side gradient clipping, state dicts.
import type { FlatArena } from '../runtime/arena.js';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { BufferUsage } from '../runtime/flags.js';
import { f32 } from '../runtime/params.js';
import type { Constants, KernelDef } from '../runtime/pipelines.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { isCapturing, onReplay } from '../runtime/capture.js';
import { fusionEnabled } from '../runtime/fusion.js';
import { grid1d } from '../kernels/grid.js';
import { BLOCK, FlatParams } from './flat.js';
import { makeGroups, type BaseHyper, type GroupState, type ParamsArg } from './groups.js';
import { checkNormRequest, partialCount, recordGradNorm } from './norm.js';
import { UploadRing } from './ring.js';

export interface OptimizerOptions {
  /** Largest arena chunk in bytes (default: the adapter's storage binding limit); one update dispatch per chunk. */
  maxChunkBytes?: number;
  /**
   * Keep parameters that have requiresGrad false at construction (default false: they are left
   * out). Kept ones are skipped while requiresGrad is false and trained once it is true (gradual
   * unfreezing).
   */
  includeFrozen?: boolean;
}

export interface StepOptions {
  /**
   * Multiply every gradient by this inside the update, e.g. 1 / k after accumulating k
   * micro-batches. Default: the scale given to the preceding clipGradNorm, else 1.
   */
  gradScale?: number;
}

export interface ClipOptions {
  /** 2 (default) or Infinity. */
  normType?: number;
  /** The norm and the clip are those of gradScale·grad; the next step() uses the same scale. */
  gradScale?: number;
}

/** A group as saved: hyper-parameters, name, initial lr and its parameters' flat indices. */
export type SavedGroup<H extends BaseHyper> = H & { name: string; initialLr: number; params: number[] };

/** Everything needed to resume: JSON-able numbers plus state tensors (`<flat index>.<name>`, PyTorch's names). */
export interface OptimizerStateDict<H extends BaseHyper> {
  kind: string;
  /** step() calls so far. */
  stepCount: number;
  /** Updates applied to each parameter (PyTorch's per-parameter `step`), in flat order. */
  paramSteps: number[];
  paramGroups: SavedGroup<H>[];
  /**
   * Live views of the optimizer's state (they change with later steps: save or copy them before
   * the next step; dispose them when done). Keys like `3.exp_avg`, `0.momentum_buffer`.
   */
  state: Record<string, Tensor>;
}

/** One optimizer-state arena in kernel binding order (null: not allocated, a dummy is bound). */
export interface StateSlot {
  name: string;
  arena: FlatArena | null;
}

/** Views of the per-step hyper-parameter words (the same memory as f32 and as u32). */
export interface HyperWords {
  f: Float32Array;
  u: Uint32Array;
}

/** Words per group record; each parameter record is 4 words starting with its group index. */
export const GROUP_WORDS = 8;
export const PARAM_WORDS = 4;
/** Group index that tells the update kernel to leave a parameter alone this step. */
export const SKIP = 0xffffffff;
const WG = 256;

/** vec4s each invocation updates: the kernel's PER override constant (1 when it has none). */
const perInvocation = (c: Constants): number => (typeof c.PER === 'number' ? c.PER : 1);

/**
 * The machinery every optimizer shares. Construction relocates the trainable parameters into a
 * FlatArena, makes each `p.grad` a zeroed view of a grad arena with the same layout, and the
 * subclass allocates its state arenas the same way. `step()` records one fused dispatch per
 * arena chunk (it never submits or reads back): the kernel finds each element's parameter through
 * a 64-element block table and that parameter's group and step-dependent constants in a small
 * per-step hyper-parameter upload.
 */
export abstract class Optimizer<H extends BaseHyper> {
  readonly rt: Runtime;
  /** Live groups: set `lr` (or any hyper-parameter) between steps. */
  readonly paramGroups: GroupState<H>[];
  /** Trainable parameters in flat order (group by group); state dict indices refer to it. */
  readonly params: readonly Tensor[];
  /** Group index of each parameter in `params`. */
  readonly groupOf: readonly number[];
  protected readonly flat: FlatParams;
  protected readonly paramSteps: number[];
  protected readonly dummy: GPUBuffer;
  private readonly hyperKeys: (keyof H & string)[];
  private readonly ring: UploadRing;
  /** [norm, clip coefficient] written by clipGradNorm, read by the next step. */
  private readonly clipBuf: GPUBuffer;
  private partials: GPUBuffer | null = null;
  private pendingClip: { gradScale: number } | null = null;
  private readonly missing = new Set<number>();
  private steps = 0;
  private alive = true;

  /** 'sgd' or 'adamw': checked by loadStateDict. */
  abstract readonly kind: string;
  protected abstract readonly kernel: KernelDef;
  /** Throw unless the hyper-parameters of a group are valid. */
  protected abstract validateGroup(g: H, where: string): void;
  /** Write a group's GROUP_WORDS words at `at`. */
  protected abstract packGroup(g: GroupState<H>, w: HyperWords, at: number): void;
  /** Write words 1..3 of parameter `i`'s record at `at` (word 0 is its group); `step` counts this update. */
  protected abstract packParam(i: number, g: GroupState<H>, step: number, w: HyperWords, at: number): void;
  /** State arenas in binding order (after param and grad). */
  protected abstract stateSlots(): StateSlot[];
  /** Override constants for the update kernel. */
  protected abstract constants(): Constants;
  /** Whether parameter `i` has state `name` (saved by stateDict). */
  protected abstract hasState(name: string, i: number): boolean;
  /** loadStateDict found (or did not find) state `name` for parameter `i`. */
  protected abstract onLoadState(name: string, i: number, present: boolean): void;
  /** Allocate state the current hyper-parameters (or a state dict being loaded, `loading`) need; called before each step and load. */
  protected ensureState(_loading?: readonly string[]): void {}

  protected constructor(
    protected readonly what: string,
    params: ParamsArg<H>,
    defaults: H,
    opts: OptimizerOptions,
  ) {
    this.hyperKeys = Object.keys(defaults) as (keyof H & string)[];
    this.paramGroups = makeGroups(what, params, defaults, opts.includeFrozen ?? false);
    this.paramGroups.forEach((g, gi) => this.validateGroup(g, `${what} group ${gi} (${g.name})`));
    const flatParams: Tensor[] = [];
    const groupOf: number[] = [];
    this.paramGroups.forEach((g, gi) => {
      for (const p of g.params) {
        flatParams.push(p);
        groupOf.push(gi);
      }
    });
    this.params = flatParams;
    this.groupOf = groupOf;
    this.rt = flatParams[0]!.rt;
    for (const p of flatParams) if (p.rt !== this.rt) throw new GraftError(`${what}: parameters belong to different runtimes`);
    this.flat = new FlatParams(this.rt, flatParams, opts.maxChunkBytes);
    this.paramSteps = flatParams.map(() => 0);
    this.ring = new UploadRing(this.rt, 4 * (GROUP_WORDS * this.paramGroups.length + PARAM_WORDS * flatParams.length));
    this.clipBuf = this.rt.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE });
    this.dummy = this.rt.device.createBuffer({ size: 256, usage: BufferUsage.STORAGE });
  }

  /** step() calls so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Arena chunks, i.e. update dispatches per step. */
  get chunkCount(): number {
    return this.flat.chunkCount;
  }

  /** The learning rate of each group. */
  get lrs(): number[] {
    return this.paramGroups.map((g) => g.lr);
  }

  /** Zero every gradient: one clearBuffer per grad arena chunk (re-attaches grads replaced from outside). */
  zeroGrad(): void {
    this.assertAlive();
    this.flat.reconcile();
    this.missing.clear();
    this.flat.zeroGrads();
    this.pendingClip = null;
  }

  /**
   * Update every parameter: one fused dispatch per arena chunk (one per parameter with the fusion
   * switch 'adamw-multi-tensor' off, for AdamW and SGD alike), recorded (no submit, no readback).
   * Parameters whose requiresGrad is false, or whose grad was removed (set to null or disposed by
   * outside code) since the last zeroGrad, are skipped like PyTorch skips grad-less parameters.
   */
  step(opts: StepOptions = {}): void {
    this.assertAlive();
    const gradScale = this.resolveScale(opts.gradScale);
    for (const i of this.flat.reconcile()) this.missing.add(i);
    const missing = new Set(this.missing);
    const buf = this.packStep(missing);
    const hyper = this.ring.push(buf);
    const segBase = GROUP_WORDS * this.paramGroups.length;
    const slots = this.stateSlots();
    const constants = { WG, ...this.constants() };
    const useClip = this.pendingClip ? 1 : 0;
    if (fusionEnabled('adamw-multi-tensor')) this.dispatchChunks(slots, hyper, constants, [segBase / 4, useClip, gradScale]);
    else this.dispatchParams(slots, hyper, constants, [segBase / 4, useClip, gradScale]);
    this.ring.markUsed();
    this.pendingClip = null;
    this.missing.clear();
    if (isCapturing()) {
      // A replay of the captured step repeats the host side: the same skips, fresh step counts, lrs and bias corrections.
      const arenas = slots.map((s) => s.arena);
      const key = JSON.stringify(constants);
      onReplay(() => {
        this.assertAlive();
        const words = this.packStep(missing);
        const now = this.stateSlots();
        if (JSON.stringify({ WG, ...this.constants() }) !== key || now.some((s, k) => s.arena !== arenas[k])) {
          throw new GraftError(`${this.what}: its state layout changed since the step was captured (e.g. momentum turned on); capture the step again`);
        }
        this.rt.device.queue.writeBuffer(hyper.buffer, hyper.offset ?? 0, words);
      });
    }
  }

  /** Validate the groups, allocate state, and pack this step's hyper-parameter words (advances the step counts). */
  private packStep(missing: ReadonlySet<number>): ArrayBuffer {
    this.paramGroups.forEach((g, gi) => this.validateGroup(g, `${this.what} group ${gi} (${g.name})`));
    this.ensureState();
    const G = this.paramGroups.length;
    const segBase = GROUP_WORDS * G;
    const buf = new ArrayBuffer(4 * (segBase + PARAM_WORDS * this.params.length));
    const w: HyperWords = { f: new Float32Array(buf), u: new Uint32Array(buf) };
    this.paramGroups.forEach((g, gi) => this.packGroup(g, w, GROUP_WORDS * gi));
    this.params.forEach((p, i) => {
      const at = segBase + PARAM_WORDS * i;
      if (!p.requiresGrad || missing.has(i)) {
        w.u[at] = SKIP;
        return;
      }
      const gi = this.groupOf[i]!;
      w.u[at] = gi;
      this.paramSteps[i]!++;
      this.packParam(i, this.paramGroups[gi]!, this.paramSteps[i]!, w, at);
    });
    this.steps++;
    return buf;
  }

  /** Multi-tensor update: one dispatch per arena chunk. tail = [segBase (vec4), useClip, gradScale]. */
  private dispatchChunks(slots: StateSlot[], hyper: GPUBufferBinding, constants: Constants, tail: [number, number, number]): void {
    const maxPerDim = this.rt.limits.maxComputeWorkgroupsPerDimension;
    this.flat.data.chunks.forEach((chunk, c) => {
      const n4 = chunk.elements / 4;
      this.rt.dispatch(this.kernel, {
        buffers: [
          chunk.buffer,
          this.flat.grads.chunks[c]!.buffer,
          ...slots.map((s) => (s.arena ? s.arena.chunks[c]!.buffer : this.dummy)),
          this.flat.blockParam,
          hyper,
          this.clipBuf,
        ],
        params: [n4, this.flat.blockBase[c]!, tail[0], tail[1], f32(tail[2])],
        constants,
        workgroups: grid1d(Math.ceil(n4 / perInvocation(constants)), WG, maxPerDim),
      });
    });
  }

  /**
   * Per-tensor update (fusion 'adamw-multi-tensor' off): the same kernel once per parameter, over
   * windows of the arena chunks that cover just that parameter (vec4-rounded; views start 256-byte aligned).
   */
  private dispatchParams(slots: StateSlot[], hyper: GPUBufferBinding, constants: Constants, tail: [number, number, number]): void {
    const maxPerDim = this.rt.limits.maxComputeWorkgroupsPerDimension;
    this.flat.data.segments.forEach((s) => {
      if (!s.size) return;
      const n4 = Math.ceil(s.size / 4);
      const win = (buffer: GPUBuffer) => ({ buffer, offset: 4 * s.offset, size: 16 * n4 });
      this.rt.dispatch(this.kernel, {
        buffers: [
          win(this.flat.data.chunks[s.chunk]!.buffer),
          win(this.flat.grads.chunks[s.chunk]!.buffer),
          ...slots.map((st) => (st.arena ? win(st.arena.chunks[s.chunk]!.buffer) : this.dummy)),
          this.flat.blockParam,
          hyper,
          this.clipBuf,
        ],
        params: [n4, this.flat.blockBase[s.chunk]! + s.offset / BLOCK, tail[0], tail[1], f32(tail[2])],
        constants,
        workgroups: grid1d(Math.ceil(n4 / perInvocation(constants)), WG, maxPerDim),
      });
    });
  }

  /**
   * Compute the global gradient norm over every grad chunk on the GPU (deterministic, no
   * readback) and make the next step() scale gradients by min(1, maxNorm / (norm + 1e-6)). The
   * grads themselves are left untouched. Returns the norm as a [1] tensor (read it whenever).
   */
  clipGradNorm(maxNorm: number, opts: ClipOptions = {}): Tensor {
    this.assertAlive();
    const r = { maxNorm, normType: opts.normType ?? 2, gradScale: opts.gradScale ?? 1 };
    checkNormRequest(`${this.what}.clipGradNorm`, r);
    for (const i of this.flat.reconcile()) this.missing.add(i);
    const chunks = this.flat.grads.chunks;
    if (!this.partials) {
      const count = chunks.reduce((s, c) => s + partialCount(c.elements), 0);
      this.partials = this.rt.device.createBuffer({ size: Math.max(16, 4 * count), usage: BufferUsage.STORAGE });
    }
    const norm = Tensor.empty(this.rt, [1]);
    const sources = chunks.map((c) => ({ binding: c.buffer, n: c.elements }));
    recordGradNorm(this.rt, sources, this.partials, norm, this.clipBuf, r);
    this.pendingClip = { gradScale: r.gradScale };
    return norm;
  }

  /** Hyper-parameters, step counts and (live views of) the state tensors; see OptimizerStateDict. */
  stateDict(): OptimizerStateDict<H> {
    this.assertAlive();
    const state: Record<string, Tensor> = {};
    for (const slot of this.stateSlots()) {
      if (!slot.arena) continue;
      for (let i = 0; i < this.params.length; i++) {
        if (this.hasState(slot.name, i)) state[`${i}.${slot.name}`] = this.stateView(slot.arena, i);
      }
    }
    return {
      kind: this.kind,
      stepCount: this.steps,
      paramSteps: [...this.paramSteps],
      paramGroups: this.paramGroups.map((g, gi) => this.saveGroup(g, gi)),
      state,
    };
  }

  /**
   * Restore a stateDict() of an optimizer of the same kind over the same parameter layout
   * (copies recorded in order with kernels). Throws on a mismatch of kind, groups, parameter
   * indices, shapes, or state keys.
   */
  loadStateDict(sd: OptimizerStateDict<H>): void {
    this.assertAlive();
    const w = `${this.what}.loadStateDict`;
    if (sd.kind !== this.kind) throw new GraftError(`${w}: state of a '${sd.kind}' optimizer`);
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new GraftError(`${w}: ${sd.paramGroups.length} groups saved, this optimizer has ${this.paramGroups.length}`);
    }
    if (sd.paramSteps.length !== this.params.length) {
      throw new GraftError(`${w}: ${sd.paramSteps.length} parameters saved, this optimizer has ${this.params.length}`);
    }
    this.paramGroups.forEach((g, gi) => {
      const mine = this.indicesOf(gi);
      const saved = sd.paramGroups[gi]!.params;
      if (saved.length !== mine.length || saved.some((v, k) => v !== mine[k])) {
        throw new GraftError(`${w}: group ${gi} holds parameters [${saved.join(', ')}], expected [${mine.join(', ')}]`);
      }
    });
    const hyper = sd.paramGroups.map((s, gi) => {
      const g = this.copyHyper(s);
      this.validateGroup(g, `${w} group ${gi}`);
      return g;
    });
    this.paramGroups.forEach((g, gi) => {
      Object.assign(g, hyper[gi]);
      g.initialLr = sd.paramGroups[gi]!.initialLr;
    });
    this.steps = sd.stepCount;
    sd.paramSteps.forEach((s, i) => (this.paramSteps[i] = s));
    this.ensureState(Object.keys(sd.state));
    const used = new Set<string>();
    for (const slot of this.stateSlots()) {
      if (!slot.arena) continue;
      for (let i = 0; i < this.params.length; i++) {
        const key = `${i}.${slot.name}`;
        const src = sd.state[key];
        const dst = this.stateView(slot.arena, i);
        if (src) {
          if (src.size !== dst.size) throw new ShapeError(`${w}: state '${key}' has shape [${src.shape.join(', ')}], parameter is [${dst.shape.join(', ')}]`);
          this.flat.copyInto(dst, src);
          used.add(key);
        } else if (dst.size) {
          this.rt.commandEncoder().clearBuffer(dst.buffer, dst.byteOffset, dst.byteLength);
        }
        dst.dispose();
        this.onLoadState(slot.name, i, !!src);
      }
    }
    const extra = Object.keys(sd.state).filter((k) => !used.has(k));
    if (extra.length) throw new GraftError(`${w}: unexpected state entries ${extra.slice(0, 5).join(', ')}`);
    this.pendingClip = null;
    this.missing.clear();
  }

  /**
   * Free the arenas. Parameters move back to pooled buffers and stay usable; their grads are
   * dropped (`p.grad = null`). Submits pending work first.
   */
  dispose(): void {
    if (!this.alive) return;
    this.alive = false;
    const arenas = this.stateSlots().map((s) => s.arena);
    this.flat.dispose();
    for (const a of arenas) a?.dispose();
    this.ring.dispose();
    this.clipBuf.destroy();
    this.dummy.destroy();
    this.partials?.destroy();
  }

  /** The flat indices of group `gi`'s parameters. */
  indicesOf(gi: number): number[] {
    const out: number[] = [];
    this.groupOf.forEach((g, i) => g === gi && out.push(i));
    return out;
  }

  protected assertAlive(): void {
    if (!this.alive) throw new GraftError(`${this.what} was disposed`);
  }

  private resolveScale(explicit: number | undefined): number {
    const pending = this.pendingClip?.gradScale;
    if (explicit !== undefined && pending !== undefined && explicit !== pending) {
      throw new GraftError(`${this.what}.step: gradScale ${explicit} differs from the gradScale ${pending} given to clipGradNorm`);
    }
    const s = explicit ?? pending ?? 1;
    if (!(s > 0) || !Number.isFinite(s)) throw new GraftError(`${this.what}.step: gradScale must be finite and > 0, got ${s}`);
    return s;
  }

  private stateView(arena: FlatArena, i: number): Tensor {
    const s = arena.segments[i]!;
    return Tensor.view(this.rt, arena.chunks[s.chunk]!.storage, this.params[i]!.shape, 'f32', s.offset * 4);
  }

  private copyHyper(src: H): H {
    const out: Partial<H> = {};
    for (const k of this.hyperKeys) {
      const v = src[k];
      out[k] = (Array.isArray(v) ? [...v] : v) as H[typeof k];
    }
    return out as H;
  }

  private saveGroup(g: GroupState<H>, gi: number): SavedGroup<H> {
    return { ...this.copyHyper(g), name: g.name, initialLr: g.initialLr, params: this.indicesOf(gi) };
  }
}

