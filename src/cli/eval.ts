// `graft eval`: evaluate a fine-tuning checkpoint (accuracy, macro-F1, loss) on a dataset's test split.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { readCheckpoint, resolveCheckpointDir, restoreModel } from '../train/checkpoint.js';
import { evaluateImages, headName, headOf } from '../train/strategies.js';
import { applyLora } from '../peft/index.js';
import { buildModel, loadData, preprocessFor } from '../train/setup.js';
import type { EvalMetrics } from '../train/metrics.js';
import { KerasResNet } from '../models/keras-resnet50.js';
import { ResNet } from '../models/resnet.js';
import { posInt } from './errors.js';

export interface EvalOptions {
  checkpoint: string;
  /** Default: the data the checkpoint was trained on. */
  data?: string;
  testLimit?: number;
  batch?: number;
  best?: boolean;
  json?: boolean;
  cacheDir?: string;
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new GraftError(`checkpoint config has no ${what}`);
  return v;
};
const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number') throw new GraftError(`checkpoint config has no ${what}`);
  return v;
};

/** The LoRA settings a `--strategy lora` run saved in its config (null for other strategies). */
function loraOf(v: unknown): { r: number; alpha: number; dropout: number; targets: string[] | string; rslora: boolean } | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object') throw new GraftError('checkpoint config: lora is not an object');
  const r: unknown = Reflect.get(v, 'r');
  const alpha: unknown = Reflect.get(v, 'alpha');
  const dropout: unknown = Reflect.get(v, 'dropout');
  const targets: unknown = Reflect.get(v, 'targets');
  const rslora: unknown = Reflect.get(v, 'rslora');
  const okTargets = typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string'));
  if (typeof r !== 'number' || typeof alpha !== 'number' || typeof dropout !== 'number' || !okTargets || typeof rslora !== 'boolean') {
    throw new GraftError(`checkpoint config: incomplete lora settings ${JSON.stringify(v)}`);
  }
  return { r, alpha, dropout, targets: typeof targets === 'string' ? targets : targets.map((t) => String(t)), rslora };
}

export async function evalCommand(o: EvalOptions): Promise<EvalMetrics & { checkpoint: string }> {
  const dir = await resolveCheckpointDir(o.checkpoint, o.best ? 'best' : 'last');
  const ck = await readCheckpoint(dir);
  const c = ck.trainer.config;
  const modelName = str(c.model, 'model');
  const dataSpec = o.data ?? str(c.data, 'data');
  const res = num(c.res, 'res');
  const seed = num(c.seed, 'seed');
  const data = await loadData(dataSpec, { testLimit: o.testLimit ?? (typeof c.testLimit === 'number' ? c.testLimit : undefined), trainLimit: 1, seed });
  const rt = await Runtime.create();
  try {
    // Architecture only (the checkpoint holds every weight): random init, then the head resized, then restore.
    const built = await buildModel(rt, modelName, { fromScratch: true, cacheDir: o.cacheDir, seed });
    const m = built.model;
    const classes = ck.model.get(`${m instanceof KerasResNet ? m.spec.dense.name : 'fc'}.bias`)?.shape[0] ?? data.classes.length;
    if (classes !== data.classes.length) throw new GraftError(`${dir} classifies ${classes} classes, --data ${dataSpec} has ${data.classes.length}`);
    if (m instanceof ResNet || m instanceof KerasResNet) m.resetClassifier(classes);
    if (headOf(m).outFeatures !== classes) throw new GraftError(`cannot size the head of ${modelName} to ${classes} classes`);
    const lora = loraOf(c.lora);
    if (lora) applyLora(m, { r: lora.r, alpha: lora.alpha, dropout: lora.dropout, targetModules: lora.targets, useRslora: lora.rslora, modulesToSave: [headName(m)] });
    restoreModel(rt, m, ck);
    const r = await evaluateImages(rt, m, data.test, preprocessFor(built.family, data.channels, res), classes, o.batch ?? 32);
    if (o.json) console.log(JSON.stringify({ checkpoint: dir, ...r }));
    else console.log(`${dir}: ${r.examples} examples, accuracy ${(100 * r.accuracy).toFixed(2)}%  macro-F1 ${r.macroF1.toFixed(4)}  loss ${r.loss.toFixed(4)}`);
    m.dispose();
    return { checkpoint: dir, ...r };
  } finally {
    rt.destroy();
  }
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a graft finetune checkpoint on a test split')
    .requiredOption('--checkpoint <dir>', 'a checkpoint folder or a finetune --out folder (its last checkpoint)')
    .option('--best', 'with an --out folder: its best checkpoint')
    .option('--data <spec>', "'fashion-mnist', 'mnist', or an image folder (default: the training data)")
    .option('--test-limit <n>', 'use the first n test examples', posInt('--test-limit'))
    .option('--batch <n>', 'batch size', posInt('--batch'), 32)
    .option('--json', 'print one JSON object')
    .option('--cache-dir <dir>', 'model cache folder')
    .action(async (o: EvalOptions) => {
      await evalCommand(o);
    });
}
