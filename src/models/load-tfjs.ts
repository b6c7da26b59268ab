// Load a Keras ResNet from a TF.js layers model (model.json + shards): HWIO kernels -> OIHW, [in, out] dense -> [out, in].
import { TfjsLayersModel } from '../io/tfjs-layers.js';
import { CheckpointError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../autograd/random.js';
import { parseKerasResNet, specPairs, type KerasResNetSpec } from './keras-resnet-spec.js';
import { KerasResNet } from './keras-resnet50.js';

export type KerasLayout = 'conv' | 'dense' | 'vector';

/** One graft parameter and the Keras weight it comes from. */
export interface KerasWeightEntry {
  /** graft key, e.g. `res2a_branch2a.weight` */
  key: string;
  /** TF.js weight name, e.g. `res2a_branch2a/kernel` */
  source: string;
  /** Shape in the file: [kh, kw, in, out] (conv), [in, out] (dense), [n] (vector). */
  kerasShape: number[];
  /** Shape in graft: [out, in, kh, kw], [out, in], [n]. */
  shape: number[];
  layout: KerasLayout;
}

/** Every parameter of the network with its Keras source, in topology order. */
export function kerasWeightMap(spec: KerasResNetSpec): KerasWeightEntry[] {
  const out: KerasWeightEntry[] = [];
  const vec = (layer: string, suffix: string, kerasName: string, n: number) =>
    out.push({ key: `${layer}.${suffix}`, source: `${layer}/${kerasName}`, kerasShape: [n], shape: [n], layout: 'vector' });
  for (const { conv: c, bn } of specPairs(spec)) {
    const [kh, kw] = c.kernel;
    out.push({
      key: `${c.name}.weight`,
      source: `${c.name}/kernel`,
      kerasShape: [kh, kw, c.inChannels, c.filters],
      shape: [c.filters, c.inChannels, kh, kw],
      layout: 'conv',
    });
    if (c.useBias) vec(c.name, 'bias', 'bias', c.filters);
    vec(bn.name, 'weight', 'gamma', bn.channels);
    vec(bn.name, 'bias', 'beta', bn.channels);
    vec(bn.name, 'running_mean', 'moving_mean', bn.channels);
    vec(bn.name, 'running_var', 'moving_variance', bn.channels);
  }
  const d = spec.dense;
  out.push({ key: `${d.name}.weight`, source: `${d.name}/kernel`, kerasShape: [d.inFeatures, d.units], shape: [d.units, d.inFeatures], layout: 'dense' });
  if (d.useBias) vec(d.name, 'bias', 'bias', d.units);
  return out;
}

/** Keras layout -> graft layout: HWIO [kh, kw, in, out] -> OIHW [out, in, kh, kw]; [in, out] -> [out, in]. */
export function kerasToGraft(data: Float32Array, kerasShape: readonly number[], layout: KerasLayout): Float32Array {
  if (layout === 'vector') return data;
  const out = new Float32Array(data.length);
  if (layout === 'dense') {
    const [nin, nout] = kerasShape as [number, number];
    for (let i = 0; i < nin; i++) for (let o = 0; o < nout; o++) out[o * nin + i] = data[i * nout + o]!;
    return out;
  }
  const [kh, kw, nin, nout] = kerasShape as [number, number, number, number];
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < nin; i++) {
        const src = ((h * kw + w) * nin + i) * nout;
        for (let o = 0; o < nout; o++) out[((o * nin + i) * kh + h) * kw + w] = data[src + o]!;
      }
  return out;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Check that the file holds exactly the weights the topology needs, with the right shapes: a missing,
 * misshapen or unused weight is a CheckpointError naming it (and both shapes).
 */
export function checkKerasWeights(model: TfjsLayersModel, map: readonly KerasWeightEntry[], where: string): void {
  const used = new Set<string>();
  for (const e of map) {
    const w = model.weights.get(e.source);
    if (!w) throw new CheckpointError(`${where}: weight '${e.source}' (for ${e.key}) is missing from the weights manifest`);
    if (!same(w.shape, e.kerasShape)) {
      throw new CheckpointError(`${where}: weight '${e.source}' has shape [${w.shape.join(', ')}] but the topology needs [${e.kerasShape.join(', ')}]`);
    }
    used.add(e.source);
  }
  const extra = [...model.weights.keys()].filter((k) => !used.has(k));
  if (extra.length) throw new CheckpointError(`${where}: ${extra.length} weight(s) no layer uses: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', …' : ''}`);
}

/** Read one weight in graft layout, rejecting NaN / Inf (a corrupt shard). */
export async function readKerasWeight(model: TfjsLayersModel, e: KerasWeightEntry, where: string): Promise<Float32Array> {
  const { data } = await model.read(e.source);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new CheckpointError(`${where}: weight '${e.source}' holds a non-finite value at element ${i} (corrupt file?)`);
  }
  return kerasToGraft(data, e.kerasShape, e.layout);
}

/** Open a TF.js model.json and parse its ResNet topology (no GPU needed). */
export async function openKerasResNet(modelJson: string): Promise<{ model: TfjsLayersModel; spec: KerasResNetSpec; map: KerasWeightEntry[] }> {
  const model = await TfjsLayersModel.open(modelJson);
  const spec = parseKerasResNet(model.layers, modelJson);
  const map = kerasWeightMap(spec);
  checkKerasWeights(model, map, modelJson);
  return { model, spec, map };
}

/** Copy every weight of `model` into `net` (whose spec must be the file's). */
export async function loadKerasWeights(net: KerasResNet, model: TfjsLayersModel, map: readonly KerasWeightEntry[], where: string): Promise<void> {
  const sd = net.stateDict();
  for (const e of map) {
    const dst: Tensor | undefined = sd.get(e.key);
    if (!dst) throw new CheckpointError(`${where}: the network has no parameter '${e.key}'`);
    if (!same(dst.shape, e.shape)) throw new CheckpointError(`${where}: '${e.key}' is [${dst.shape.join(', ')}] in the network but [${e.shape.join(', ')}] in the file`);
    dst.write(await readKerasWeight(model, e, where));
  }
  if (sd.size !== map.length) {
    const have = new Set(map.map((e) => e.key));
    const missing = [...sd.keys()].filter((k) => !have.has(k));
    throw new CheckpointError(`${where}: no weights for ${missing.join(', ')}`);
  }
  net.invalidateFolds();
}

/** Build a KerasResNet from a TF.js layers model.json and load its weights (eval mode). */
export async function loadKerasResNet(rt: Runtime, modelJson: string, opts: { rng?: Rng } = {}): Promise<KerasResNet> {
  const { model, spec, map } = await openKerasResNet(modelJson);
  const net = new KerasResNet(rt, spec, opts);
  try {
    await loadKerasWeights(net, model, map, modelJson);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net.eval();
}
