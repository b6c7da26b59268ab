// `graft bench finetune`, graft's side: times fine-tuning steps of ResNet / BERT under full, LoRA or linear-probe training, with encode time, dispatches, memory, FLOP rate and a per-kernel breakdown.
import type { Runtime } from '../runtime/runtime.js';
import type { Tensor } from '../tensor.js';
import { median } from './measure.js';
import { adapterName } from './run.js';
import type { FinetuneBenchSpec, PeerResult } from './finetune-spec.js';
import { makeFinetuneSetup } from './finetune-setup.js';
import { stepFlops } from './finetune-flops.js';
import { kernelBreakdown, type KernelBreakdown } from './finetune-kernels.js';
import { GraftError } from '../runtime/errors.js';
import { captureTrainingStep } from '../optim/captured-step.js';

export interface FinetuneBenchOptions {
  /** Time one extra step per dispatch with timestamp queries (default true; skipped without timestamp-query). */
  kernels?: boolean;
  /** Kernels listed in the breakdown (default 12). */
  topKernels?: number;
  /**
   * Also run the step with whole-step capture (after the uncaptured run, on a fresh model with the
   * same seed): recorded at the first warm-up step, replayed after; needs warmup ≥ 1. Default false.
   */
  capture?: boolean;
  /** Called after every step, warm-up included: (done, total); total counts both runs with capture. */
  onProgress?: (done: number, total: number) => void;
}

/** The same steps run through captureTrainingStep (one recording, then replays), next to the uncaptured run. */
export interface CaptureComparison {
  medianStepMs: number;
  minStepMs: number;
  stepMs: number[];
  samplesPerSec: number;
  /** Median host time until queue.submit returned: hooks, batch upload, re-encoding the recorded commands. */
  encodeMs: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  /** Highest live pool bytes during the timed captured steps (pinned buffers included). */
  peakPoolBytes: number;
  /** Loss after every step (warm-up included): equals the uncaptured run's (see maxLossDiff). */
  losses: number[];
  /** max over steps of |captured loss − uncaptured loss|. */
  maxLossDiff: number;
  /** Uncaptured encodeMs ÷ captured encodeMs. */
  encodeSpeedup: number;
  /** Uncaptured medianStepMs ÷ captured medianStepMs. */
  stepSpeedup: number;
  /** Steps recorded and replayed (warm-up included). */
  captures: number;
  replays: number;
}

/** graft vs one peer on the same spec, same run (both wall-clock, each step synced). */
export interface PeerComparison extends PeerResult {
  /** graft samples/s ÷ peer samples/s (NaN when the peer skipped). */
  ratio: number;
}

export interface FinetuneBenchResult {
  spec: FinetuneBenchSpec;
  adapter: string;
  /** Model and input, e.g. 'ResNet-50 (torchvision layout, random init, 10-class fc) on [8, 3, 64, 64]'. */
  label: string;
  /** What is trained and how. */
  strategyLabel: string;
  totalParams: number;
  trainableParams: number;
  /** Modules wrapped by LoRA (0 for full / linear-probe). */
  loraTargets: number;
  /** Median wall-clock time of a step: record + submit + GPU execution + the loss readback. */
  medianStepMs: number;
  minStepMs: number;
  /** Every timed step, in order. */
  stepMs: number[];
  /** batch ÷ median step time. */
  samplesPerSec: number;
  /** Median host time from the step's start until its queue.submit returned (JS recording + encoding). */
  encodeMs: number;
  /** Compute dispatches of the last timed step. */
  dispatchesPerStep: number;
  /** queue.submit calls made by recording a step (the loss readback adds one copy submit, not counted). */
  submitsPerStep: number;
  memory: {
    /** Highest live pool bytes during the timed steps: frozen weights, the batch, activations, temporaries. */
    peakPoolBytes: number;
    /** Live pool bytes when the peak was reset (before the first timed step). */
    basePoolBytes: number;
    /** Trainable parameters, their grads and AdamW's two moments: flat arenas outside the pool (16 B per trainable element). */
    trainableArenaBytes: number;
    /** peakPoolBytes + trainableArenaBytes: the step's peak GPU memory. */
    peakBytes: number;
    /** All parameters (f32). */
    weightsBytes: number;
    /** AdamW exp_avg + exp_avg_sq (f32). */
    optimizerStateBytes: number;
  };
  /** Analytic FLOPs of one step (matmul / conv / attention products only; see finetune-flops.ts). */
  flops: { forward: number; backward: number; total: number };
  /** flops.total ÷ median step time. */
  gflopsPerSec: number;
  /** Loss after every step (warm-up included). */
  losses: number[];
  /** Per-kernel GPU time of one extra step, or null (see kernelsNote). */
  kernels: KernelBreakdown | null;
  kernelsNote: string;
  timer: 'wall-clock';
  /** Filled by the CLI when peers ran. */
  peers?: PeerComparison[];
  /** With options.capture: the captured run (the fields above are the uncaptured run's). */
  capture?: CaptureComparison;
}

