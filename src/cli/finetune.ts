// `graft finetune`: transfer-learn an image classifier (linear probe, full, gradual unfreezing, LoRA) with checkpoints, resume, early stopping, JSON logs.
import { join } from 'node:path';
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { Rng } from '../autograd/random.js';
import { Trainer, type LogRecord, type Monitor } from '../train/trainer.js';
import { STRATEGIES, evaluateImages, prepareImageTraining, type Strategy } from '../train/strategies.js';
import { MODEL_NAMES, buildModel, loadData, preprocessFor } from '../train/setup.js';
import { readCheckpoint, resolveCheckpointDir } from '../train/checkpoint.js';
import { startProgress } from './progress.js';
import { nonNegInt, posInt } from './errors.js';
import { registerEvalCommand } from './eval.js';
import { saveLoraAdapter, loraConfigOf } from '../peft/index.js';

export interface FinetuneOptions {
  model: string;
  data: string;
  strategy: string;
  epochs: number;
  lr?: number;
  batch: number;
  res: number;
  trainLimit?: number;
  testLimit?: number;
  seed: number;
  out?: string;
  resume?: string;
  evalEvery?: number;
  patience?: number;
  monitor: string;
  json?: boolean;
  cacheDir?: string;
  fromScratch?: boolean;
  weights?: string;
  backboneLrDiv: number;
  freezeBn?: boolean;
  cacheFeatures: boolean;
  accumulate: number;
  clip?: number;
  logEvery: number;
  augment: boolean;
  /** --strategy lora: rank, alpha, dropout, target modules (a regular expression, or names separated by commas), rsLoRA. */
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string;
  rslora?: boolean;
}

export interface FinetuneSummary {
  model: string;
  strategy: Strategy;
  pretrained: boolean;
  trainExamples: number;
  testExamples: number;
  steps: number;
  reason: string;
  testAccuracy: number;
  testMacroF1: number;
  testLoss: number;
  best: { metric: string; value: number; step: number } | null;
  samplesPerSec: number;
  cacheSeconds: number;
  seconds: number;
  checkpoint: string | null;
  /** --strategy lora with --out: the PEFT adapter folder (adapter_model.safetensors, adapter_config.json). */
  adapter: string | null;
}

const DEFAULT_LR: Record<Strategy, number> = { 'linear-probe': 1e-3, full: 1e-3, gradual: 1e-3, lora: 1e-3 };

/** --lora-targets: names separated by commas (PEFT's list, suffix match) or one regular expression (whole-name match). */
export function parseLoraTargets(v: string): string[] | string {
  const t = v.trim();
  if (!t) throw new GraftError(`--lora-targets must not be empty`);
  if (t.includes(',')) {
    const names = t.split(',').map((s) => s.trim());
    if (names.some((n) => !n)) throw new GraftError(`--lora-targets '${v}': empty name in the list`);
    return names;
  }
  try {
    new RegExp(t);
  } catch (e) {
    throw new GraftError(`--lora-targets '${v}' is not a valid regular expression (${(e as Error).message.split('\n')[0]})`);
  }
  return t;
}

function dropoutValue(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n < 1)) throw new GraftError(`--lora-dropout must be a number in [0, 1), got '${v}'`);
  return n;
}

/** The LoRA settings of a run (null unless --strategy lora); rejects --lora-* flags with other strategies. */
function loraSettings(o: FinetuneOptions, strategy: Strategy): { r: number; alpha: number; dropout: number; targets: string[] | string | null; rslora: boolean } | null {
  if (strategy !== 'lora') {
    const given = (['loraR', 'loraAlpha', 'loraDropout', 'loraTargets', 'rslora'] as const).filter((k) => o[k] !== undefined);
    if (given.length) throw new GraftError(`--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --strategy lora`);
    return null;
  }
  return { r: o.loraR ?? 8, alpha: o.loraAlpha ?? 16, dropout: o.loraDropout ?? 0, targets: o.loraTargets === undefined ? null : parseLoraTargets(o.loraTargets), rslora: !!o.rslora };
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new GraftError(`${flag} must be a positive number, got '${v}'`);
    return n;
  };
}

