// `graft embed`: sentence embeddings (mean-pooled BERT) of --text inputs, from a model folder or a Hugging Face hub id.
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { hubDownload, isHubModelId, type HubProgress } from '../io/hub.js';
import { loadBert } from '../models/bert-load.js';
import { embedTexts, readSentenceConfig, type SentencePooling } from '../models/bert-embed.js';
import { posInt } from './errors.js';
import { startProgress, type Progress } from './progress.js';

export interface EmbedFlags {
  model: string;
  text?: string[];
  json?: boolean;
  /** true / false override the folder's sentence-transformers Normalize module; undefined follows it. */
  normalize?: boolean;
  pooling?: SentencePooling;
  maxLength?: number;
  batchSize?: number;
  revision?: string;
  cacheDir?: string;
  offline?: boolean;
}

export interface EmbedResult {
  model: string;
  dim: number;
  pooling: SentencePooling;
  normalized: boolean;
  embeddings: number[][];
}

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Files smaller than this finish at once: no bar. */
const BAR_MIN_BYTES = 1_000_000;

/** One bar per downloaded file ≥ 1 MB on stderr (kB, kB/s, ETA); nothing off a TTY or with --json. */
export function downloadProgress(json: boolean | undefined): { onProgress: (p: HubProgress) => void; stop: () => void } {
  let bar: Progress | null = null;
  let file = '';
  return {
    onProgress(p) {
      if (p.file !== file || !bar) {
        bar?.stop();
        bar = null;
        file = p.file;
        if ((p.total ?? 0) - p.resumedFrom < BAR_MIN_BYTES) return;
        const kb = Math.max(1, Math.ceil(((p.total ?? p.done) - p.resumedFrom) / 1000));
        const resumed = p.resumedFrom > 0 ? ` (resuming at ${(p.resumedFrom / 1e6).toFixed(1)} MB)` : '';
        bar = startProgress(`${p.file}${resumed}`, { total: kb, unit: 'kB', json });
      }
      bar.update(Math.floor((p.done - p.resumedFrom) / 1000));
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

/** A local folder as is; otherwise a hub id downloaded into (or found in) the cache. */
async function resolveModel(f: EmbedFlags, say: (s: string) => void): Promise<string> {
  if (isDir(f.model)) return f.model;
  if (!isHubModelId(f.model)) throw new GraftError(`--model ${f.model}: no such folder, and not a hub model id ('org/name')`);
  const bars = downloadProgress(f.json);
  try {
    const snap = await hubDownload(f.model, {
      revision: f.revision,
      cacheDir: f.cacheDir,
      offline: f.offline || undefined,
      onProgress: bars.onProgress,
      onFile: (file, status) => {
        if (status === 'downloaded') say(`downloaded ${file}`);
      },
    });
    return snap.dir;
  } finally {
    bars.stop();
  }
}

/** Load, embed, return the result (the runtime is created and destroyed here unless one is given). */
export async function runEmbed(f: EmbedFlags, runtime?: Runtime): Promise<EmbedResult> {
  const texts = f.text ?? [];
  if (!texts.length) throw new GraftError('give at least one --text');
  if (f.pooling !== undefined && f.pooling !== 'mean' && f.pooling !== 'cls') throw new GraftError(`--pooling must be 'mean' or 'cls', got '${String(f.pooling)}'`);
  const say = (s: string) => {
    if (!f.json) process.stderr.write(`${s}\n`);
  };
  const dir = await resolveModel(f, say);
  const st = await readSentenceConfig(dir);
  const rt = runtime ?? (await Runtime.create());
  try {
    const { model, tokenizer, config } = await loadBert(rt, dir);
    try {
      if (!tokenizer) throw new GraftError(`${dir}: no tokenizer (tokenizer.json or vocab.txt)`);
      const pooling = f.pooling ?? st.pooling;
      const normalized = f.normalize ?? st.normalize;
      const maxLength = f.maxLength ?? st.maxSeqLength ?? config.maxPositionEmbeddings;
      const embs = await embedTexts(model, tokenizer, texts, { pooling, normalize: normalized, maxLength, batchSize: f.batchSize });
      return { model: f.model, dim: config.hiddenSize, pooling, normalized, embeddings: embs.map((e) => Array.from(e)) };
    } finally {
      model.dispose();
    }
  } finally {
    if (!runtime) rt.destroy();
  }
}

/** The action: JSON `{ model, dim, pooling, normalized, embeddings }`, or one line of numbers per text. */
export async function embedCommand(f: EmbedFlags): Promise<void> {
  let r: EmbedResult;
  try {
    r = await runEmbed(f);
  } catch (e) {
    // The CLI prints `graft: <message>` on one line: fold multi-line reports (e.g. shape mismatch lists).
    if (e instanceof GraftError) e.message = e.message.replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
    throw e;
  }
  if (f.json) {
    console.log(JSON.stringify(r));
    return;
  }
  process.stderr.write(`${r.model}: ${r.embeddings.length} embedding(s) of dim ${r.dim} (${r.pooling} pooling${r.normalized ? ', L2-normalised' : ''})\n`);
  for (const e of r.embeddings) console.log(e.map((v) => Number(v.toPrecision(7))).join(' '));
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Add `graft embed` to the program. */
export function registerEmbedCommand(program: Command): Command {
  return program
    .command('embed')
    .description('sentence embeddings (mean-pooled BERT) of the given texts, from a model folder or a Hugging Face hub id')
    .requiredOption('--model <dir|id>', 'model folder (config.json, model.safetensors, vocab.txt / tokenizer.json) or hub id, e.g. sentence-transformers/all-MiniLM-L6-v2')
    .option('--text <text>', 'a text to embed (repeat for several)', collect, [])
    .option('--json', 'print one JSON object { model, dim, pooling, normalized, embeddings }')
    .option('--normalize', 'L2-normalise the embeddings (default: as the model folder says)')
    .option('--no-normalize', 'do not L2-normalise, even if the model folder has a Normalize module')
    .option('--pooling <mode>', "'mean' (default) or 'cls' (default: as the model folder says)")
    .option('--max-length <n>', 'truncate texts to this many tokens', posInt('--max-length'))
    .option('--batch-size <n>', 'texts per forward pass', posInt('--batch-size'), 32)
    .option('--revision <rev>', 'hub branch, tag or commit', 'main')
    .option('--cache-dir <dir>', 'cache folder (default: $GRAFT_CACHE_DIR or ~/.cache/graft)')
    .option('--offline', 'use only the cache (also GRAFT_OFFLINE=1 / HF_HUB_OFFLINE=1)')
    .action(embedCommand);
}
