// Training-step benchmark: a full step (forward, cross-entropy, backward, clip, AdamW, scheduler) of a small MLP, CNN or TinyEncoder, timed per step (normal or whole-step capture replay), with dispatches, submits and peak pool memory.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { Tensor, keep, scope } from '../tensor.js';
import { backward } from '../autograd/engine.js';
import * as F from '../autograd/functional.js';
import { Rng } from '../autograd/random.js';
import type { Module } from '../nn/module.js';
import { AdamW, clipGradNorm, linearWarmupDecay, type LRScheduler } from '../optim/index.js';
import { MLP, SmallCNN, TinyEncoder } from '../models/small.js';
import { captureStep, type CapturedStep } from '../runtime/capture.js';
import { median } from './measure.js';
import { adapterName } from './run.js';

export type TrainStepModel = 'mlp' | 'cnn' | 'encoder';
export const TRAIN_STEP_MODELS: readonly TrainStepModel[] = ['mlp', 'cnn', 'encoder'];

/** TinyEncoder benchmark config: vocab 50, d 32, 4 heads, ff 64, 2 layers, 16 tokens, 3 classes. */
const ENC = { vocab: 50, dModel: 32, heads: 4, dimFeedforward: 64, layers: 2, maxLen: 16, classes: 3 } as const;

/** MLP layer sizes used by the benchmark (an MNIST-sized classifier). */
export const BENCH_MLP_SIZES = [784, 512, 256, 10] as const;

export interface TrainerOptions {
  /** Seed for the weights and the synthetic batch. Default 0. */
  seed?: number;
  /** AdamW lr (default 1e-3) and clip threshold (default 1.0). */
  lr?: number;
  clip?: number;
  /** Linear warm-up / decay lengths of the lr schedule. Default 10 / 1000. */
  warmupSteps?: number;
  totalSteps?: number;
}

/** One model, its optimizer and scheduler, and a fixed synthetic batch on the GPU. */
export interface Trainer {
  readonly model: Module;
  readonly name: TrainStepModel;
  readonly batch: number;
  readonly opt: AdamW;
  readonly sched: LRScheduler;
  /** Record one training step and submit it (exactly one queue.submit). Returns the loss [1]; the caller disposes it. */
  step(): Tensor;
  /** Record one training step on the fixed batch without submitting (what a capture records). */
  record(): Tensor;
  /** The fixed batch [x, labels] the step reads. */
  readonly inputs: readonly Tensor[];
  /** Human-readable model description. */
  readonly label: string;
  /** Trainable parameter elements. */
  readonly paramCount: number;
  dispose(): void;
}

/** Input shape of one batch for `name`. */
export function trainInputShape(name: TrainStepModel, batch: number): number[] {
  if (name === 'encoder') return [batch, ENC.maxLen];
  return name === 'mlp' ? [batch, BENCH_MLP_SIZES[0]] : [batch, 3, 16, 16];
}

function buildModel(rt: Runtime, name: TrainStepModel, rng: Rng): { model: Module; forward: (x: Tensor) => Tensor; label: string; classes: number } {
  if (name === 'mlp') {
    const m = new MLP(rt, BENCH_MLP_SIZES, { rng });
    return { model: m, forward: (x) => m.forward(x), label: `MLP ${BENCH_MLP_SIZES.join('→')}`, classes: 10 };
  }
  if (name === 'cnn') {
    const m = new SmallCNN(rt, { rng });
    return { model: m, forward: (x) => m.forward(x), label: 'SmallCNN conv3×3(3→8)+BN+ReLU+maxpool+linear(512→10) on 3×16×16', classes: 10 };
  }
  const m = new TinyEncoder(rt, { ...ENC, rng });
  const label = `TinyEncoder ${ENC.layers}×(d ${ENC.dModel}, ${ENC.heads} heads, ff ${ENC.dimFeedforward}) on ${ENC.maxLen} tokens, ${ENC.classes} classes`;
  return { model: m, forward: (x) => m.forward(x), label, classes: ENC.classes };
}

/**
 * Build the benchmark model (MLP 784→512→256→10, or SmallCNN on 3×16×16), AdamW (weight decay
 * 0.01) with linear warm-up/decay, and a fixed random batch with labels in [0, 10).
 */