interface TimedSteps {
  stepMs: number[];
  encodeMs: number[];
  losses: number[];
  dispatches: number;
  submits: number;
  basePoolBytes: number;
  peakPoolBytes: number;
}

/** Run `warmup + steps` steps, each synced by reading its loss back; time the last `steps`. */
async function timeSteps(rt: Runtime, spec: FinetuneBenchSpec, step: () => Tensor, progress: (done: number) => void): Promise<TimedSteps> {
  const total = spec.warmup + spec.steps;
  const t: TimedSteps = { stepMs: [], encodeMs: [], losses: [], dispatches: 0, submits: 0, basePoolBytes: 0, peakPoolBytes: 0 };
  for (let i = 0; i < total; i++) {
    if (i === spec.warmup) {
      rt.pool.resetPeak();
      t.basePoolBytes = rt.pool.stats.liveBytes;
    }
    const d0 = rt.stats.dispatches;
    const s0 = rt.stats.submits;
    const t0 = performance.now();
    const loss: Tensor = step();
    const t1 = performance.now();
    const d1 = rt.stats.dispatches;
    const s1 = rt.stats.submits;
    let value: number;
    try {
      value = (await loss.read())[0]!;
    } finally {
      loss.dispose();
    }
    const t2 = performance.now();
    t.losses.push(value);
    if (i >= spec.warmup) {
      t.stepMs.push(t2 - t0);
      t.encodeMs.push(t1 - t0);
      t.dispatches = d1 - d0; // the last timed step's (steady state: the first step may also build caches)
      t.submits = Math.max(t.submits, s1 - s0);
    }
    progress(i + 1);
  }
  t.peakPoolBytes = rt.pool.stats.peakBytes;
  return t;
}

/** The captured run: a fresh setup (same seed), its step recorded at the first warm-up step and replayed after. */
async function runCaptured(
  rt: Runtime,
  spec: FinetuneBenchSpec,
  plain: Pick<FinetuneBenchResult, 'encodeMs' | 'medianStepMs' | 'losses'>,
  progress: (done: number) => void,
): Promise<CaptureComparison> {
  const setup = makeFinetuneSetup(rt, spec);
  const runner = captureTrainingStep(rt, (inputs) => setup.stepOn(inputs), { maxShapes: 1 });
  try {
    await rt.sync();
    const t = await timeSteps(rt, spec, () => runner.step(setup.batch), progress);
    const med = median(t.stepMs);
    const encodeMs = median(t.encodeMs);
    return {
      medianStepMs: med,
      minStepMs: Math.min(...t.stepMs),
      stepMs: t.stepMs,
      samplesPerSec: (spec.batch * 1000) / med,
      encodeMs,
      dispatchesPerStep: t.dispatches,
      submitsPerStep: t.submits,
      peakPoolBytes: t.peakPoolBytes,
      losses: t.losses,
      maxLossDiff: Math.max(...t.losses.map((l, i) => Math.abs(l - plain.losses[i]!))),
      encodeSpeedup: plain.encodeMs / encodeMs,
      stepSpeedup: plain.medianStepMs / med,
      captures: runner.stats.captures,
      replays: runner.stats.replays,
    };
  } finally {
    runner.dispose();
    setup.dispose();
  }
}

