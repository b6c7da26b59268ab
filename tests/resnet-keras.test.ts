// Keras/Caffe ResNet v1 from a TF.js layers model: topology walk, HWIO -> OIHW loading, logits vs PyTorch, errors, convert round trip.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { Tensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { CheckpointError } from '../src/runtime/errors.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { parseKerasResNet } from '../src/models/keras-resnet-spec.js';
import { KerasResNet } from '../src/models/keras-resnet50.js';
import { kerasToGraft, kerasWeightMap, loadKerasResNet, openKerasResNet } from '../src/models/load-tfjs.js';
import { loadResnetSafetensors } from '../src/models/load-safetensors.js';
import { convertTfjs } from '../src/cli/convert.js';
import { synthInput, synthKeras } from '../src/models/resnet-synthetic.js';
import type { KerasLayer } from '../src/io/tfjs-layers.js';

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
}
interface ModelJson {
  modelTopology: { model_config: { config: { layers: KerasLayer[] } } };
  weightsManifest: { paths: string[]; weights: ManifestWeight[] }[];
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/resnet-keras-mini.json', import.meta.url), 'utf8')) as {
  modelJson: ModelJson;
  inputShape: number[];
  logits: number[];
  probs: number[];
};
const root = mkdtempSync(join(tmpdir(), 'graft-keras-'));
let dirs = 0;

/** Write the fixture's model.json (optionally edited) and one shard of synthetic weights in file order. */
function writeModel(edit?: (m: ModelJson, values: Map<string, Float32Array>) => void): string {
  const m = structuredClone(fx.modelJson);
  const values = new Map<string, Float32Array>();
  edit?.(m, values);
  for (const w of m.weightsManifest[0]!.weights) if (!values.has(w.name)) values.set(w.name, synthKeras(w.name, w.shape));
  const dir = join(root, `m${dirs++}`);
  mkdirSync(dir);
  const parts = m.weightsManifest[0]!.weights.map((w) => values.get(w.name)!);
  const bytes = Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  writeFileSync(join(dir, m.weightsManifest[0]!.paths[0]!), bytes);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(m));
  return join(dir, 'model.json');
}

const layers = fx.modelJson.modelTopology.model_config.config.layers;

