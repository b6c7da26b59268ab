// `graft finetune-text`: spam/ham (or JSONL) classification from a BERT folder with full / LoRA / adapter / prompt / linear-probe tuning (saved under --out); registers the text commands.
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { Rng } from '../autograd/random.js';
import { textSplits } from '../train-text/data.js';
import { join } from 'node:path';
import { loadBertForSequenceClassification, loadBertTokenizer } from '../models/bert-load.js';
import { readBertConfig } from '../models/bert-config.js';
import { BertForSequenceClassification } from '../models/bert.js';
import { classificationMetrics, finetuneText, predictText, TEXT_STRATEGIES, type TextStrategy } from '../train-text/classify.js';
import { loadTextTuning, saveTextTuning } from '../train-text/save.js';
import { posInt } from './errors.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
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
  /** Random weights with the folder's config and tokenizer (the no-pretraining baseline). */
  fromScratch?: boolean;
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  /** Comma-separated module names (PEFT suffix match), e.g. 'query,value'. */
  loraTargets?: string;
  adapterSize?: number;
  promptLength?: number;
  /** Save the result here (adapter files for lora / adapter / prompt, a HF folder for full / linear-probe). */
  out?: string;
  /** Evaluate the adapter saved in this folder (by --out) on the test split; no training. */
  adapter?: string;
}

