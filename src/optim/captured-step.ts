// captureTrainingStep: run a training step through whole-step capture, one capture per input shape (recorded on first sight, replayed after), with an uncaptured mode for comparison.
import { GraftError } from '../runtime/errors.js';
import { captureStep, type CapturedStep, type InputData } from '../runtime/capture.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, keep, scope, type DType, type Shape } from '../tensor.js';

/** One input of a batch: host data and the tensor shape/dtype it fills (dtype default f32). */
export interface BatchInput {
  data: InputData;
  shape: Shape;
  dtype?: DType;
}

export interface CapturedTrainingOptions {
  /** Captures kept at once, one per distinct input shape (oldest dropped first). Default 2 (full batch + last partial one). */
  maxShapes?: number;
  /** false: run every step uncaptured (same results, for comparison). Default true. */
  capture?: boolean;
}

interface Entry {
  cap: CapturedStep;
  inputs: Tensor[];
}

/**
 * A training step `stepFn(inputs) -> loss` (forward, loss, backward, clip, optimizer step,
 * scheduler step; everything recorded, nothing read back or submitted) run with whole-step
 * capture: the first batch of each input shape runs it for real while recording, later batches
 * of that shape replay the recording with their data written into the captured input tensors.
 * Each step() is exactly one submit (when nothing else is pending) and returns a view of the
 * loss that the next step overwrites: read it (or copy it) before then, and dispose it.
 *
 * stepFn must read its batch only through `inputs`, and must keep every tensor it uses besides
 * them (model, optimizer) alive while this object lives. Run one forward before the first step when
 * the model fills a cache lazily (a ResNet in eval mode folds its BatchNorms on first use): otherwise
 * the recording includes the cache fill and every replay repeats it (same results, more dispatches).
 */
export class CapturedTrainingStep {
  private readonly entries = new Map<string, Entry>();
  readonly maxShapes: number;
  readonly enabled: boolean;
  /** Steps recorded (first sight of a shape, or after eviction) and replayed. */
  readonly stats = { captures: 0, replays: 0 };

  constructor(
    readonly rt: Runtime,
    readonly stepFn: (inputs: readonly Tensor[]) => Tensor,
    opts: CapturedTrainingOptions = {},
  ) {
    this.maxShapes = opts.maxShapes ?? 2;
    if (!Number.isInteger(this.maxShapes) || this.maxShapes < 1) throw new GraftError(`captureTrainingStep: maxShapes must be a positive integer, got ${this.maxShapes}`);
    this.enabled = opts.capture ?? true;
  }

  /** Run one step on `batch` and submit it. Returns the loss (a view; dispose it). */
  step(batch: readonly BatchInput[]): Tensor {
    if (!this.enabled) {
      const loss = scope(this.rt, () => this.stepFn(batch.map((b) => Tensor.from(this.rt, b.data, b.shape, b.dtype ?? 'f32'))));
      this.rt.submit();
      return loss;
    }
    const key = batch.map((b) => `${b.dtype ?? 'f32'}[${b.shape.join(',')}]`).join(';');
    const hit = this.entries.get(key);
    if (hit) {
      this.stats.replays++;
      return hit.cap.replay(batch.map((b) => b.data))[0]!;
    }
    while (this.entries.size >= this.maxShapes) this.evict(this.entries.keys().next().value!);
    const inputs = batch.map((b) => keep(Tensor.from(this.rt, b.data, b.shape, b.dtype ?? 'f32')));
    let cap: CapturedStep;
    try {
      cap = captureStep(this.rt, () => this.stepFn(inputs), { inputs });
    } catch (e) {
      for (const t of inputs) t.dispose();
      throw e;
    }
    if (cap.outputs.length !== 1 || cap.outputs[0]!.size !== 1) {
      cap.dispose();
      for (const t of inputs) t.dispose();
      throw new GraftError('captureTrainingStep: stepFn must return the loss, one scalar tensor');
    }
    this.entries.set(key, { cap, inputs });
    this.stats.captures++;
    const out = cap.outputs[0]!;
    return out.reshape(out.shape);
  }

  /** Input shapes with a live capture. */
  get shapes(): string[] {
    return [...this.entries.keys()];
  }

  /** Drop every capture (pinned buffers go back to the pool) and the captured input tensors. */
  dispose(): void {
    for (const k of [...this.entries.keys()]) this.evict(k);
  }

  private evict(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    e.cap.dispose();
    for (const t of e.inputs) t.dispose();
  }
}

/** Wrap `stepFn` (inputs -> loss, recorded only) for capture-and-replay per input shape; see CapturedTrainingStep. */
export function captureTrainingStep(
  rt: Runtime,
  stepFn: (inputs: readonly Tensor[]) => Tensor,
  opts: CapturedTrainingOptions = {},
): CapturedTrainingStep {
  return new CapturedTrainingStep(rt, stepFn, opts);
}
