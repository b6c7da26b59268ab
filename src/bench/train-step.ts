// Training-step benchmark: a full step (forward, cross-entropy, backward, clip, AdamW, scheduler) of a small MLP or CNN, timed per step, with dispatches, submits and peak pool memory.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { Tensor, keep, scope } from '../tensor.js';
import { backward } from '../autograd/engine.js';
import * as F from '../autograd/functional.js';
import { Rng } from '../autograd/random.js';
import type { Module } from '../nn/module.js';
import { AdamW, clipGradNorm, linearWarmupDecay, type LRScheduler } from '../optim/index.js';
import { MLP, SmallCNN } from '../models/small.js';
import { median } from './measure.js';
import { adapterName } from './run.js';

export type TrainStepModel = 'mlp' | 'cnn';
export const TRAIN_STEP_MODELS: readonly TrainStepModel[] = ['mlp', 'cnn'];

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
  /** Human-readable model description. */
  readonly label: string;
  /** Trainable parameter elements. */
  readonly paramCount: number;
  dispose(): void;
}

/** Input shape of one batch for `name`. */
export function trainInputShape(name: TrainStepModel, batch: number): number[] {
  return name === 'mlp' ? [batch, BENCH_MLP_SIZES[0]] : [batch, 3, 16, 16];
}

/**
 * Build the benchmark model (MLP 784→512→256→10, or SmallCNN on 3×16×16), AdamW (weight decay
 * 0.01) with linear warm-up/decay, and a fixed random batch with labels in [0, 10).
 */
export function makeTrainer(rt: Runtime, name: TrainStepModel, batch: number, opts: TrainerOptions = {}): Trainer {
  if (!TRAIN_STEP_MODELS.includes(name)) throw new GraftError(`unknown train-step model '${String(name)}' (known: ${TRAIN_STEP_MODELS.join(', ')})`);
  if (!Number.isInteger(batch) || batch < 1) throw new GraftError(`batch must be a positive integer, got ${batch}`);
  const rng = new Rng(opts.seed ?? 0);
  const model = name === 'mlp' ? new MLP(rt, BENCH_MLP_SIZES, { rng }) : new SmallCNN(rt, { rng });
  const shape = trainInputShape(name, batch);
  const n = shape.reduce((a, b) => a * b, 1);
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = rng.normal();
  const ys = Array.from({ length: batch }, () => Math.floor(rng.next() * 10));
  const x = keep(Tensor.from(rt, xs, shape));
  const y = keep(Tensor.from(rt, ys, [batch], 'i32'));
  const opt = new AdamW(model.parameters(), { lr: opts.lr ?? 1e-3, weightDecay: 0.01 });
  const sched = linearWarmupDecay(opt, opts.warmupSteps ?? 10, opts.totalSteps ?? 1000);
  const clip = opts.clip ?? 1.0;
  const label = name === 'mlp' ? `MLP ${BENCH_MLP_SIZES.join('→')}` : 'SmallCNN conv3×3(3→8)+BN+ReLU+maxpool+linear(512→10) on 3×16×16';
  const paramCount = model.parameters().reduce((s, p) => s + p.size, 0);
  return {
    model,
    name,
    batch,
    opt,
    sched,
    label,
    paramCount,
    step() {
      const loss = scope(rt, () => {
        opt.zeroGrad();
        const l = F.crossEntropy(model.forward(x), y);
        backward(l);
        clipGradNorm(opt, clip); // reduced on the GPU, applied inside step(); the returned norm is a temporary
        opt.step();
        sched.step();
        return l;
      });
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
  /** Median wall-clock time of one step: record + submit + wait for the GPU queue. */
  stepMs: number;
  minStepMs: number;
  /** Median host time to record and submit one step (the rest is GPU execution). */
  recordMs: number;
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
  const total = warmup + steps;
  const tr = makeTrainer(rt, o.model, o.batch, { seed: o.seed, warmupSteps: Math.min(10, total), totalSteps: 10 * total });
  try {
    await rt.sync();
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
      last = tr.step();
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
      stepMs: med,
      minStepMs: Math.min(...stepMs),
      recordMs: median(recordMs),
      samplesPerSec: (o.batch * 1000) / med,
      dispatchesPerStep: dispatches,
      submitsPerStep: submits,
      peakBytes,
      buffersCreated,
      finalLoss,
      timer: 'wall-clock',
    };
  } finally {
    tr.dispose();
  }
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
    `step        ${fmtMs(r.stepMs)} ms median (min ${fmtMs(r.minStepMs)} ms; recording ${fmtMs(r.recordMs)} ms of it) ` +
      `over ${r.steps} steps after ${r.warmup} warm-up   timer: wall-clock (record + submit + wait)`,
    `throughput  ${sps} samples/s`,
    `per step    ${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submit${r.submitsPerStep === 1 ? '' : 's'}`,
    `memory      peak pool ${fmtBytes(r.peakBytes)}, ${r.buffersCreated} buffers created while timing`,
    `loss        ${r.finalLoss.toFixed(4)} after the last step`,
  ];
}
