// `graft bench train-step`: median time and samples/s of a full training step (MLP, SmallCNN or TinyEncoder), with dispatches, submits and peak pool memory per step; --capture compares with whole-step capture replay.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import {
  TRAIN_STEP_MODELS,
  benchTrainStep,
  compareTrainStepCapture,
  formatTrainStep,
  formatTrainStepComparison,
  type TrainStepComparison,
  type TrainStepModel,
  type TrainStepResult,
} from '../bench/train-step.js';
import { printJson } from '../bench/report.js';
import { nonNegInt, posInt } from './errors.js';
import { startProgress } from './progress.js';

export interface TrainStepFlags {
  model: TrainStepModel;
  batch: number;
  steps: number;
  warmup: number;
  json?: boolean;
  capture?: boolean;
}

export function parseTrainModel(v: string): TrainStepModel {
  const m = TRAIN_STEP_MODELS.find((k) => k === v);
  if (!m) throw new GraftError(`--model must be one of ${TRAIN_STEP_MODELS.join(', ')}, got '${v}'`);
  return m;
}

export function registerTrainStepBench(bench: Command): Command {
  return bench
    .command('train-step')
    .description('time full training steps (forward, cross-entropy, backward, clip, AdamW, lr schedule) and print the median step time and samples/s')
    .option('--model <name>', `model: ${TRAIN_STEP_MODELS.join(' | ')}`, parseTrainModel, 'mlp')
    .option('--batch <B>', 'samples per step', posInt('--batch'), 32)
    .option('--steps <N>', 'timed steps; the median is reported', posInt('--steps'), 20)
    .option('--warmup <W>', 'untimed steps first (pipeline compiles, pool warm-up)', nonNegInt('--warmup'), 3)
    .option('--capture', 'also time whole-step capture replays and compare encode ms/step and step ms with the normal step')
    .option('--json', 'print one JSON object on stdout')
    .action(async (flags: TrainStepFlags) => {
      if (flags.capture) await benchTrainStepCaptureCommand(flags);
      else await benchTrainStepCommand(flags);
    });
}

/** Run the benchmark on a fresh runtime (or `rt`) and print the result; returns it. */
export async function benchTrainStepCommand(f: TrainStepFlags, rt?: Runtime): Promise<TrainStepResult> {
  const own = rt ?? (await Runtime.create());
  const bar = startProgress(`train-step ${f.model} batch ${f.batch}`, { total: f.warmup + f.steps, unit: 'steps', json: f.json });
  let r: TrainStepResult;
  try {
    r = await benchTrainStep(own, { model: f.model, batch: f.batch, steps: f.steps, warmup: f.warmup, onProgress: (done, total) => bar.update(done, total) });
  } finally {
    bar.stop();
    if (!rt) own.destroy();
  }
  if (f.json) printJson(r);
  else for (const l of formatTrainStep(r)) console.log(l);
  return r;
}

/** `--capture`: the benchmark without, then with whole-step capture, on a fresh runtime (or `rt`); prints and returns the comparison. */
export async function benchTrainStepCaptureCommand(f: TrainStepFlags, rt?: Runtime): Promise<TrainStepComparison> {
  const own = rt ?? (await Runtime.create());
  const total = 2 * (f.warmup + f.steps);
  const bar = startProgress(`train-step ${f.model} batch ${f.batch}, normal then captured`, { total, unit: 'steps', json: f.json });
  let c: TrainStepComparison;
  try {
    c = await compareTrainStepCapture(own, { model: f.model, batch: f.batch, steps: f.steps, warmup: f.warmup, onProgress: (done) => bar.update(done, total) });
  } finally {
    bar.stop();
    if (!rt) own.destroy();
  }
  if (f.json) printJson(c);
  else for (const l of formatTrainStepComparison(c)) console.log(l);
  return c;
}