/** The run configuration saved in trainer.json (what resume checks and graft eval rebuilds from). */
function configOf(o: FinetuneOptions, strategy: Strategy, lr: number, lora: ReturnType<typeof loraSettings>): Record<string, unknown> {
  return {
    lora,
    model: o.model, data: o.data, strategy, epochs: o.epochs, lr, batch: o.batch, res: o.res, trainLimit: o.trainLimit ?? null, testLimit: o.testLimit ?? null,
    seed: o.seed, fromScratch: !!o.fromScratch, weights: o.weights ?? null, backboneLrDiv: o.backboneLrDiv, freezeBn: !!o.freezeBn,
    cacheFeatures: o.cacheFeatures, accumulate: o.accumulate, augment: o.augment,
  };
}

/** Run a fine-tune; returns the summary (also printed). */
export async function finetuneCommand(o: FinetuneOptions): Promise<FinetuneSummary> {
  if (!(STRATEGIES as readonly string[]).includes(o.strategy)) {
    throw new GraftError(`--strategy must be one of ${STRATEGIES.join(', ')}, got '${o.strategy}'`);
  }
  const strategy = o.strategy as Strategy;
  const lora = loraSettings(o, strategy);
  if (!MODEL_NAMES.includes(o.model)) throw new GraftError(`unknown model '${o.model}' (known: ${MODEL_NAMES.join(', ')})`);
  if (!['accuracy', 'macroF1', 'loss'].includes(o.monitor)) throw new GraftError(`--monitor must be accuracy, macroF1 or loss, got '${o.monitor}'`);
  const lr = o.lr ?? DEFAULT_LR[strategy];
  const t0 = performance.now();
  const say = (s: string) => {
    if (!o.json) process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
  };
  const config = configOf(o, strategy, lr, lora);
  let resumeDir: string | null = null;
  if (o.resume) {
    resumeDir = await resolveCheckpointDir(o.resume);
    const saved = (await readCheckpoint(resumeDir)).trainer.config;
    const differ = ['model', 'data', 'strategy', 'res', 'batch', 'seed', 'trainLimit', 'accumulate', 'fromScratch'].filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(config[k]));
    if (differ.length) throw new GraftError(`--resume ${o.resume}: the checkpoint was made with different ${differ.map((k) => `--${k} (${JSON.stringify(saved[k])})`).join(', ')}`);
  }
  const data = await loadData(o.data, { trainLimit: o.trainLimit, testLimit: o.testLimit, seed: o.seed });
  say(`data ${o.data}: ${data.train.length} train / ${data.test.length} test examples, ${data.classes.length} classes`);
  const rt = await Runtime.create();
  let stopHandler: (() => void) | null = null;
  try {
    const built = await buildModel(rt, o.model, { fromScratch: o.fromScratch, weights: o.weights, cacheDir: o.cacheDir, seed: o.seed, say });
    const model = built.model;
    const preprocess = preprocessFor(built.family, data.channels, o.res);
    let cacheBar: ReturnType<typeof startProgress> | null = null;
    let cacheOffset = 0;
    const prep = await prepareImageTraining(rt, model, data.train, data.test, {
      strategy, numClasses: data.classes.length, lr, backboneLrDiv: o.backboneLrDiv, batchSize: o.batch, epochs: o.epochs, seed: o.seed,
      preprocess, augment: o.augment, cacheFeatures: o.cacheFeatures, freezeBn: o.freezeBn, headRng: new Rng(o.seed + 0x4ead),
      lora: lora ? { r: lora.r, alpha: lora.alpha, dropout: lora.dropout, targets: lora.targets ?? undefined, rslora: lora.rslora, cacheStage: o.cacheFeatures ? undefined : false } : undefined,
      onCacheProgress: (done, total) => {
        cacheBar ??= startProgress(strategy === 'lora' ? 'caching stage inputs' : 'caching features', { total: data.train.length + data.test.length, unit: 'images', json: o.json });
        cacheBar.update(cacheOffset + done);
        if (done === total) cacheOffset += total;
      },
    });
    (cacheBar as ReturnType<typeof startProgress> | null)?.stop();
    if (prep.cacheSeconds) say(`cached ${strategy === 'lora' ? 'the activations entering the first adapted stage' : 'backbone features'} in ${prep.cacheSeconds.toFixed(1)} s`);
    const loraCfg = loraConfigOf(model);
    if (loraCfg && lora) {
      lora.targets = loraCfg.targetModules;
      config.lora = { ...lora };
      say(`lora: r ${loraCfg.r}, alpha ${loraCfg.alpha}${loraCfg.useRslora ? ' (rsLoRA)' : ''}, dropout ${loraCfg.dropout}, targets ${JSON.stringify(loraCfg.targetModules)}, head '${loraCfg.modulesToSave?.join(', ')}' trained in full`);
    }
    say(`${strategy}: ${prep.trainable} trainable parameters, ${built.pretrained ? 'pretrained' : 'random-init'} ${o.model}, res ${o.res}, batch ${o.batch}`);
    const trainer = new Trainer({
      rt, ...prep.trainer, epochs: o.epochs, accumulate: o.accumulate, clipNorm: o.clip, logEvery: o.logEvery, evalEvery: o.evalEvery,
      patience: o.patience, monitor: o.monitor as Monitor, outDir: o.out, config, progress: !o.json,
      onLog: (r: LogRecord) => {
        if (o.json) console.log(JSON.stringify(r));
        else if (r.type === 'eval') process.stderr.write(`step ${r.step} epoch ${r.epoch}: test loss ${r.loss.toFixed(4)} acc ${r.accuracy.toFixed(4)} macro-F1 ${r.macroF1.toFixed(4)}\n`);
        else if (r.type === 'stop' && r.reason !== 'completed') process.stderr.write(`${r.message}\n`);
      },
    });
    if (resumeDir) {
      const saved = (await readCheckpoint(resumeDir)).trainer.config;
      if (lora && JSON.stringify(saved.lora) !== JSON.stringify(config.lora)) throw new GraftError(`--resume ${o.resume}: the checkpoint was made with different LoRA settings (${JSON.stringify(saved.lora)})`);
      await trainer.resume(resumeDir);
      say(`resumed from ${resumeDir} at step ${trainer.step}`);
    }
    let interrupts = 0;
    stopHandler = () => {
      if (++interrupts > 1) process.exit(130);
      process.stderr.write('\ninterrupt: finishing this step and saving a checkpoint (Ctrl-C again to quit now)\n');
      trainer.requestStop();
    };
    process.on('SIGINT', stopHandler);
    const r = await trainer.fit();
    const final = r.evals.length && r.evals[r.evals.length - 1]!.step === r.steps ? r.evals[r.evals.length - 1]! : await (prep.trainer.evaluate ?? (() => evaluateImages(rt, model, data.test, preprocess, data.classes.length, o.batch)))();
    const summary: FinetuneSummary = {
      model: o.model, strategy, pretrained: built.pretrained, trainExamples: data.train.length, testExamples: data.test.length, steps: r.steps, reason: r.reason,
      testAccuracy: final.accuracy, testMacroF1: final.macroF1, testLoss: final.loss,
      best: r.best ? { metric: r.best.metric, value: r.best.value, step: r.best.step } : null,
      samplesPerSec: r.samplesPerSec, cacheSeconds: prep.cacheSeconds, seconds: 0, checkpoint: r.lastCheckpoint, adapter: null,
    };
    if (lora && o.out) {
      summary.adapter = join(o.out, 'adapter');
      await saveLoraAdapter(model, summary.adapter, { baseModelNameOrPath: o.model });
    }
    summary.seconds = (performance.now() - t0) / 1000;
    if (o.json) console.log(JSON.stringify({ type: 'summary', ...summary }));
    else {
      console.log(`test accuracy ${(100 * summary.testAccuracy).toFixed(2)}%  macro-F1 ${summary.testMacroF1.toFixed(4)}  loss ${summary.testLoss.toFixed(4)}`);
      console.log(`${summary.steps} steps, ${summary.samplesPerSec.toFixed(1)} samples/s${summary.cacheSeconds ? ` (+${summary.cacheSeconds.toFixed(1)} s ${strategy === 'lora' ? 'stage-input' : 'feature'} caching)` : ''}, ${summary.seconds.toFixed(1)} s total`);
      if (summary.checkpoint) console.log(`checkpoint ${summary.checkpoint}`);
      if (summary.adapter) console.log(`adapter ${summary.adapter}`);
    }
    prep.dispose();
    model.dispose();
    return summary;
  } finally {
    if (stopHandler) process.off('SIGINT', stopHandler);
    rt.destroy();
  }
}

