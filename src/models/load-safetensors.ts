// Load a ResNet from safetensors: graft's Keras-ResNet files (architecture in the metadata) or torchvision state dicts.
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { CheckpointError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import type { KerasResNetSpec } from './keras-resnet-spec.js';
import { KerasResNet } from './keras-resnet50.js';
import { loadTorchvisionResnet } from './load-torchvision.js';
import type { ResNet } from './resnet.js';

/** Metadata keys graft writes into converted ResNet safetensors. */
export const META_ARCH = 'graft.arch';
export const META_SPEC = 'graft.spec';
export const META_PREPROCESS = 'graft.preprocess';
export const KERAS_ARCH = 'keras-resnet';

export type LoadedResnet = { kind: 'keras'; net: KerasResNet } | { kind: 'torchvision'; net: ResNet };

/** Write a Keras ResNet's parameters (graft names and layouts) with its architecture in the metadata. */
export async function writeKerasSafetensors(path: string, spec: KerasResNetSpec, tensors: Iterable<[string, TensorToWrite]>, source: string): Promise<void> {
  await writeSafetensors(path, tensors, {
    [META_ARCH]: KERAS_ARCH,
    [META_SPEC]: JSON.stringify(spec),
    [META_PREPROCESS]: 'caffe',
    'graft.source': source,
  });
}

/** Build a KerasResNet from a file written by writeKerasSafetensors and load its weights (eval mode). */
export async function loadKerasSafetensors(rt: Runtime, path: string): Promise<KerasResNet> {
  const f = await SafetensorsFile.open(path);
  try {
    const meta = f.header.metadata;
    if (meta[META_ARCH] !== KERAS_ARCH) throw new CheckpointError(`${path}: not a graft Keras-ResNet file (metadata ${META_ARCH} = ${JSON.stringify(meta[META_ARCH])})`);
    let spec: KerasResNetSpec;
    try {
      spec = JSON.parse(meta[META_SPEC] ?? '') as KerasResNetSpec;
    } catch {
      throw new CheckpointError(`${path}: metadata ${META_SPEC} is not valid JSON`);
    }
    let net: KerasResNet;
    try {
      net = new KerasResNet(rt, spec);
    } catch (e) {
      throw new CheckpointError(`${path}: metadata ${META_SPEC} does not describe a ResNet (${(e as Error).message})`);
    }
    try {
      const own = net.stateDict();
      const extra = f.names.filter((n) => !own.has(n));
      if (extra.length) throw new CheckpointError(`${path}: unexpected tensor(s) ${extra.slice(0, 6).join(', ')}`);
      for (const [k, t] of own) {
        if (!f.header.tensors.has(k)) throw new CheckpointError(`${path}: missing tensor '${k}' [${t.shape.join(', ')}]`);
        const { shape, data } = await f.read(k);
        if (shape.length !== t.rank || shape.some((d, i) => d !== t.shape[i])) {
          throw new CheckpointError(`${path}: tensor '${k}' has shape [${shape.join(', ')}] but the network needs [${t.shape.join(', ')}]`);
        }
        for (let i = 0; i < data.length; i++) {
          if (!Number.isFinite(data[i]!)) throw new CheckpointError(`${path}: tensor '${k}' holds a non-finite value at element ${i}`);
        }
        t.write(data);
      }
      net.invalidateFolds();
    } catch (e) {
      net.dispose();
      throw e;
    }
    return net.eval();
  } finally {
    await f.close();
  }
}

/** A graft Keras-ResNet file (by its metadata) or else a torchvision ResNet state dict. */
export async function loadResnetSafetensors(rt: Runtime, path: string): Promise<LoadedResnet> {
  const f = await SafetensorsFile.open(path);
  const arch = f.header.metadata[META_ARCH];
  await f.close();
  if (arch === KERAS_ARCH) return { kind: 'keras', net: await loadKerasSafetensors(rt, path) };
  return { kind: 'torchvision', net: await loadTorchvisionResnet(rt, path) };
}
