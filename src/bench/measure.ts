// measure(): times recorded GPU work on the GPU timeline (timestamp queries) or by wall clock, and says which.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { scope } from '../tensor.js';

/** How a sample was timed. */
export type Timer = 'gpu-timestamp' | 'wall-clock';

export interface MeasureOptions {
  /** Untimed runs first (pipeline compiles, pool warm-up). Default 2. */
  warmup?: number;
  /** Timed runs. Default 10. */
  repeats?: number;
  /**
   * 'auto' (default): GPU timestamps when the device has timestamp-query, else wall clock.
   * 'wall-clock': record + submit + wait for the queue, timed on the host; use it to compare with a
   * peer library timed the same way in the same run.
   */
  timer?: 'auto' | Timer;
  /** Called after every run, warm-up included: (done, total). For progress bars. */
  onRun?: (done: number, total: number) => void;
}

export interface Measurement {
  medianMs: number;
  minMs: number;
  /** One entry per timed run, in run order. */
  samplesMs: number[];
  timer: Timer;
}

/** Median of a non-empty list (mean of the middle two for even lengths). */
export function median(xs: readonly number[]): number {
  if (!xs.length) throw new RangeError('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** GFLOP/s for `flops` floating-point operations done in `ms` milliseconds. */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}

/** The timer `measure` would use on this runtime for the given request. */
export function resolveTimer(rt: Runtime, timer: MeasureOptions['timer'] = 'auto'): Timer {
  if (timer === 'wall-clock') return 'wall-clock';
  if (timer === 'gpu-timestamp' && !rt.features.timestamps) {
    throw new GraftError('timer gpu-timestamp requested but the device has no timestamp-query feature');
  }
  return rt.features.timestamps ? 'gpu-timestamp' : 'wall-clock';
}

function checkCounts(warmup: number, repeats: number): void {
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError(`warmup must be a non-negative integer, got ${warmup}`);
  if (!Number.isInteger(repeats) || repeats < 1) throw new RangeError(`repeats must be a positive integer, got ${repeats}`);
}

function summarise(samplesMs: number[], timer: Timer): Measurement {
  return { medianMs: median(samplesMs), minMs: Math.min(...samplesMs), samplesMs, timer };
}

/**
 * Run `fn` (which records GPU work, e.g. `() => matmul(a, b)`) `warmup + repeats` times and time
 * the last `repeats`. Every tensor `fn` creates, its result included, is disposed after each run, so
 * steady-state runs take their buffers from the pool and allocate nothing new. Pending work is
 * drained before timing starts.
 */
export async function measure(rt: Runtime, fn: () => unknown, opts: MeasureOptions = {}): Promise<Measurement> {
  const warmup = opts.warmup ?? 2;
  const repeats = opts.repeats ?? 10;
  checkCounts(warmup, repeats);
  const timer = resolveTimer(rt, opts.timer);
  const record = (): void => {
    scope(rt, () => {
      fn();
    });
  };
  await rt.sync();
  if (timer === 'wall-clock') {
    return measureAsync(
      async () => {
        record();
        await rt.sync();
      },
      { warmup, repeats, onRun: opts.onRun },
    );
  }
  const total = warmup + repeats;
  const samplesMs: number[] = [];
  for (let i = 0; i < total; i++) {
    const t = await rt.timeGpu(record);
    if (!t) throw new Error('timeGpu returned no timings although the device has timestamp-query');
    if (i >= warmup) samplesMs.push(t.totalMs);
    opts.onRun?.(i + 1, total);
  }
  return summarise(samplesMs, timer);
}

/**
 * Wall-clock timing of an async run that finishes only when its work is done (e.g. records an op
 * and waits for the GPU queue). Used for graft's wall-clock mode and for peer libraries alike, so
 * same-run comparisons time both sides the same way.
 */
export async function measureAsync(
  run: () => Promise<void>,
  opts: Omit<MeasureOptions, 'timer'> = {},
): Promise<Measurement> {
  const warmup = opts.warmup ?? 2;
  const repeats = opts.repeats ?? 10;
  checkCounts(warmup, repeats);
  const total = warmup + repeats;
  const samplesMs: number[] = [];
  for (let i = 0; i < total; i++) {
    const t0 = performance.now();
    await run();
    const ms = performance.now() - t0;
    if (i >= warmup) samplesMs.push(ms);
    opts.onRun?.(i + 1, total);
  }
  return summarise(samplesMs, 'wall-clock');
}

/** How to print the timer a measurement used, with the reason when it is the wall clock. */
export function describeTimer(rt: Runtime, timer: Timer): string {
  if (timer === 'gpu-timestamp') return 'gpu-timestamp';
  if (rt.features.timestamps) return 'wall-clock (requested)';
  return rt.adapter.features.has('timestamp-query')
    ? 'wall-clock (timestamp-query not enabled on this device)'
    : 'wall-clock (no timestamp-query on this adapter)';
}