/**
 * Build the spec's model and strategy on `rt`, run `warmup + steps` steps (each synced by reading its
 * loss back), and report the medians of the timed ones; then time one more step per kernel.
 */
export async function runFinetuneBench(rt: Runtime, spec: FinetuneBenchSpec, opts: FinetuneBenchOptions = {}): Promise<FinetuneBenchResult> {
  if (opts.capture && spec.warmup < 1) throw new GraftError('capture needs at least 1 warm-up step (the captured run records its step there)');
  const setup = makeFinetuneSetup(rt, spec);
  const per = spec.warmup + spec.steps;
  const total = opts.capture ? 2 * per : per;
  let result: FinetuneBenchResult;
  try {
    await rt.sync();
    const { stepMs, encodeMs, losses, dispatches, submits, basePoolBytes: base, peakPoolBytes } = await timeSteps(rt, spec, () => setup.step(), (d) =>
      opts.onProgress?.(d, total),
    );
    let kernels: KernelBreakdown | null = null;
    let kernelsNote: string;
    if (opts.kernels === false) kernelsNote = 'off';
    else if (!rt.features.timestamps) kernelsNote = 'n/a: no timestamp-query on this device';
    else {
      const k = await kernelBreakdown(rt, () => setup.record(), dispatches, opts.topKernels ?? 12);
      k.result.dispose();
      kernels = k.breakdown;
      kernelsNote = kernels
        ? `one extra step, every dispatch in its own timestamped pass (${kernels.timedDispatches} of ${kernels.dispatches} dispatches timed)`
        : 'n/a: no timestamp-query on this device';
    }
    const med = median(stepMs);
    const f = stepFlops(spec);
    const trainableArenaBytes = 16 * setup.trainableParams;
    result = {
      spec,
      adapter: adapterName(rt),
      label: setup.label,
      strategyLabel: setup.strategyLabel,
      totalParams: setup.totalParams,
      trainableParams: setup.trainableParams,
      loraTargets: setup.loraTargets,
      medianStepMs: med,
      minStepMs: Math.min(...stepMs),
      stepMs,
      samplesPerSec: (spec.batch * 1000) / med,
      encodeMs: median(encodeMs),
      dispatchesPerStep: dispatches,
      submitsPerStep: submits,
      memory: {
        peakPoolBytes,
        basePoolBytes: base,
        trainableArenaBytes,
        peakBytes: peakPoolBytes + trainableArenaBytes,
        weightsBytes: 4 * setup.totalParams,
        optimizerStateBytes: 8 * setup.trainableParams,
      },
      flops: { forward: f.forward, backward: f.backward, total: f.total },
      gflopsPerSec: f.total / (med * 1e6),
      losses,
      kernels,
      kernelsNote,
      timer: 'wall-clock',
    };
  } finally {
    setup.dispose();
  }
  if (opts.capture) {
    result.capture = await runCaptured(rt, spec, result, (d) => opts.onProgress?.(per + d, total));
  }
  return result;
}

/** graft's samples/s over each peer's. */
export function comparePeers(r: Pick<FinetuneBenchResult, 'samplesPerSec'>, peers: readonly PeerResult[]): PeerComparison[] {
  return peers.map((p) => ({ ...p, ratio: p.skipped || !(p.samplesPerSec > 0) ? NaN : r.samplesPerSec / p.samplesPerSec }));
}

const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));
const fmtRate = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(3));
export const fmtMiB = (b: number): string => `${(b / (1 << 20)).toFixed(1)} MiB`;
const fmtCount = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n));

