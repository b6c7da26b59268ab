// torchvision ResNet parity: deterministic weights loaded by torchvision key, logits vs PyTorch (fixture from scripts/fixtures/resnet_parity.py).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { Tensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { ResNet, resnet18, torchvisionResnetShapes, type ResNetDepth } from '../src/models/resnet.js';
import { synthInput, synthTensor } from '../src/models/resnet-synthetic.js';
import { checkTorchvisionShapes, inferResnetDepth } from '../src/models/load-torchvision.js';
import { loadResnetSafetensors } from '../src/models/load-safetensors.js';
import { convertTorchvision } from '../src/cli/convert.js';
import { writeSafetensors, SafetensorsFile } from '../src/io/safetensors.js';
import { CheckpointError, GraftError } from '../src/runtime/errors.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../src/runtime/runtime.js';

interface TrainRef {
  targets: number[];
  logits: number[];
  loss: number;
  running: Record<string, number[]>;
  grads: Record<string, number[]>;
  gradNorms: Record<string, number>;
}
interface Case {
  arch: string;
  numClasses: number;
  inputShape: number[];
  keys: string[];
  logits: number[];
  train?: TrainRef;
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/resnet-torchvision.json', import.meta.url), 'utf8')) as {
  cases: Case[];
  keyDigests: Record<string, { count: number; sha256: string }>;
};

/** The fixture's weights, uploaded and loaded by torchvision key through loadStateDict (strict). */
function loadSynthetic(rt: Runtime, m: ResNet): void {
  const dict = new Map<string, Tensor>();
  for (const [k, t] of m.stateDict()) dict.set(k, Tensor.from(rt, synthTensor(k, t.shape), t.shape));
  m.loadStateDict(dict);
  for (const t of dict.values()) t.dispose();
}