describe('Keras ResNet topology', () => {
  it('walks the graph: stem padding, stride on branch2a, projection shortcuts, eps, head', () => {
    const spec = parseKerasResNet(layers);
    expect(spec.stem.conv).toMatchObject({ name: 'conv1', inChannels: 3, filters: 4, kernel: [7, 7], stride: [2, 2], padding: [3, 3], useBias: true });
    expect(spec.stem.bn).toEqual({ name: 'bn_conv1', channels: 4, eps: 1e-3 });
    expect(spec.pool).toEqual({ kernel: [3, 3], stride: [2, 2], padding: [1, 1] });
    expect(spec.blocks.length).toBe(8);
    const b3a = spec.blocks[2]!;
    expect(b3a.main.map((p) => [p.conv.name, p.conv.stride, p.conv.padding])).toEqual([
      ['res3a_branch2a', [2, 2], [0, 0]],
      ['res3a_branch2b', [1, 1], [1, 1]],
      ['res3a_branch2c', [1, 1], [0, 0]],
    ]);
    expect(b3a.shortcut?.conv).toMatchObject({ name: 'res3a_branch1', stride: [2, 2], inChannels: 16, filters: 32 });
    expect(spec.blocks[3]!.shortcut).toBeNull();
    expect(spec.dense).toEqual({ name: 'fc1000', inFeatures: 128, units: 10, useBias: true, activation: 'softmax' });
  });

  it('rejects topologies it cannot run, naming the layer', () => {
    const edit = (f: (ls: KerasLayer[]) => void) => {
      const ls = structuredClone(layers);
      f(ls);
      return () => parseKerasResNet(ls, 'x.json');
    };
    const conv = (ls: KerasLayer[], name: string) => ls.find((l) => l.name === name)!.config;
    expect(edit((ls) => Object.assign(conv(ls, 'res3a_branch2b'), { strides: [2, 2] }))).toThrow(/Conv2D 'res3a_branch2b' uses padding 'same' with stride \[2,2\]/);
    expect(edit((ls) => Object.assign(conv(ls, 'res2a_branch2a'), { dilation_rate: [2, 2] }))).toThrow(/res2a_branch2a' has dilation/);
    expect(edit((ls) => Object.assign(conv(ls, 'activation_1'), { activation: 'tanh' }))).toThrow(/activation_1' is not a ReLU/);
    expect(edit((ls) => Object.assign(conv(ls, 'conv1_pad'), { padding: [[3, 2], [3, 3]] }))).toThrow(/conv1_pad' pads asymmetrically/);
    expect(edit((ls) => ls.splice(ls.findIndex((l) => l.name === 'avg_pool'), 1))).toThrow(CheckpointError);
  });
});

describe('Keras ResNet weights and forward', () => {
  const gpu = useRuntime();

  it('HWIO -> OIHW and [in, out] -> [out, in]', () => {
    // kernel [kh=1, kw=2, in=2, out=3] holding its own HWIO flat index
    const hwio = new Float32Array(12).map((_, j) => j);
    const oihw = kerasToGraft(hwio, [1, 2, 2, 3], 'conv');
    // OIHW index ((o·2 + i)·1 + 0)·2 + w  <-  HWIO index ((0·2 + w)·2 + i)·3 + o
    for (let o = 0; o < 3; o++) for (let i = 0; i < 2; i++) for (let w = 0; w < 2; w++) expect(oihw[(o * 2 + i) * 2 + w]).toBe((w * 2 + i) * 3 + o);
    expect(Array.from(kerasToGraft(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], 'dense'))).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('loads the mini model and matches PyTorch logits and probabilities', async () => {
    const rt = gpu();
    const net = await loadKerasResNet(rt, writeModel());
    const keys = [...net.stateDict().keys()];
    expect(keys.slice(0, 7)).toEqual(['conv1.weight', 'conv1.bias', 'bn_conv1.weight', 'bn_conv1.bias', 'bn_conv1.running_mean', 'bn_conv1.running_var', 'res2a_branch2a.weight']);
    expect(net.stateDict().get('res3a_branch2a.weight')!.shape).toEqual([8, 16, 1, 1]);
    expect(net.stateDict().get('fc1000.weight')!.shape).toEqual([10, 128]);
    expect(keys.length).toBe(kerasWeightMap(net.spec).length);
    const x = Tensor.from(rt, synthInput(fx.inputShape), fx.inputShape);
    const logits = noGrad(() => net.forward(x));
    const probs = noGrad(() => net.probabilities(x));
    const y = await logits.read();
    console.log(`keras mini: max |logit - torch| ${maxAbsDiff(y, fx.logits).toExponential(2)}`);
    expectClose(y, fx.logits, { atol: 1e-4, rtol: 0 }, 'logits');
    expectClose(await probs.read(), fx.probs, { atol: 1e-5, rtol: 0 }, 'probs');
    // The same weights through autograd (grad mode on, unfused conv -> BN).
    const tracked = net.forward(x);
    expectClose(await tracked.read(), fx.logits, { atol: 1e-4, rtol: 0 }, 'autograd logits');
    for (const t of [x, logits, probs, tracked]) t.dispose();
    net.dispose();
  });

  it('graft convert --from tfjs writes safetensors that load back to the same network', async () => {
    const rt = gpu();
    const out = join(root, 'mini.safetensors');
    const summary = await convertTfjs(join(writeModel(), '..'), out);
    expect(summary.tensors).toBe(kerasWeightMap(parseKerasResNet(layers)).length);
    const f = await SafetensorsFile.open(out);
    expect(f.info('res2a_branch2b.weight').shape).toEqual([4, 4, 3, 3]);
    expect(f.header.metadata['graft.arch']).toBe('keras-resnet');
    await f.close();
    const loaded = await loadResnetSafetensors(rt, out);
    expect(loaded.kind).toBe('keras');
    const x = Tensor.from(rt, synthInput(fx.inputShape), fx.inputShape);
    const y = noGrad(() => loaded.net.forward(x));
    expectClose(await y.read(), fx.logits, { atol: 1e-4, rtol: 0 }, 'round trip');
    x.dispose();
    y.dispose();
    loaded.net.dispose();
  });

  it('missing, misshapen, unused, truncated and non-finite weights are CheckpointErrors naming the tensor', async () => {
    const rt = gpu();
    const w = (m: ModelJson, name: string) => m.weightsManifest[0]!.weights.find((x) => x.name === name)!;
    await expect(openKerasResNet(writeModel((m) => (w(m, 'res2b_branch2b/kernel').shape = [3, 3, 4, 5])))).rejects.toThrow(
      "weight 'res2b_branch2b/kernel' has shape [3, 3, 4, 5] but the topology needs [3, 3, 4, 4]",
    );
    await expect(
      openKerasResNet(writeModel((m) => m.weightsManifest[0]!.weights.splice(m.weightsManifest[0]!.weights.indexOf(w(m, 'bn4a_branch1/gamma')), 1))),
    ).rejects.toThrow("weight 'bn4a_branch1/gamma' (for bn4a_branch1.weight) is missing");
    await expect(openKerasResNet(writeModel((m) => m.weightsManifest[0]!.weights.push({ name: 'extra/kernel', shape: [2], dtype: 'float32' })))).rejects.toThrow(
      /1 weight\(s\) no layer uses: extra\/kernel/,
    );
    const truncated = writeModel();
    const shard = join(truncated, '..', 'group1-shard1of1.bin');
    writeFileSync(shard, readFileSync(shard).subarray(0, 1000));
    await expect(openKerasResNet(truncated)).rejects.toThrow(CheckpointError);
    const nan = writeModel((m, v) => {
      const bad = synthKeras('res5b_branch2c/bias', w(m, 'res5b_branch2c/bias').shape);
      bad[3] = NaN;
      v.set('res5b_branch2c/bias', bad);
    });
    await expect(loadKerasResNet(rt, nan)).rejects.toThrow("weight 'res5b_branch2c/bias' holds a non-finite value at element 3");
  });

  it('builds from a spec without a file: random init runs and is finite', async () => {
    const rt = gpu();
    const net = new KerasResNet(rt, parseKerasResNet(layers)).eval();
    const x = Tensor.from(rt, synthInput([1, 3, 32, 32]), [1, 3, 32, 32]);
    const y = noGrad(() => net.probabilities(x));
    const p = await y.read();
    expect(p.every(Number.isFinite)).toBe(true);
    expect(Math.abs(p.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    // A new head for transfer learning keeps the Keras name.
    net.resetClassifier(3);
    expect(net.numClasses).toBe(3);
    expect(net.stateDict().get('fc1000.weight')!.shape).toEqual([3, 128]);
    const z = noGrad(() => net.forward(x));
    expect(z.shape).toEqual([1, 3]);
    for (const t of [x, y, z]) t.dispose();
    net.dispose();
  });
});