export function makeTrainer(rt: Runtime, name: TrainStepModel, batch: number, opts: TrainerOptions = {}): Trainer {
  if (!TRAIN_STEP_MODELS.includes(name)) throw new GraftError(`unknown train-step model '${String(name)}' (known: ${TRAIN_STEP_MODELS.join(', ')})`);
  if (!Number.isInteger(batch) || batch < 1) throw new GraftError(`batch must be a positive integer, got ${batch}`);
  const rng = new Rng(opts.seed ?? 0);
  const { model, forward, label, classes } = buildModel(rt, name, rng);
  const shape = trainInputShape(name, batch);
  const n = shape.reduce((a, b) => a * b, 1);
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = name === 'encoder' ? Math.floor(rng.next() * ENC.vocab) : rng.normal();
  const ys = Array.from({ length: batch }, () => Math.floor(rng.next() * classes));
  const x = keep(Tensor.from(rt, xs, shape, name === 'encoder' ? 'i32' : 'f32'));
  const y = keep(Tensor.from(rt, ys, [batch], 'i32'));
  const opt = new AdamW(model.parameters(), { lr: opts.lr ?? 1e-3, weightDecay: 0.01 });
  const sched = linearWarmupDecay(opt, opts.warmupSteps ?? 10, opts.totalSteps ?? 1000);
  const clip = opts.clip ?? 1.0;
  const record = (): Tensor =>
    scope(rt, () => {
      opt.zeroGrad();
      const l = F.crossEntropy(forward(x), y);
      backward(l);
      clipGradNorm(opt, clip); // reduced on the GPU, applied inside step(); the returned norm is a temporary
      opt.step();
      sched.step();
      return l;
    });
  const paramCount = model.parameters().reduce((s, p) => s + p.size, 0);
  return {
    model,
    name,
    batch,
    opt,
    sched,
    label,
    paramCount,
    inputs: [x, y],
    record,
    step() {
      const loss = record();
      rt.submit();
      return loss;
    },
    dispose() {
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

export interface TrainStepBenchOptions {
  model: TrainStepModel;
  batch: number;
  /** Timed steps (default 20). */
  steps?: number;
  /** Untimed steps first: pipeline compiles, pool warm-up (default 3). */
  warmup?: number;
  seed?: number;
  /**
   * Whole-step capture: the first warm-up step records the step, every later step replays it
   * (prebuilt bind groups, no JS autograd); needs warmup >= 1. Default false.
   */
  capture?: boolean;
  /** Called after every step, warm-up included. */
  onProgress?: (done: number, total: number) => void;
}

export interface TrainStepResult {
  adapter: string;
  model: TrainStepModel;
  label: string;
  batch: number;
  steps: number;
  warmup: number;
  paramCount: number;
  /** Timed steps were replays of a whole-step capture. */
  captured: boolean;
  /** Median wall-clock time of one step: record + submit + wait for the GPU queue. */
  stepMs: number;
  minStepMs: number;
  /** Median host time to record (or replay-encode) and submit one step (the rest is GPU execution). */
  recordMs: number;
  /** Pool bytes reserved by the capture (activations and temporaries of the step); 0 without capture. */
  pinnedBytes: number;
  /** batch / stepMs. */
  samplesPerSec: number;
  /** Compute dispatches per step (the most seen over the timed steps). */
  dispatchesPerStep: number;
  /** queue.submit calls per step (the most seen over the timed steps). */
  submitsPerStep: number;
  /** Highest pool memory handed out during the timed steps (activations, temporaries, the batch). */
  peakBytes: number;
  /** Pool buffers created during the timed steps (0 in a steady state). */
  buffersCreated: number;
  /** Loss of the last step (read once at the end). */
  finalLoss: number;
  timer: 'wall-clock';
}

/**
 * Run `warmup + steps` training steps, each synced so its wall-clock time covers recording, the
 * submit and GPU execution; count dispatches and submits per step from `rt.stats`, peak pool
 * bytes from `rt.pool.stats` (reset after warm-up).
 */
export async function benchTrainStep(rt: Runtime, o: TrainStepBenchOptions): Promise<TrainStepResult> {
  const steps = o.steps ?? 20;
  const warmup = o.warmup ?? 3;
  if (!Number.isInteger(steps) || steps < 1) throw new GraftError(`steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new GraftError(`warmup must be a non-negative integer, got ${warmup}`);
  if (o.capture && warmup < 1) throw new GraftError('capture needs at least 1 warm-up step: the first one records the step');
  const total = warmup + steps;
  const tr = makeTrainer(rt, o.model, o.batch, { seed: o.seed, warmupSteps: Math.min(10, total), totalSteps: 10 * total });
  let cap: CapturedStep | null = null;
  try {
    await rt.sync();
    let pinnedBytes = 0;
    const stepMs: number[] = [];
    const recordMs: number[] = [];
    let dispatches = 0;
    let submits = 0;
    let created = 0;
    let last: Tensor | null = null;
    for (let i = 0; i < total; i++) {
      if (i === warmup) {
        rt.pool.resetPeak();
        created = rt.pool.stats.created;
      }
      last?.dispose(); // before the step, so its buffer is reused (no second loss buffer)
      const d0 = rt.stats.dispatches;
      const s0 = rt.stats.submits;
      const t0 = performance.now();
      if (o.capture && !cap) {
        // the first (warm-up) step records the capture: it runs the step for real, one submit
        const c = captureStep(rt, () => tr.record(), { inputs: tr.inputs });
        cap = c;
        pinnedBytes = rt.pool.stats.pinnedBytes;
        last = c.outputs[0]!.reshape(c.outputs[0]!.shape);
      } else last = cap ? cap.replay()[0]! : tr.step();
      const t1 = performance.now();
      await rt.sync();
      const t2 = performance.now();
      if (i >= warmup) {
        stepMs.push(t2 - t0);
        recordMs.push(t1 - t0);
        dispatches = Math.max(dispatches, rt.stats.dispatches - d0);
        submits = Math.max(submits, rt.stats.submits - s0);
      }
      o.onProgress?.(i + 1, total);
    }
    const peakBytes = rt.pool.stats.peakBytes;
    const buffersCreated = rt.pool.stats.created - created;
    const finalLoss = last ? (await last.read())[0]! : NaN;
    last?.dispose();
    const med = median(stepMs);
    return {
      adapter: adapterName(rt),
      model: o.model,
      label: tr.label,
      batch: o.batch,
      steps,
      warmup,
      paramCount: tr.paramCount,
      captured: !!cap,
      stepMs: med,
      minStepMs: Math.min(...stepMs),
      recordMs: median(recordMs),
      pinnedBytes,
      samplesPerSec: (o.batch * 1000) / med,
      dispatchesPerStep: dispatches,
      submitsPerStep: submits,
      peakBytes,
      buffersCreated,
      finalLoss,
      timer: 'wall-clock',
    };
  } finally {
    cap?.dispose();
    tr.dispose();
  }
}

/** The same benchmark without and with whole-step capture (fresh model each, same seed). */
export interface TrainStepComparison {
  uncaptured: TrainStepResult;
  captured: TrainStepResult;
  /** uncaptured.recordMs / captured.recordMs: host encode time per step, how many times less. */
  encodeSpeedup: number;
  /** uncaptured.stepMs / captured.stepMs. */
  stepSpeedup: number;
  /** Both runs ended on the same loss (capture replays the step exactly). */
  sameLoss: boolean;
}

/** Run benchTrainStep without, then with capture. */
export async function compareTrainStepCapture(rt: Runtime, o: TrainStepBenchOptions): Promise<TrainStepComparison> {
  if ((o.warmup ?? 3) < 1) throw new GraftError('capture needs at least 1 warm-up step: the first one records the step');
  const total = (o.warmup ?? 3) + (o.steps ?? 20);
  const half = (offset: number) => (done: number) => o.onProgress?.(offset + done, 2 * total);
  const uncaptured = await benchTrainStep(rt, { ...o, capture: false, onProgress: half(0) });
  const captured = await benchTrainStep(rt, { ...o, capture: true, onProgress: half(total) });
  return {
    uncaptured,
    captured,
    encodeSpeedup: uncaptured.recordMs / captured.recordMs,
    stepSpeedup: uncaptured.stepMs / captured.stepMs,
    sameLoss: Math.abs(uncaptured.finalLoss - captured.finalLoss) <= 1e-6,
  };
}

const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

function fmtBytes(b: number): string {
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(2)} MiB`;
  if (b >= 1 << 10) return `${(b / (1 << 10)).toFixed(1)} KiB`;
  return `${b} B`;
}

/** Lines for the CLI's text output. */
export function formatTrainStep(r: TrainStepResult): string[] {
  const sps = r.samplesPerSec >= 100 ? r.samplesPerSec.toFixed(0) : r.samplesPerSec.toFixed(1);
  return [
    `adapter     ${r.adapter}`,
    `model       ${r.label} (${r.paramCount} params), batch ${r.batch}; AdamW + clip 1.0 + linear warm-up/decay, f32`,
    `step        ${fmtMs(r.stepMs)} ms median (min ${fmtMs(r.minStepMs)} ms; ${r.captured ? 'replay encode' : 'recording'} ${fmtMs(r.recordMs)} ms of it) ` +
      `over ${r.steps} steps after ${r.warmup} warm-up   timer: wall-clock (record + submit + wait)`,
    `throughput  ${sps} samples/s`,
    `per step    ${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submit${r.submitsPerStep === 1 ? '' : 's'}`,
    `memory      peak pool ${fmtBytes(r.peakBytes)}${r.captured ? ` + ${fmtBytes(r.pinnedBytes)} pinned by the capture` : ''}, ${r.buffersCreated} buffers created while timing`,
    `loss        ${r.finalLoss.toFixed(4)} after the last step`,
  ];
}

/** Lines for `--capture`: both runs and the ratios. */
export function formatTrainStepComparison(c: TrainStepComparison): string[] {
  const u = c.uncaptured;
  const k = c.captured;
  return [
    ...formatTrainStep(u).slice(0, 2),
    `encode      ${fmtMs(u.recordMs)} ms/step normal -> ${fmtMs(k.recordMs)} ms/step captured replay (${c.encodeSpeedup.toFixed(1)}× less host time)`,
    `step        ${fmtMs(u.stepMs)} ms normal -> ${fmtMs(k.stepMs)} ms captured (${c.stepSpeedup.toFixed(2)}×), median over ${u.steps} steps after ${u.warmup} warm-up, wall-clock`,
    `per step    ${u.dispatchesPerStep} dispatches normal, ${k.dispatchesPerStep} replayed; ${k.submitsPerStep} submit`,
    `memory      peak pool ${fmtBytes(u.peakBytes)} normal; ${fmtBytes(k.pinnedBytes)} pinned by the capture`,
    `loss        ${u.finalLoss.toFixed(6)} normal, ${k.finalLoss.toFixed(6)} captured (${c.sameLoss ? 'same' : 'DIFFERENT'})`,
  ];
}