describe('torchvision ResNet', () => {
  const gpu = useRuntime();

  it("torchvisionResnetShapes lists torchvision's keys and shapes for every depth", () => {
    for (const depth of [18, 34, 50, 101, 152] as ResNetDepth[]) {
      const text = [...torchvisionResnetShapes(depth)].map(([k, s]) => `${k}:${s.join('x')}\n`).join('');
      const want = fx.keyDigests[`resnet${depth}`]!;
      expect(text.split('\n').length - 1).toBe(want.count);
      expect(createHash('sha256').update(text).digest('hex'), `resnet${depth} keys`).toBe(want.sha256);
    }
  });

  for (const c of fx.cases) {
    it(`${c.arch}: eval logits match PyTorch (folded BN and autograd paths)`, async () => {
      const rt = gpu();
      const depth = Number(c.arch.replace('resnet', '')) as ResNetDepth;
      const m = new ResNet(rt, depth, { numClasses: c.numClasses });
      // The module's own keys and shapes, in order, are torchvision's.
      expect([...m.stateDict()].map(([k, t]) => [k, [...t.shape]])).toEqual([...torchvisionResnetShapes(depth, c.numClasses)]);
      expect([...m.stateDict().keys()]).toEqual(c.keys);
      expect(m.numFeatures).toBe(depth < 50 ? 512 : 2048);
      loadSynthetic(rt, m);
      m.eval();
      const x = Tensor.from(rt, synthInput(c.inputShape), c.inputShape);
      const t0 = performance.now();
      const fused = noGrad(() => m.forward(x));
      const yFused = await fused.read();
      const ms = performance.now() - t0;
      // Grad mode on and parameters requiring grad: the unfused conv → BN modules through autograd.
      const tracked = m.forward(x);
      expect(tracked.requiresGrad).toBe(true);
      const yTracked = await tracked.read();
      const dFused = maxAbsDiff(yFused, c.logits);
      const dTracked = maxAbsDiff(yTracked, c.logits);
      console.log(`${c.arch} ${c.inputShape.join('×')}: max |logit - torch| folded ${dFused.toExponential(2)}, autograd ${dTracked.toExponential(2)}; folded forward ${ms.toFixed(0)} ms`);
      expectClose(yFused, c.logits, { atol: 1e-4, rtol: 0 }, `${c.arch} folded`);
      expectClose(yTracked, c.logits, { atol: 1e-4, rtol: 0 }, `${c.arch} autograd`);
      for (const t of [x, fused, tracked]) t.dispose();
      m.dispose();
    });
  }

  it('eval after training uses fresh folds (train() and loadStateDict invalidate them)', async () => {
    const rt = gpu();
    const c = fx.cases[0]!;
    const m = resnet18(rt, { numClasses: c.numClasses });
    const x = Tensor.from(rt, synthInput(c.inputShape), c.inputShape);
    m.eval();
    const before = noGrad(() => m.forward(x)); // folds the random init
    loadSynthetic(rt, m);
    const after = noGrad(() => m.forward(x));
    expectClose(await after.read(), c.logits, { atol: 1e-4, rtol: 0 }, 'after loadStateDict');
    expect(maxAbsDiff(await before.read(), c.logits)).toBeGreaterThan(1e-2);
    m.resetClassifier(5);
    expect(m.numClasses).toBe(5);
    expect(m.stateDict().get('fc.weight')!.shape).toEqual([5, 512]);
    const five = noGrad(() => m.forward(x));
    expect(five.shape).toEqual([2, 5]);
    for (const t of [x, before, after, five]) t.dispose();
    m.dispose();
  });

  it('graft convert --from torchvision: strips module., drops num_batches_tracked, loads back to the same logits', async () => {
    const rt = gpu();
    const c = fx.cases.find((k) => k.arch === 'resnet18')!;
    const dir = mkdtempSync(join(tmpdir(), 'graft-tv-'));
    const src = join(dir, 'dataparallel.safetensors');
    const entries: [string, { shape: number[]; data: Float32Array }][] = [];
    for (const [k, shape] of torchvisionResnetShapes(18, c.numClasses)) {
      entries.push([`module.${k}`, { shape, data: synthTensor(k, shape) }]);
      if (k.endsWith('running_var')) entries.push([`module.${k.replace('running_var', 'num_batches_tracked')}`, { shape: [], data: Float32Array.of(0) }]);
    }
    await writeSafetensors(src, entries);
    const out = join(dir, 'resnet18.safetensors');
    const summary = await convertTorchvision(src, out);
    expect(summary.tensors).toBe(c.keys.length);
    const f = await SafetensorsFile.open(out);
    expect(f.names).toEqual(c.keys);
    expect(f.header.metadata['graft.arch']).toBe('torchvision-resnet18');
    await f.close();
    const loaded = await loadResnetSafetensors(rt, out);
    expect(loaded.kind).toBe('torchvision');
    const x = Tensor.from(rt, synthInput(c.inputShape), c.inputShape);
    const y = noGrad(() => loaded.net.forward(x));
    expectClose(await y.read(), c.logits, { atol: 1e-4, rtol: 0 }, 'converted resnet18');
    x.dispose();
    y.dispose();
    loaded.net.dispose();
    await expect(convertTorchvision(join(dir, 'weights.pth'), out)).rejects.toThrow(/pickles cannot be read without Python/);
    await expect(convertTorchvision(join(dir, 'nope.safetensors'), out)).rejects.toThrow(GraftError);
  });

  it('validates keys and shapes against the depth the blocks imply', () => {
    const good = torchvisionResnetShapes(50, 10);
    expect(inferResnetDepth(good.keys())).toBe(50);
    expect(checkTorchvisionShapes(good)).toEqual({ depth: 50, numClasses: 10 });
    const edit = (f: (m: Map<string, readonly number[]>) => void) => {
      const m = new Map<string, readonly number[]>(good);
      f(m);
      const r = checkTorchvisionShapes(m);
      return 'error' in r ? r.error : '';
    };
    expect(edit((m) => m.set('layer2.0.conv2.weight', [128, 128, 1, 1]))).toContain("'layer2.0.conv2.weight' has shape [128, 128, 1, 1], resnet50 needs [128, 128, 3, 3]");
    expect(edit((m) => m.delete('layer3.5.bn3.running_mean'))).toContain("missing 'layer3.5.bn3.running_mean' [1024]");
    expect(edit((m) => m.set('head.weight', [3]))).toContain("unexpected 'head.weight'");
    expect(edit((m) => m.delete('layer4.0.downsample.1.bias'))).toContain('does not match torchvision resnet50');
    expect(edit((m) => m.delete('layer3.5.conv1.weight'))).toMatch(/missing 'layer3.5.conv1.weight'/);
    expect(edit((m) => { for (const k of [...m.keys()]) if (k.startsWith('layer3.5.')) m.delete(k); })).toContain('not a torchvision ResNet');
    expect(edit((m) => m.delete('fc.weight'))).toContain("missing 'fc.weight'");
    expect(new CheckpointError('x')).toBeInstanceOf(GraftError);
  });
});
