// torchvision ResNet checkpoints in safetensors: infer the depth, validate every key and shape, load into a ResNet.
//
// PyTorch's .pth files are pickles and cannot be read without Python; convert them first with
//   import torch, safetensors.torch
//   sd = torch.load('resnet50.pth', map_location='cpu')
//   safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, 'resnet50.safetensors')
// (or `torchvision.models.resnet50(weights=...).state_dict()`).
import { CheckpointReader } from '../io/sharded.js';
import { CheckpointError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { RESNET_CONFIGS, ResNet, torchvisionResnetShapes, type ResNetDepth } from './resnet.js';

/** Prefixes training wrappers add to every key (DataParallel's `module.`). */
const WRAPPER_PREFIXES = ['module.', 'model.'];
const IGNORED = /(^|\.)num_batches_tracked$/;

export interface TorchvisionCheckpoint {
  reader: CheckpointReader;
  depth: ResNetDepth;
  numClasses: number;
  /** torchvision key -> key in the file */
  keys: Map<string, string>;
}

/** The torchvision key of a file key (wrapper prefix stripped), or null for bookkeeping entries. */
function canonical(name: string): string | null {
  if (IGNORED.test(name)) return null;
  for (const p of WRAPPER_PREFIXES) if (name.startsWith(p)) return name.slice(p.length);
  return name;
}

/** Which torchvision depth a set of keys describes (block type and blocks per stage), or null. */
export function inferResnetDepth(keys: Iterable<string>): ResNetDepth | null {
  const blocks = [0, 0, 0, 0];
  let bottleneck = false;
  for (const k of keys) {
    const m = /^layer([1-4])\.(\d+)\.(conv\d)\./.exec(k);
    if (!m) continue;
    const s = Number(m[1]) - 1;
    blocks[s] = Math.max(blocks[s]!, Number(m[2]) + 1);
    if (m[3] === 'conv3') bottleneck = true;
  }
  for (const [d, cfg] of Object.entries(RESNET_CONFIGS)) {
    if ((cfg.block === 'bottleneck') === bottleneck && cfg.layers.every((n, i) => n === blocks[i])) return Number(d) as ResNetDepth;
  }
  return null;
}

/**
 * Open a safetensors file (or sharded index) of a torchvision ResNet state dict and check it against the
 * architecture: every key present with torchvision's shape, nothing unexpected (num_batches_tracked and a
 * `module.` prefix are tolerated). Problems are CheckpointErrors naming the tensors.
 */
export async function openTorchvisionCheckpoint(path: string): Promise<TorchvisionCheckpoint> {
  const reader = await CheckpointReader.open(path);
  try {
    return validate(reader, path);
  } catch (e) {
    await reader.close();
    throw e;
  }
}

function validate(reader: CheckpointReader, path: string): TorchvisionCheckpoint {
  const keys = new Map<string, string>();
  const shapes = new Map<string, readonly number[]>();
  for (const n of reader.names) {
    const c = canonical(n);
    if (c === null) continue;
    if (keys.has(c)) throw new CheckpointError(`${path}: '${n}' and '${keys.get(c)}' are the same torchvision key`);
    keys.set(c, n);
    shapes.set(c, reader.info(n).shape);
  }
  const r = checkTorchvisionShapes(shapes);
  if ('error' in r) throw new CheckpointError(`${path}: ${r.error}`);
  return { reader, depth: r.depth, numClasses: r.numClasses, keys };
}

/**
 * Compare torchvision keys and shapes against the architecture they imply (depth from the block
 * structure, classes from fc.weight): every key present with its shape, nothing unexpected. The error
 * lists unexpected keys and shape mismatches before missing keys, at most 6 problems.
 */
export function checkTorchvisionShapes(shapes: ReadonlyMap<string, readonly number[]>): { depth: ResNetDepth; numClasses: number } | { error: string } {
  const depth = inferResnetDepth(shapes.keys());
  if (depth === null) return { error: 'not a torchvision ResNet state dict (no layer1..layer4 block structure of resnet18/34/50/101/152)' };
  const fc = shapes.get('fc.weight');
  if (!fc || fc.length !== 2) return { error: `missing 'fc.weight' [classes, features]` };
  const numClasses = fc[0]!;
  const want = torchvisionResnetShapes(depth, numClasses);
  const unexpected = [...shapes.keys()].filter((k) => !want.has(k)).map((k) => `unexpected '${k}'`);
  const misshapen: string[] = [];
  const missing: string[] = [];
  for (const [k, shape] of want) {
    const got = shapes.get(k);
    if (!got) missing.push(`missing '${k}' [${shape.join(', ')}]`);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) misshapen.push(`'${k}' has shape [${got.join(', ')}], resnet${depth} needs [${shape.join(', ')}]`);
  }
  const problems = [...unexpected, ...misshapen, ...missing];
  if (!problems.length) return { depth, numClasses };
  const more = problems.length > 6 ? `; … (${problems.length} problems)` : '';
  return { error: `does not match torchvision resnet${depth}: ${problems.slice(0, 6).join('; ')}${more}` };
}

/** Read one tensor (torchvision key) as float32, rejecting NaN / Inf. */
export async function readTorchvisionTensor(ck: TorchvisionCheckpoint, key: string, where: string): Promise<Float32Array> {
  const f = ck.keys.get(key);
  if (!f) throw new CheckpointError(`${where}: missing '${key}'`);
  const { data } = await ck.reader.read(f);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new CheckpointError(`${where}: tensor '${f}' holds a non-finite value at element ${i} (corrupt file?)`);
  }
  return data;
}

/** Build the matching torchvision ResNet and load a validated safetensors checkpoint into it (eval mode). */
export async function loadTorchvisionResnet(rt: Runtime, path: string): Promise<ResNet> {
  const ck = await openTorchvisionCheckpoint(path);
  const net = new ResNet(rt, ck.depth, { numClasses: ck.numClasses });
  try {
    for (const [k, t] of net.stateDict()) t.write(await readTorchvisionTensor(ck, k, path));
    net.invalidateFolds();
  } catch (e) {
    net.dispose();
    throw e;
  } finally {
    await ck.reader.close();
  }
  return net.eval();
}
