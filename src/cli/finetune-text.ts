// `graft finetune-text`: spam/ham (or JSONL) classification from a BERT folder with full / adapter / prompt / linear-probe tuning; registers the text commands.
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { Rng } from '../autograd/random.js';
import type { LabelledArrayDataset, TextExample } from '../data/dataset.js';
import { loadSpamAssassin } from '../data/spam-assassin.js';
import { loadJsonl } from '../data/text-files.js';
import { stratifiedSplit } from '../data/split.js';
import { loadBertForSequenceClassification } from '../models/bert-load.js';
import { finetuneText, TEXT_STRATEGIES, type TextStrategy } from '../train-text/classify.js';
import { posInt } from './errors.js';
import { startProgress } from './progress.js';
import { registerPretrainMlmCommand } from './pretrain-mlm.js';

export interface FinetuneTextFlags {
  model: string;
  data: string;
  strategy: string;
  epochs?: number;
  lr?: number;
  headLr?: number;
  batch?: number;
  seq?: number;
  trainLimit?: number;
  testLimit?: number;
  /** Share of the data held out for testing (default 0.2). */
  testFraction?: number;
  seed?: number;
  json?: boolean;
}

export interface FinetuneTextSummary {
  model: string;
  strategy: TextStrategy;
  train: number;
  test: number;
  steps: number;
  accuracy: number;
  macroF1: number;
  confusion: number[][];
  firstLoss: number;
  lastLoss: number;
  trainableParams: number;
  totalParams: number;
  seconds: number;
}

async function labelled(data: string): Promise<LabelledArrayDataset<TextExample>> {
  if (data === 'spam-assassin') return loadSpamAssassin({ maxChars: 2000 });
  if (!data.endsWith('.jsonl')) throw new GraftError(`--data must be 'spam-assassin' or a .jsonl file with text and label fields, got '${data}'`);
  if (!existsSync(data)) throw new GraftError(`--data ${data}: no such file`);
  return loadJsonl(data);
}

/** Stratified seeded split of --data, then the same split cut to the limits (stratified again). */
export async function textSplits(f: Pick<FinetuneTextFlags, 'data' | 'trainLimit' | 'testLimit' | 'testFraction' | 'seed'>): Promise<{ train: TextExample[]; test: TextExample[] }> {
  const ds = await labelled(f.data);
  const tf = f.testFraction ?? 0.2;
  const seed = f.seed ?? 0;
  const [tr, te] = stratifiedSplit(ds, { fractions: [1 - tf, tf], seed });
  const cut = (s: NonNullable<typeof tr>, limit: number | undefined, salt: number): TextExample[] => {
    const idx = limit !== undefined && limit < s.length ? stratifiedSplit(s, { counts: [limit], seed: seed + salt })[0]! : s;
    return Array.from({ length: idx.length }, (_, i) => idx.get(i));
  };
  return { train: cut(tr!, f.trainLimit, 1), test: cut(te!, f.testLimit, 2) };
}

export async function runFinetuneText(f: FinetuneTextFlags, runtime?: Runtime): Promise<FinetuneTextSummary> {
  if (!(TEXT_STRATEGIES as readonly string[]).includes(f.strategy)) throw new GraftError(`--strategy must be one of ${TEXT_STRATEGIES.join(', ')}, got '${f.strategy}'`);
  const strategy = f.strategy as TextStrategy;
  if (!existsSync(f.model) || !statSync(f.model).isDirectory()) throw new GraftError(`--model ${f.model}: no such folder`);
  const { train, test } = await textSplits(f);
  const numLabels = Math.max(...train.map((e) => e.label), ...test.map((e) => e.label)) + 1;
  const rt = runtime ?? (await Runtime.create());
  try {
    const { model, tokenizer } = await loadBertForSequenceClassification(rt, f.model, { numLabels, rng: new Rng(f.seed ?? 0) });
    try {
      if (!tokenizer) throw new GraftError(`${f.model}: no tokenizer (tokenizer.json or vocab.txt)`);
      const epochs = f.epochs ?? 3;
      const batch = f.batch ?? 16;
      const bar = startProgress(`finetune-text (${strategy})`, { total: epochs * Math.ceil(train.length / batch), unit: 'steps', json: f.json });
      try {
        const r = await finetuneText({
          model,
          tokenizer,
          train,
          test,
          strategy,
          epochs,
          batch,
          lr: f.lr,
          headLr: f.headLr,
          seq: f.seq ?? 128,
          seed: f.seed ?? 0,
          onStep: (s, _n, loss) => {
            bar.label(`finetune-text (${strategy}) loss ${loss.toFixed(3)}`);
            bar.update(s);
          },
        });
        r.prompt?.dispose();
        const k = Math.max(1, Math.min(10, Math.floor(r.losses.length / 4)));
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        return {
          model: f.model,
          strategy,
          train: train.length,
          test: test.length,
          steps: r.steps,
          accuracy: r.accuracy,
          macroF1: r.macroF1,
          confusion: r.confusion,
          firstLoss: mean(r.losses.slice(0, k)),
          lastLoss: mean(r.losses.slice(-k)),
          trainableParams: r.trainableParams,
          totalParams: r.totalParams,
          seconds: r.seconds,
        };
      } finally {
        bar.stop();
      }
    } finally {
      model.dispose();
    }
  } finally {
    if (!runtime) rt.destroy();
  }
}

async function finetuneCommand(f: FinetuneTextFlags): Promise<void> {
  const r = await runFinetuneText(f);
  if (f.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `${r.strategy}: accuracy ${(100 * r.accuracy).toFixed(1)}%, macro-F1 ${r.macroF1.toFixed(3)} on ${r.test} test texts ` +
        `(${r.train} train, ${r.steps} steps, ${r.seconds.toFixed(1)} s, ${r.trainableParams}/${r.totalParams} parameters trained, loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)})`,
    );
  }
}

const num = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new GraftError(`${flag} must be a positive number, got '${v}'`);
  return n;
};

/** Add `graft finetune-text` to the program. */
export function registerFinetuneTextCommand(program: Command): Command {
  return program
    .command('finetune-text')
    .description('fine-tune a BERT folder for text classification (stratified seeded split) and report accuracy / macro-F1')
    .requiredOption('--model <dir>', 'BERT folder (e.g. the output of graft pretrain-mlm)')
    .option('--data <name|file>', "'spam-assassin' or a .jsonl file with text and label fields", 'spam-assassin')
    .option('--strategy <s>', `${TEXT_STRATEGIES.join(' | ')}`, 'full')
    .option('--epochs <n>', 'passes over the training split', posInt('--epochs'), 3)
    .option('--lr <x>', 'peak learning rate (default per strategy)', num('--lr'))
    .option('--head-lr <x>', 'learning rate of the pooler + classifier (default: --lr)', num('--head-lr'))
    .option('--batch <n>', 'texts per step', posInt('--batch'), 16)
    .option('--seq <n>', 'tokens per text', posInt('--seq'), 128)
    .option('--train-limit <n>', 'train on a stratified subset of n texts', posInt('--train-limit'))
    .option('--test-limit <n>', 'test on a stratified subset of n texts', posInt('--test-limit'))
    .option('--seed <n>', 'split, shuffle and initialisation seed', (v: string) => Number(v), 0)
    .option('--json', 'print one JSON summary line')
    .action(finetuneCommand);
}

/** Add `graft pretrain-mlm` and `graft finetune-text`. */
export function registerTextCommands(program: Command): Command {
  registerPretrainMlmCommand(program);
  registerFinetuneTextCommand(program);
  return program;
}
