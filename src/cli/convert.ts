// `graft convert`: TF.js layers ResNets and torchvision ResNet state dicts -> safetensors in graft's names and layouts.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { GraftError } from '../runtime/errors.js';
import { openKerasResNet, readKerasWeight } from '../models/load-tfjs.js';
import { openTorchvisionCheckpoint, readTorchvisionTensor } from '../models/load-torchvision.js';
import { torchvisionResnetShapes } from '../models/resnet.js';
import { META_ARCH, META_PREPROCESS, writeKerasSafetensors } from '../models/load-safetensors.js';

export interface ConvertOptions {
  /** 'tfjs' (a TF.js layers model.json, e.g. Keras ResNet50) or 'torchvision' (a safetensors torchvision ResNet state dict). */
  from: string;
  input: string;
  output: string;
  json?: boolean;
}

export interface ConvertSummary {
  output: string;
  arch: string;
  tensors: number;
  parameters: number;
}

const count = (ts: Iterable<[string, TensorToWrite]>) => [...ts].reduce((n, [, t]) => n + t.data.length, 0);

async function exists(path: string): Promise<'file' | 'dir' | null> {
  const s = await stat(path).catch(() => null);
  return s ? (s.isDirectory() ? 'dir' : 'file') : null;
}

/**
 * TF.js layers model (model.json or its folder) -> safetensors: kernels HWIO -> OIHW, dense [in, out] ->
 * [out, in], parameters named `<keras layer>.weight|bias|running_mean|running_var`, architecture in the metadata.
 */
export async function convertTfjs(input: string, output: string): Promise<ConvertSummary> {
  const kind = await exists(input);
  if (!kind) throw new GraftError(`${input}: no such file or folder`);
  const modelJson = kind === 'dir' ? join(input, 'model.json') : input;
  const { model, spec, map } = await openKerasResNet(modelJson);
  const tensors: [string, TensorToWrite][] = [];
  for (const e of map) tensors.push([e.key, { shape: e.shape, data: await readKerasWeight(model, e, modelJson) }]);
  await writeKerasSafetensors(output, spec, tensors, `tfjs:${modelJson}`);
  return { output, arch: `keras-resnet (${spec.blocks.length} blocks, ${spec.dense.units} classes)`, tensors: tensors.length, parameters: count(tensors) };
}

/**
 * torchvision ResNet state dict in safetensors -> validated float32 safetensors with torchvision keys
 * (`module.` prefixes and num_batches_tracked dropped). .pth pickles must be converted in Python first.
 */
export async function convertTorchvision(input: string, output: string): Promise<ConvertSummary> {
  if (/\.(pth|pt|bin|ckpt)$/i.test(input)) {
    throw new GraftError(
      `${input}: PyTorch pickles cannot be read without Python; convert it first: python3 -c "import torch, safetensors.torch as st; ` +
        `sd = torch.load('${input}', map_location='cpu'); st.save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors')"`,
    );
  }
  if (!(await exists(input))) throw new GraftError(`${input}: no such file`);
  const ck = await openTorchvisionCheckpoint(input);
  const tensors: [string, TensorToWrite][] = [];
  try {
    for (const [k, shape] of torchvisionResnetShapes(ck.depth, ck.numClasses)) tensors.push([k, { shape, data: await readTorchvisionTensor(ck, k, input) }]);
  } finally {
    await ck.reader.close();
  }
  await writeSafetensors(output, tensors, {
    [META_ARCH]: `torchvision-resnet${ck.depth}`,
    [META_PREPROCESS]: 'torchvision',
    'graft.numClasses': String(ck.numClasses),
    'graft.source': `torchvision:${input}`,
  });
  return { output, arch: `torchvision resnet${ck.depth} (${ck.numClasses} classes)`, tensors: tensors.length, parameters: count(tensors) };
}

export async function convertCommand(opts: ConvertOptions): Promise<void> {
  let summary: ConvertSummary;
  if (opts.from === 'tfjs') summary = await convertTfjs(opts.input, opts.output);
  else if (opts.from === 'torchvision') summary = await convertTorchvision(opts.input, opts.output);
  else throw new GraftError(`--from must be 'tfjs' or 'torchvision', got '${opts.from}'`);
  if (opts.json) console.log(JSON.stringify(summary));
  else console.log(`wrote ${summary.output}: ${summary.arch}, ${summary.tensors} tensors, ${summary.parameters.toLocaleString('en-US')} parameters`);
}
