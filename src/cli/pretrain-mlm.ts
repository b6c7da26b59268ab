// `graft pretrain-mlm`: masked-LM pretraining of a BERT (random init from a config.json, or a model folder) on SpamAssassin or JSONL text (the fine-tuning test split held out).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { Rng } from '../autograd/random.js';
import { loadSpamAssassin } from '../data/spam-assassin.js';
import { loadJsonl } from '../data/text-files.js';
import { WordPieceTokenizer } from '../text/wordpiece.js';
import { readBertConfig } from '../models/bert-config.js';
import { BertForMaskedLM, loadBertForMaskedLM } from '../models/bert-mlm.js';
import { pretrainMlm, type PretrainMlmResult } from '../train-text/mlm.js';
import { posInt } from './errors.js';
import { trimVocab } from '../train-text/vocab.js';
import { textSplits } from '../train-text/data.js';
import { startProgress } from './progress.js';

export interface PretrainMlmFlags {
  /** 'spam-assassin' or a .jsonl file with a "text" field per line. */
  data: string;
  /** A config.json (random init) or a model folder to continue from. */
  config?: string;
  model?: string;
  vocab?: string;
  steps?: number;
  epochs?: number;
  batch?: number;
  seq?: number;
  lr?: number;
  seed?: number;
  limit?: number;
  out: string;
  json?: boolean;
  /** Cut --vocab to the N pieces the pretraining texts use most (--config only; see trimVocab). */
  vocabSize?: number;
  /**
   * Labelled data (spam-assassin): leave out the test split that `graft finetune-text --test-fraction f --seed s`
   * holds out (same stratified split; default 0.2; 0 = use every text). JSONL files are used whole.
   */
  testFraction?: number;
  /** Seed of that split (default: --seed). */
  splitSeed?: number;
}

export interface PretrainMlmSummary {
  out: string;
  steps: number;
  firstLoss: number;
  lastLoss: number;
  seconds: number;
  texts: number;
  params: number;
  vocabSize: number;
  /** Share of the texts' tokens (full vocabulary) the trimmed vocabulary keeps (1 without --vocab-size). */
  vocabCoverage: number;
}

/**
 * Texts of --data: SpamAssassin bodies (subject + body, 2000 characters at most; without the finetune-text
 * test split of `holdout` when given) or a JSONL file's "text" fields. `limit` keeps the first n.
 */
export async function readTexts(data: string, limit?: number, holdout?: { testFraction: number; seed: number }): Promise<string[]> {
  if (data === 'spam-assassin') {
    if (holdout && holdout.testFraction > 0) {
      if (!(holdout.testFraction < 1)) throw new GraftError(`--test-fraction must be in [0, 1), got ${holdout.testFraction}`);
      const { train } = await textSplits({ data, testFraction: holdout.testFraction, seed: holdout.seed });
      return train.slice(0, limit ?? train.length).map((e) => e.text);
    }
    const ds = await loadSpamAssassin({ maxChars: 2000, limit });
    return Array.from({ length: ds.length }, (_, i) => ds.get(i).text);
  }
  if (!data.endsWith('.jsonl')) throw new GraftError(`--data must be 'spam-assassin' or a .jsonl file, got '${data}'`);
  if (!existsSync(data)) throw new GraftError(`--data ${data}: no such file`);
  const ds = await loadJsonl(data, { labelField: null });
  const n = Math.min(ds.length, limit ?? Infinity);
  return Array.from({ length: n }, (_, i) => ds.get(i).text);
}

const num = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new GraftError(`${flag} must be a positive number, got '${v}'`);
  return n;
};