/** Lines for the CLI's text output. */
export function formatFinetune(r: FinetuneBenchResult): string[] {
  const s = r.spec;
  const m = r.memory;
  const lines = [
    `adapter     ${r.adapter}`,
    `model       ${r.label}`,
    `strategy    ${s.strategy}: ${r.strategyLabel}`,
    `params      ${fmtCount(r.trainableParams)} trainable of ${fmtCount(r.totalParams)} (${((100 * r.trainableParams) / r.totalParams).toFixed(2)}%); AdamW lr 1e-4 wd 0.01, f32`,
    `step        ${fmtMs(r.medianStepMs)} ms median (min ${fmtMs(r.minStepMs)}) over ${s.steps} steps after ${s.warmup} warm-up; ` +
      `timer: wall-clock (record + submit + GPU + loss readback)`,
    `throughput  ${fmtRate(r.samplesPerSec)} samples/s, ${fmtRate(r.gflopsPerSec)} GFLOP/s (${(r.flops.total / 1e9).toFixed(2)} GFLOP/step: ` +
      `forward ${(r.flops.forward / 1e9).toFixed(2)} + backward ${(r.flops.backward / 1e9).toFixed(2)})`,
    `encode      ${fmtMs(r.encodeMs)} ms per step on the CPU (until queue.submit returned)`,
    `per step    ${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submit${r.submitsPerStep === 1 ? '' : 's'} (+1 for the loss readback)`,
    `memory      peak ${fmtMiB(m.peakBytes)} = pool peak ${fmtMiB(m.peakPoolBytes)} (at start ${fmtMiB(m.basePoolBytes)}) + trainable arenas ${fmtMiB(m.trainableArenaBytes)}; ` +
      `weights ${fmtMiB(m.weightsBytes)}, AdamW state ${fmtMiB(m.optimizerStateBytes)}`,
    `loss        ${r.losses[0]?.toFixed(4)} → ${r.losses[r.losses.length - 1]?.toFixed(4)}`,
  ];
  const c = r.capture;
  if (c) {
    lines.push(
      `captured    ${fmtMs(c.medianStepMs)} ms/step median (min ${fmtMs(c.minStepMs)}), encode ${fmtMs(c.encodeMs)} ms/step: ` +
        `step ${c.stepSpeedup.toFixed(2)}×, encode ${c.encodeSpeedup.toFixed(2)}× vs uncaptured (${fmtMs(r.medianStepMs)} ms, encode ${fmtMs(r.encodeMs)} ms)`,
      `            ${c.captures} recording + ${c.replays} replays, ${c.dispatchesPerStep} dispatches, ${c.submitsPerStep} submit per step; ` +
        `pool peak ${fmtMiB(c.peakPoolBytes)}; losses equal uncaptured within ${c.maxLossDiff.toExponential(1)}`,
    );
  }
  if (!r.kernels) lines.push(`kernels     ${r.kernelsNote}`);
  else {
    lines.push(`kernels     ${fmtMs(r.kernels.totalMs)} ms GPU in ${r.kernelsNote}:`);
    for (const k of r.kernels.top) {
      lines.push(`  ${k.kernel.padEnd(28)} ${fmtMs(k.ms).padStart(8)} ms  ${(100 * k.share).toFixed(1).padStart(5)}%  ×${k.count}`);
    }
    const rest = r.kernels.all.slice(r.kernels.top.length);
    if (rest.length) {
      const ms = rest.reduce((a, k) => a + k.ms, 0);
      lines.push(`  ${`(${rest.length} other kernels)`.padEnd(28)} ${fmtMs(ms).padStart(8)} ms  ${((100 * ms) / r.kernels.totalMs).toFixed(1).padStart(5)}%`);
    }
  }
  for (const p of r.peers ?? []) {
    if (p.skipped) lines.push(`peer        ${p.peer}: skipped (${p.skipped})`);
    else {
      lines.push(
        `peer        ${p.peer}: ${fmtRate(p.samplesPerSec)} samples/s, ${fmtMs(p.medianStepMs)} ms/step (${p.description}); graft/peer ${p.ratio.toFixed(2)}×`,
      );
    }
  }
  return lines;
}