export interface FinetuneTextSummary {
  model: string;
  strategy: TextStrategy;
  /** Where the result was saved (--out), or null. */
  out: string | null;
  fromScratch: boolean;
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

export { textSplits };

/** Base model + tokenizer from --model: its weights, or (--from-scratch) random weights with its config. */
async function loadTextModel(rt: Runtime, f: FinetuneTextFlags, numLabels: number): Promise<{ model: BertForSequenceClassification; tokenizer: WordPieceTokenizer }> {
  const rng = new Rng(f.seed ?? 0);
  let model: BertForSequenceClassification;
  let tokenizer: WordPieceTokenizer | null;
  if (f.fromScratch) {
    const cfgPath = join(f.model, 'config.json');
    if (!existsSync(cfgPath)) throw new GraftError(`--model ${f.model}: no config.json`);
    tokenizer = await loadBertTokenizer(f.model);
    model = new BertForSequenceClassification(rt, await readBertConfig(cfgPath), { numLabels, rng });
  } else {
    const loaded = await loadBertForSequenceClassification(rt, f.model, { numLabels, rng });
    model = loaded.model;
    tokenizer = loaded.tokenizer;
  }
  if (!tokenizer) {
    model.dispose();
    throw new GraftError(`${f.model}: no tokenizer (tokenizer.json or vocab.txt)`);
  }
  return { model, tokenizer };
}

const meanOf = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function runFinetuneText(f: FinetuneTextFlags, runtime?: Runtime): Promise<FinetuneTextSummary> {
  if (!(TEXT_STRATEGIES as readonly string[]).includes(f.strategy)) throw new GraftError(`--strategy must be one of ${TEXT_STRATEGIES.join(', ')}, got '${f.strategy}'`);
  let strategy = f.strategy as TextStrategy;
  if (!existsSync(f.model) || !statSync(f.model).isDirectory()) throw new GraftError(`--model ${f.model}: no such folder`);
  if (f.adapter !== undefined && (!existsSync(f.adapter) || !statSync(f.adapter).isDirectory())) throw new GraftError(`--adapter ${f.adapter}: no such folder`);
  if (f.adapter !== undefined && f.out !== undefined) throw new GraftError('--adapter evaluates a saved adapter; it does not train, so --out has nothing to save');
  const targets = f.loraTargets?.split(',').map((t) => t.trim()).filter((t) => t);
  if (f.loraTargets !== undefined && !targets?.length) throw new GraftError(`--lora-targets must list module names, e.g. query,value; got '${f.loraTargets}'`);
  if (f.loraDropout !== undefined && !(f.loraDropout >= 0 && f.loraDropout < 1)) throw new GraftError(`--lora-dropout must be in [0, 1), got ${f.loraDropout}`);
  if (f.testFraction !== undefined && !(f.testFraction > 0 && f.testFraction < 1)) throw new GraftError(`--test-fraction must be in (0, 1), got ${f.testFraction}`);
  const { train, test } = await textSplits(f);
  const numLabels = Math.max(...train.map((e) => e.label), ...test.map((e) => e.label)) + 1;
  const rt = runtime ?? (await Runtime.create());
  try {
    const { model, tokenizer } = await loadTextModel(rt, f, numLabels);
    try {
      const seq = Math.min(f.seq ?? 128, model.config.maxPositionEmbeddings);
      const common = { model: f.model, fromScratch: !!f.fromScratch, train: train.length, test: test.length, totalParams: model.parameters().reduce((s, t) => s + t.size, 0) };
      if (f.adapter !== undefined) {
        const t0 = performance.now();
        const loaded = await loadTextTuning(model, f.adapter);
        strategy = loaded.strategy;
        try {
          const pred = await predictText(model, tokenizer, test, { seq, batch: f.batch, prompt: loaded.prompt });
          const m = classificationMetrics(Int32Array.from(test, (e) => e.label), pred, numLabels);
          return { ...common, strategy, out: null, steps: 0, accuracy: m.accuracy, macroF1: m.macroF1, confusion: m.confusion, firstLoss: NaN, lastLoss: NaN, trainableParams: 0, seconds: (performance.now() - t0) / 1000 };
        } finally {
          loaded.prompt?.dispose();
        }
      }
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
          seq,
          seed: f.seed ?? 0,
          adapterSize: f.adapterSize,
          promptLength: f.promptLength,
          lora: { r: f.loraR, alpha: f.loraAlpha, dropout: f.loraDropout, targetModules: targets },
          onStep: (s, _n, loss) => {
            bar.label(`finetune-text (${strategy}) loss ${loss.toFixed(3)}`);
            bar.update(s);
          },
        });
        try {
          if (f.out) await saveTextTuning(model, strategy, f.out, { prompt: r.prompt, tokenizer, base: f.model });
        } finally {
          r.prompt?.dispose();
        }
        const k = Math.max(1, Math.min(10, Math.floor(r.losses.length / 4)));
        return {
          ...common,
          strategy,
          out: f.out ?? null,
          steps: r.steps,
          accuracy: r.accuracy,
          macroF1: r.macroF1,
          confusion: r.confusion,
          firstLoss: meanOf(r.losses.slice(0, k)),
          lastLoss: meanOf(r.losses.slice(-k)),
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
  else if (f.adapter !== undefined) {
    console.log(`${r.strategy} adapter ${f.adapter}: accuracy ${(100 * r.accuracy).toFixed(1)}%, macro-F1 ${r.macroF1.toFixed(3)} on ${r.test} test texts (${r.seconds.toFixed(1)} s)`);
  } else {
    console.log(
      `${r.strategy}: accuracy ${(100 * r.accuracy).toFixed(1)}%, macro-F1 ${r.macroF1.toFixed(3)} on ${r.test} test texts ` +
        `(${r.train} train, ${r.steps} steps, ${r.seconds.toFixed(1)} s, ${r.trainableParams}/${r.totalParams} parameters trained, loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)})` +
        (r.fromScratch ? ' [from scratch]' : '') +
        (r.out ? `; saved ${r.out}` : ''),
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
    .option('--test-fraction <f>', 'share of the data held out for testing (the split graft pretrain-mlm leaves out)', (v: string) => Number(v), 0.2)
    .option('--seed <n>', 'split, shuffle and initialisation seed', (v: string) => Number(v), 0)
    .option('--from-scratch', "random weights with --model's config and tokenizer (the no-pretraining baseline)")
    .option('--lora-r <n>', 'LoRA rank (strategy lora)', posInt('--lora-r'), 8)
    .option('--lora-alpha <x>', 'LoRA alpha (scaling alpha / r)', num('--lora-alpha'), 16)
    .option('--lora-dropout <x>', 'dropout on the LoRA branch input, in [0, 1)', (v: string) => Number(v), 0.1)
    .option('--lora-targets <names>', 'comma-separated modules to adapt (PEFT suffix match)', 'query,value')
    .option('--adapter-size <n>', 'Houlsby bottleneck width (strategy adapter)', posInt('--adapter-size'), 32)
    .option('--prompt-length <n>', 'soft-prompt vectors (strategy prompt)', posInt('--prompt-length'), 8)
    .option('--out <dir>', 'save the result: PEFT adapter (lora), adapter-only files (adapter, prompt), HF folder (full, linear-probe)')
    .option('--adapter <dir>', 'evaluate the adapter saved by --out in this folder on the test split (no training)')
    .option('--json', 'print one JSON summary line')
    .action(finetuneCommand);
}

/** Add `graft pretrain-mlm` and `graft finetune-text`. */
export function registerTextCommands(program: Command): Command {
  registerPretrainMlmCommand(program);
  registerFinetuneTextCommand(program);
  return program;
}
