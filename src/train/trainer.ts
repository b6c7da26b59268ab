// The training loop: accumulate → clip → step → schedule per optimizer step, sparse loss readback, evaluation, early stopping, checkpoints, stop/NaN/OOM handling.
import { join, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { DeviceError, GraftError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Tensor, keep, scope } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { backward } from '../autograd/engine.js';
import { noGrad } from '../autograd/grad-mode.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { BaseHyper } from '../optim/groups.js';
import type { LRScheduler } from '../optim/schedulers.js';
import type { LoaderState } from '../data/loader.js';
import { startProgress, type Progress } from '../cli/progress.js';
import type { EvalMetrics } from './metrics.js';
import {
  pruneCheckpoints,
  readCheckpoint,
  readPointer,
  resolveCheckpointDir,
  restoreModel,
  restoreOptimizer,
  saveCheckpoint,
  setPointer,
  type BestRecord,
  type LoadedCheckpoint,
} from './checkpoint.js';

/** Training diverged: the loss became NaN or ±Inf. */
export class DivergenceError extends GraftError {
  override name = 'DivergenceError';
}

export type Monitor = 'accuracy' | 'macroF1' | 'loss';

/** One line of the training log (--json prints each as one JSON object per line). */
export type LogRecord =
  | { type: 'train'; step: number; epoch: number; loss: number; lr: number; samplesPerSec: number }
  | ({ type: 'eval'; step: number; epoch: number } & EvalMetrics)
  | { type: 'checkpoint'; step: number; dir: string; best: boolean }
  | { type: 'stop'; step: number; reason: StopReason; message: string };

export type StopReason = 'completed' | 'early-stopping' | 'interrupted';

/** What the trainer needs from a loader (DataLoader fits). */
export interface TrainLoader<B> {
  next(): B;
  state(): LoaderState;
  setState(s: LoaderState): void;
  readonly examplesPerEpoch: number;
  /** Batches per epoch. */
  readonly length: number;
}

export interface TrainerOptions<B, H extends BaseHyper = BaseHyper> {
  rt: Runtime;
  /** Saved in checkpoints (every parameter and buffer). */
  model: Module;
  optimizer: Optimizer<H>;
  scheduler?: LRScheduler;
  loader: TrainLoader<B>;
  /** Mean loss [1] of one micro-batch (runs inside the step's scope, with gradients enabled). */
  loss: (batch: B) => Tensor;
  /** Examples in a batch (for samples/s). */
  batchSize: (batch: B) => number;
  /** Evaluation on held-out data (the trainer switches nothing: the callback sets eval/train modes). */
  evaluate?: () => Promise<EvalMetrics>;
  /** Called at the start of every epoch, also the one a resumed run continues (gradual unfreezing). */
  onEpochStart?: (epoch: number) => void;
  epochs: number;
  /** Stop after this many optimizer steps (default: epochs · batches per epoch / accumulate). */
  maxSteps?: number;
  /** Micro-batches per optimizer step (default 1). */
  accumulate?: number;
  /** Clip the global gradient norm to this (default: no clipping). */
  clipNorm?: number;
  /** Read the loss back every this many steps (default 10). */
  logEvery?: number;
  /** Evaluate every this many steps (default: only at epoch ends). */
  evalEvery?: number;
  /** Evaluate at each epoch end (default true when evaluate is given). */
  evalAtEpochEnd?: boolean;
  /** Stop after this many evaluations without improvement (default: never). */
  patience?: number;
  monitor?: Monitor;
  /** Checkpoint folder root; without it nothing is saved. */
  outDir?: string;
  /** Newest checkpoints to keep besides the best (default 2). */
  keepLast?: number;
  /** Saved in trainer.json. */
  config?: Record<string, unknown>;
  /** Receives every log record. */
  onLog?: (r: LogRecord) => void;
  /** Draw a progress bar on stderr (default false). */
  progress?: boolean;
}

export interface TrainResult {
  reason: StopReason;
  steps: number;
  epoch: number;
  /** Mean loss of each logged interval, in order. */
  losses: { step: number; loss: number }[];
  evals: ({ step: number } & EvalMetrics)[];
  best: BestRecord | null;
  /** Training examples per second over the whole run (readbacks and evaluations excluded). */
  samplesPerSec: number;
  lastCheckpoint: string | null;
}

const better = (m: Monitor, a: number, b: number): boolean => (m === 'loss' ? a < b : a > b);
const isOom = (e: unknown): boolean => e instanceof Error && (e instanceof DeviceError || /out of memory|OOM/i.test(e.message)) && /memory|alloc/i.test(e.message);

export class Trainer<B, H extends BaseHyper = BaseHyper> {
  step = 0;
  private best: BestRecord | null = null;
  private evalsSinceBest = 0;
  private stopRequested = false;
  private lastCheckpoint: string | null = null;
  private readonly accumulate: number;
  private readonly monitor: Monitor;
  private readonly totalSteps: number;

  constructor(readonly o: TrainerOptions<B, H>) {
    this.accumulate = o.accumulate ?? 1;
    if (!Number.isInteger(this.accumulate) || this.accumulate < 1) throw new GraftError(`Trainer: accumulate must be a positive integer, got ${o.accumulate}`);
    if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new GraftError(`Trainer: epochs must be a positive integer, got ${o.epochs}`);
    this.monitor = o.monitor ?? 'accuracy';
    const perEpoch = o.loader.length;
    this.totalSteps = o.maxSteps ?? Math.max(1, Math.floor((o.epochs * perEpoch) / this.accumulate));
  }

  /** Finish the current step, save a checkpoint and return (the SIGINT handler calls this). */
  requestStop(): void {
    this.stopRequested = true;
  }

  get stopping(): boolean {
    return this.stopRequested;
  }

  /** Restore model, optimizer, scheduler, loader position and early-stopping state from a checkpoint (folder or output root). */
  async resume(path: string): Promise<LoadedCheckpoint> {
    const dir = await resolveCheckpointDir(path);
    const ck = await readCheckpoint(dir);
    restoreModel(this.o.rt, this.o.model, ck);
    restoreOptimizer(this.o.rt, this.o.optimizer, ck);
    const t = ck.trainer;
    if (this.o.scheduler) {
      if (!t.scheduler) throw new GraftError(`${dir}: saved without a scheduler, this run uses one`);
      this.o.scheduler.loadStateDict(t.scheduler);
    }
    this.o.loader.setState(t.loader);
    this.step = t.step;
    this.best = t.best;
    this.evalsSinceBest = t.evalsSinceBest;
    this.lastCheckpoint = dir;
    await this.o.rt.sync();
    return ck;
  }

  private emit(r: LogRecord): void {
    this.o.onLog?.(r);
  }

  private epochOf(): number {
    const s = this.o.loader.state();
    return s.index >= this.o.loader.examplesPerEpoch ? s.epoch + 1 : s.epoch;
  }

  private async save(best: boolean): Promise<string | null> {
    const out = this.o.outDir;
    if (!out) return null;
    const root = resolve(out);
    await mkdir(root, { recursive: true });
    const dir = join(root, `step-${String(this.step).padStart(6, '0')}`);
    if (best && this.best) this.best = { ...this.best, dir: `step-${String(this.step).padStart(6, '0')}` };
    await saveCheckpoint(dir, {
      model: this.o.model,
      optimizer: this.o.optimizer,
      trainer: {
        step: this.step,
        epoch: this.epochOf(),
        loader: this.o.loader.state(),
        scheduler: this.o.scheduler?.stateDict() ?? null,
        best: this.best,
        evalsSinceBest: this.evalsSinceBest,
        config: this.o.config ?? {},
      },
    });
    await setPointer(root, 'last', dir, { step: this.step });
    if (best && this.best) await setPointer(root, 'best', dir, { step: this.step, metric: this.best.metric, value: this.best.value });
    const bestDir = await readPointer(root, 'best');
    await pruneCheckpoints(root, this.o.keepLast ?? 2, bestDir ? [bestDir, dir] : [dir]);
    this.lastCheckpoint = dir;
    this.emit({ type: 'checkpoint', step: this.step, dir, best });
    return dir;
  }

  /** Run until the step budget, early stopping, or requestStop(); throws DivergenceError on a NaN/Inf loss. */
  async fit(): Promise<TrainResult> {
    const { rt, loader, optimizer: opt, scheduler } = this.o;
    const logEvery = this.o.logEvery ?? 10;
    const evalAtEpochEnd = this.o.evalAtEpochEnd ?? !!this.o.evaluate;
    const losses: TrainResult['losses'] = [];
    const evals: TrainResult['evals'] = [];
    const k = this.accumulate;
    let lossSum: Tensor | null = null;
    let lossCount = 0;
    let intervalStart = this.step;
    let intervalSamples = 0;
    let intervalT0 = performance.now();
    let trainSeconds = 0;
    let trainSamples = 0;
    let epoch = this.epochOf();
    let reason: StopReason = 'completed';
    const bar: Progress = startProgress('train', { total: this.totalSteps, unit: 'steps', enabled: this.o.progress ? undefined : false });
    bar.update(this.step);
    this.o.onEpochStart?.(epoch);

    /** Read the accumulated loss; throws on NaN/Inf. Returns the interval's mean loss. */
    const flush = async (): Promise<void> => {
      if (!lossSum) return;
      const v = (await lossSum.read())[0]! / lossCount;
      lossSum.dispose();
      lossSum = null;
      lossCount = 0;
      const secs = (performance.now() - intervalT0) / 1000;
      trainSeconds += secs;
      trainSamples += intervalSamples;
      const sps = secs > 0 ? intervalSamples / secs : 0;
      if (!Number.isFinite(v)) {
        const where = intervalStart + 1 === this.step ? `step ${this.step}` : `steps ${intervalStart + 1}..${this.step} (read back at step ${this.step})`;
        const keepMsg = this.lastCheckpoint ? `; the last good checkpoint ${this.lastCheckpoint} is kept` : '';
        throw new DivergenceError(`training diverged: loss is ${v} at ${where}; lower --lr or enable clipping${keepMsg}`);
      }
      losses.push({ step: this.step, loss: v });
      this.emit({ type: 'train', step: this.step, epoch, loss: v, lr: opt.paramGroups[opt.paramGroups.length - 1]!.lr, samplesPerSec: sps });
      bar.label(`train loss ${v.toFixed(4)}`);
      intervalStart = this.step;
      intervalSamples = 0;
      intervalT0 = performance.now();
    };

    const runEval = async (): Promise<boolean> => {
      if (!this.o.evaluate) return false;
      await flush();
      const m = await this.o.evaluate();
      evals.push({ step: this.step, ...m });
      this.emit({ type: 'eval', step: this.step, epoch, ...m });
      const v = m[this.monitor];
      const improved = !this.best || better(this.monitor, v, this.best.value);
      if (improved) {
        this.best = { metric: this.monitor, value: v, step: this.step, dir: '' };
        this.evalsSinceBest = 0;
      } else this.evalsSinceBest++;
      await this.save(improved);
      intervalT0 = performance.now();
      return this.o.patience !== undefined && this.evalsSinceBest >= this.o.patience;
    };

    try {
      while (this.step < this.totalSteps) {
        let samples = 0;
        let epochEnded = false;
        try {
          scope(rt, () => {
            opt.zeroGrad();
            for (let i = 0; i < k; i++) {
              const batch = loader.next();
              samples += this.o.batchSize(batch);
              const loss = this.o.loss(batch);
              backward(loss);
              const prev: Tensor | null = lossSum;
              lossSum = keep(noGrad(() => (prev ? F.add(prev, loss) : F.add(loss, 0))));
              prev?.dispose();
              lossCount++;
              const s = loader.state();
              if (s.index >= loader.examplesPerEpoch) epochEnded = true;
            }
            if (this.o.clipNorm !== undefined) opt.clipGradNorm(this.o.clipNorm, { gradScale: 1 / k });
            opt.step({ gradScale: 1 / k });
            scheduler?.step();
          });
          rt.submit();
        } catch (e) {
          if (isOom(e)) throw new GraftError(`out of GPU memory at step ${this.step + 1} (${(e as Error).message.split('\n')[0]}); try a smaller --batch (or --accumulate to keep the effective batch)`);
          throw e;
        }
        this.step++;
        intervalSamples += samples;
        bar.update(this.step);
        if (this.step % logEvery === 0 || this.step === this.totalSteps) await flush();
        let stop = false;
        if (this.o.evalEvery && this.step % this.o.evalEvery === 0) stop = await runEval();
        if (epochEnded) {
          if (evalAtEpochEnd && !(this.o.evalEvery && this.step % this.o.evalEvery === 0)) stop = (await runEval()) || stop;
          epoch = this.epochOf();
          if (this.step < this.totalSteps) this.o.onEpochStart?.(epoch);
        }
        if (stop) {
          reason = 'early-stopping';
          break;
        }
        if (this.stopRequested) {
          reason = 'interrupted';
          break;
        }
      }
      await flush();
      if (this.o.outDir && (!this.lastCheckpoint || !this.lastCheckpoint.endsWith(`step-${String(this.step).padStart(6, '0')}`))) await this.save(false);
    } finally {
      bar.stop();
      if (lossSum) (lossSum as Tensor).dispose();
    }
    const message =
      reason === 'interrupted'
        ? `interrupted at step ${this.step}; resume with --resume ${this.o.outDir ?? '(no --out given: nothing saved)'}`
        : reason === 'early-stopping'
          ? `early stopping at step ${this.step}: ${this.monitor} did not improve for ${this.o.patience} evaluations`
          : `finished ${this.step} steps`;
    this.emit({ type: 'stop', step: this.step, reason, message });
    return {
      reason,
      steps: this.step,
      epoch: this.epochOf(),
      losses,
      evals,
      best: this.best,
      samplesPerSec: trainSeconds > 0 ? trainSamples / trainSeconds : 0,
      lastCheckpoint: this.lastCheckpoint,
    };
  }
}