/** Build or load the model, pretrain, save; returns the summary. */
export async function runPretrainMlm(f: PretrainMlmFlags, runtime?: Runtime): Promise<PretrainMlmSummary> {
  if (!f.out) throw new GraftError('give --out DIR');
  if (!!f.config === !!f.model) throw new GraftError('give exactly one of --config (a config.json, random init) or --model (a folder to continue from)');
  if (f.steps !== undefined && f.epochs !== undefined) throw new GraftError('give --steps or --epochs, not both');
  if (f.vocabSize !== undefined && !f.config) throw new GraftError('--vocab-size needs --config (a model folder keeps its vocabulary)');
  const texts = await readTexts(f.data, f.limit, { testFraction: f.testFraction ?? 0.2, seed: f.splitSeed ?? f.seed ?? 0 });
  if (!texts.length) throw new GraftError(`--data ${f.data}: no texts`);
  const rt = runtime ?? (await Runtime.create());
  let model: BertForMaskedLM | null = null;
  try {
    let tokenizer: WordPieceTokenizer;
    let vocabPath: string | undefined;
    let coverage = 1;
    if (f.model) {
      if (!existsSync(f.model) || !statSync(f.model).isDirectory()) throw new GraftError(`--model ${f.model}: no such folder`);
      const loaded = await loadBertForMaskedLM(rt, f.model, { rng: new Rng(f.seed ?? 0) });
      model = loaded.model;
      if (f.vocab) tokenizer = await WordPieceTokenizer.fromVocabFile(f.vocab);
      else if (loaded.tokenizer) tokenizer = loaded.tokenizer;
      else throw new GraftError(`${f.model}: no tokenizer; give --vocab vocab.txt`);
      vocabPath = f.vocab ?? (existsSync(join(f.model, 'vocab.txt')) ? join(f.model, 'vocab.txt') : undefined);
    } else {
      if (!f.vocab) throw new GraftError('--config needs --vocab vocab.txt');
      if (!existsSync(f.config!)) throw new GraftError(`--config ${f.config}: no such file`);
      let cfg = await readBertConfig(f.config!);
      tokenizer = await WordPieceTokenizer.fromVocabFile(f.vocab);
      vocabPath = f.vocab;
      if (f.vocabSize !== undefined) {
        const t = trimVocab(tokenizer, texts, f.vocabSize);
        tokenizer = t.tokenizer;
        coverage = t.coverage;
        vocabPath = undefined; // saved from the trimmed tokenizer
        cfg = { ...cfg, vocabSize: tokenizer.size };
      }
      model = new BertForMaskedLM(rt, cfg, { rng: new Rng(f.seed ?? 0) });
    }
    if (tokenizer.size > model.config.vocabSize) throw new GraftError(`the vocabulary has ${tokenizer.size} tokens, more than the config's vocab_size ${model.config.vocabSize}`);
    const batch = f.batch ?? 16;
    const total = f.steps ?? Math.ceil(texts.length / batch) * (f.epochs ?? 1);
    const bar = startProgress('pretrain-mlm', { total, unit: 'steps', json: f.json });
    let res: PretrainMlmResult;
    try {
      res = await pretrainMlm({
        model,
        tokenizer,
        texts,
        steps: total,
        batch,
        seq: f.seq ?? 128,
        lr: f.lr,
        seed: f.seed ?? 0,
        out: f.out,
        vocabPath,
        onStep: (s, _n, loss) => {
          bar.label(`pretrain-mlm loss ${Number.isFinite(loss) ? loss.toFixed(3) : '-'}`);
          bar.update(s);
        },
      });
    } finally {
      bar.stop();
    }
    return { out: f.out, steps: res.steps, firstLoss: res.firstLoss, lastLoss: res.lastLoss, seconds: res.seconds, texts: texts.length, params: model.parameters().reduce((s, t) => s + t.size, 0), vocabSize: tokenizer.size, vocabCoverage: coverage };
  } finally {
    model?.dispose();
    if (!runtime) rt.destroy();
  }
}

async function pretrainCommand(f: PretrainMlmFlags): Promise<void> {
  const r = await runPretrainMlm(f);
  if (f.json) console.log(JSON.stringify(r));
  else {
    console.log(
      `saved ${r.out}: ${r.steps} steps on ${r.texts} texts in ${r.seconds.toFixed(1)} s, MLM loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)} ` +
        `(${r.params} parameters, vocabulary ${r.vocabSize}${r.vocabCoverage < 1 ? `, covering ${(100 * r.vocabCoverage).toFixed(1)}% of the text's tokens` : ''})`,
    );
  }
}

/** Add `graft pretrain-mlm` to the program. */
export function registerPretrainMlmCommand(program: Command): Command {
  return program
    .command('pretrain-mlm')
    .description('masked-language-model pretraining (BERT 80/10/10 masking) on unlabelled text; saves a Hugging Face folder')
    .requiredOption('--data <name|file>', "'spam-assassin' or a .jsonl file with a \"text\" field per line")
    .option('--config <config.json>', 'start from random weights with this BERT config (e.g. ../shared/assets/bert/bert-tiny/config.json)')
    .option('--model <dir>', 'continue from this model folder instead')
    .option('--vocab <vocab.txt>', 'WordPiece vocabulary (required with --config)')
    .option('--steps <n>', 'optimizer steps', posInt('--steps'))
    .option('--epochs <n>', 'passes over the data (when --steps is not given; default 1)', posInt('--epochs'))
    .option('--batch <n>', 'texts per step', posInt('--batch'), 16)
    .option('--seq <n>', 'tokens per text, [CLS]/[SEP] included', posInt('--seq'), 128)
    .option('--lr <x>', 'peak learning rate', num('--lr'), 1e-3)
    .option('--seed <n>', 'initialisation, shuffling and masking seed', (v: string) => Number(v), 0)
    .option('--limit <n>', 'use only the first n texts', posInt('--limit'))
    .option('--vocab-size <n>', 'cut --vocab to the n pieces these texts use most (with --config; smaller output layer)', posInt('--vocab-size'))
    .option('--test-fraction <f>', 'spam-assassin: hold out the test split finetune-text uses with this --test-fraction (0 = use every text)', (v: string) => Number(v), 0.2)
    .option('--split-seed <n>', 'seed of that split (default: --seed)', (v: string) => Number(v))
    .requiredOption('--out <dir>', 'where to save the model (config.json, model.safetensors, vocab.txt)')
    .option('--json', 'print one JSON summary line')
    .action(pretrainCommand);
}