/** Register `graft finetune` and `graft eval`. */
export function registerFinetuneCommands(program: Command): void {
  program
    .command('finetune')
    .description('fine-tune an image classifier on fashion-mnist, mnist or an image folder')
    .requiredOption('--model <name>', `model (${MODEL_NAMES.join(', ')})`)
    .requiredOption('--data <spec>', "'fashion-mnist', 'mnist', or an image folder root/<class>/<image>")
    .option('--strategy <s>', `${STRATEGIES.join(' | ')} (lora: adapters on the last stage's convs + a new head, BN frozen; saves the PEFT adapter under --out/adapter)`, 'linear-probe')
    .option('--epochs <n>', 'epochs', posInt('--epochs'), 1)
    .option('--lr <lr>', 'head learning rate (default 1e-3)', positiveNumber('--lr'))
    .option('--batch <n>', 'batch size', posInt('--batch'), 32)
    .option('--res <px>', 'input resolution (square)', posInt('--res'), 64)
    .option('--train-limit <n>', 'use the first n training examples', posInt('--train-limit'))
    .option('--test-limit <n>', 'use the first n test examples', posInt('--test-limit'))
    .option('--seed <n>', 'seed (shuffles, augmentation, head init)', nonNegInt('--seed'), 0)
    .option('--out <dir>', 'checkpoint folder (step-N/, last.json, best.json)')
    .option('--resume <dir>', 'continue from a checkpoint folder or an --out folder')
    .option('--eval-every <n>', 'evaluate (and checkpoint) every n steps, besides each epoch end', posInt('--eval-every'))
    .option('--patience <n>', 'early stopping: evaluations without improvement', posInt('--patience'))
    .option('--monitor <m>', 'accuracy | macroF1 | loss', 'accuracy')
    .option('--backbone-lr-div <k>', 'full/gradual: backbone lr = lr / k', positiveNumber('--backbone-lr-div'), 10)
    .option('--freeze-bn', 'full/gradual: keep BatchNorm in eval mode (small batches)')
    .option('--no-cache-features', 'linear-probe: run the frozen backbone every step instead of caching features once; lora: run the frozen stages every step instead of caching the activations entering the first adapted stage')
    .option('--lora-r <n>', 'lora: rank (default 8)', posInt('--lora-r'))
    .option('--lora-alpha <a>', 'lora: alpha, scaling alpha/r (default 16)', positiveNumber('--lora-alpha'))
    .option('--lora-dropout <p>', 'lora: dropout on the adapter input, in [0, 1) (default 0)', dropoutValue)
    .option('--lora-targets <pattern>', 'lora: modules to adapt, a regular expression over whole module names or names separated by commas (default: the convs of the last residual stage)')
    .option('--rslora', 'lora: rank-stabilised scaling alpha/sqrt(r)')
    .option('--no-augment', 'full/gradual: no random horizontal flips')
    .option('--accumulate <k>', 'micro-batches per optimizer step', posInt('--accumulate'), 1)
    .option('--clip <norm>', 'clip the global gradient norm', positiveNumber('--clip'))
    .option('--log-every <n>', 'read the loss back every n steps', posInt('--log-every'), 10)
    .option('--from-scratch', 'same architecture, random initialisation (to measure the transfer benefit)')
    .option('--weights <file>', 'torchvision models: pretrained weights (.safetensors from graft convert)')
    .option('--json', 'one JSON object per line (train/eval/checkpoint/stop records, then a summary)')
    .option('--cache-dir <dir>', 'model cache folder (default: $GRAFT_CACHE_DIR or ~/.cache/graft)')
    .action(async (o: FinetuneOptions) => {
      await finetuneCommand(o);
    });
  registerEvalCommand(program);
}
