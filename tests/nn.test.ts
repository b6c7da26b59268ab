// nn modules end to end: MLP and tiny CNN forward+backward vs a float64 CPU network; state dicts, freezing, modes.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import type { Runtime } from '../src/runtime/runtime.js';
import * as F from '../src/autograd/functional.js';
import { backward } from '../src/autograd/engine.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Rng, Sequential, TransformerEncoderLayer,
} from '../src/nn/index.js';
import * as ref from './ref/autograd-ref.js';
import { R, backwardRef, leaf } from './ref/autograd-ref.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

/** CPU leaves holding a copy of every parameter and buffer of `m`, by key. */
async function cpuState(m: Module): Promise<Map<string, R>> {
  const out = new Map<string, R>();
  for (const [k, t] of m.stateDict()) out.set(k, leaf(await t.read(), t.shape));
  return out;
}

/** Compare every parameter's GPU grad with the reference leaf of the same key. */
async function expectGrads(m: Module, cpu: Map<string, R>, tol = { atol: 2e-4, rtol: 2e-3 }): Promise<void> {
  for (const [k, t] of m.namedParameters()) {
    if (!t.requiresGrad) {
      expect(t.grad, `${k} is frozen`).toBeNull();
      continue;
    }
    expect(t.grad, `${k} has a grad`).not.toBeNull();
    expectClose(await t.grad!.read(), cpu.get(k)!.grad, tol, `grad of ${k}`);
  }
}

function targets(r: Runtime, n: number, classes: number, seed: number): { t: Tensor; host: number[] } {
  const host = Array.from(randArray(n, seed, 0, classes), (v) => Math.floor(v));
  return { t: Tensor.from(r, host, [n], 'i32'), host };
}

describe('nn end to end vs float64 CPU networks', () => {
  it('MLP: Linear-ReLU-Linear + cross-entropy, every parameter gradient', async () => {
    const r = rt();
    const rng = new Rng(7);
    const model = new Sequential(new Linear(r, 33, 17, { rng }), new ReLU(), new Linear(r, 17, 3, { rng }));
    const xh = randArray(5 * 33, 11);
    const x = Tensor.from(r, xh, [5, 33]);
    const { t, host } = targets(r, 5, 3, 12);
    const loss = scope(r, () => F.crossEntropy(model.forward(x), t));
    backward(loss);

    const p = await cpuState(model);
    const h = ref.linear(leaf(xh, [5, 33]), p.get('0.weight')!, p.get('0.bias')!, 'relu');
    const lr = ref.crossEntropy(ref.linear(h, p.get('2.weight')!, p.get('2.bias')!), host);
    backwardRef(lr);
    expectClose(await loss.read(), lr.data, { atol: 1e-5, rtol: 1e-4 }, 'loss');
    await expectGrads(model, p);
    model.dispose();
    for (const z of [x, t, loss]) z.dispose();
  });

  it('CNN: conv-bn(train)-relu-maxpool-conv-relu-gap-flatten-linear, grads and running stats', async () => {
    const r = rt();
    const rng = new Rng(3);
    const model = new Sequential(
      new Conv2d(r, 3, 4, 3, { padding: 1, rng }),
      new BatchNorm2d(r, 4),
      new ReLU(),
      new MaxPool2d({ kernel: 2 }),
      new Conv2d(r, 4, 6, 3, { stride: 2, bias: false, rng }),
      new ReLU(),
      new AdaptiveAvgPool2d(1),
      new Flatten(),
      new Linear(r, 6, 5, { rng }),
    );
    const xs = [2, 3, 9, 9];
    const xh = randArray(2 * 3 * 81, 21);
    const x = Tensor.from(r, xh, xs);
    const { t, host } = targets(r, 2, 5, 22);
    const p = await cpuState(model); // before the forward updates the running stats
    const loss = scope(r, () => F.crossEntropy(model.forward(x), t));
    backward(loss);

    let h = ref.conv2d(leaf(xh, xs), p.get('0.weight')!, p.get('0.bias')!, { padding: [1, 1] });
    const bn = ref.batchNormTrain(h, p.get('1.weight')!, p.get('1.bias')!);
    h = ref.pool2d(ref.unary(bn.y, 'relu'), 'max', { kernel: [2, 2] });
    h = ref.unary(ref.conv2d(h, p.get('4.weight')!, null, { stride: [2, 2] }), 'relu');
    h = ref.linear(ref.globalAvgPool2d(h), p.get('8.weight')!, p.get('8.bias')!);
    const lr = ref.crossEntropy(h, host);
    backwardRef(lr);
    expectClose(await loss.read(), lr.data, { atol: 1e-5, rtol: 1e-4 }, 'loss');
    await expectGrads(model, p);
    const bnm = model.at(1) as BatchNorm2d;
    const unbiased = bn.variance.map((v) => (v * bn.count) / (bn.count - 1));
    expectClose(await bnm.running_mean!.read(), bn.mean.map((m) => 0.1 * m), { atol: 1e-6, rtol: 1e-4 }, 'running_mean');
    expectClose(await bnm.running_var!.read(), unbiased.map((v) => 0.9 + 0.1 * v), { atol: 1e-6, rtol: 1e-4 }, 'running_var');

    // Eval mode with the first conv and the batch norm frozen: BN uses running stats, gradients flow through it.
    model.zeroGrad();
    model.eval().freeze('0').freeze('1');
    const p2 = await cpuState(model);
    const loss2 = scope(r, () => F.crossEntropy(model.forward(x), t));
    backward(loss2);
    h = ref.conv2d(leaf(xh, xs), p2.get('0.weight')!, p2.get('0.bias')!, { padding: [1, 1] });
    h = ref.batchNormEval(h, p2.get('1.running_mean')!.data, p2.get('1.running_var')!.data, p2.get('1.weight')!, p2.get('1.bias')!, 1e-5, true);
    h = ref.pool2d(h, 'max', { kernel: [2, 2] });
    h = ref.unary(ref.conv2d(h, p2.get('4.weight')!, null, { stride: [2, 2] }), 'relu');
    const lr2 = ref.crossEntropy(ref.linear(ref.globalAvgPool2d(h), p2.get('8.weight')!, p2.get('8.bias')!), host);
    backwardRef(lr2);
    expectClose(await loss2.read(), lr2.data, { atol: 1e-5, rtol: 1e-4 }, 'eval loss');
    await expectGrads(model, p2);
    // The running stats did not move in eval mode.
    expectClose(await bnm.running_mean!.read(), p2.get('1.running_mean')!.data, { atol: 0, rtol: 0 });
    model.dispose();
    for (const z of [x, t, loss, loss2]) z.dispose();
  });
});

/** torch.nn.MultiheadAttention (batch_first, fused in_proj) in the reference ops; mask [B, T] 1 = keep. */
function mhaRef(x: R, p: Map<string, R>, pre: string, H: number, mask?: number[]): R {
  const [B, T, E] = x.shape as [number, number, number];
  const D = E / H;
  const qkv = ref.linear(x, p.get(`${pre}in_proj_weight`)!, p.get(`${pre}in_proj_bias`)!);
  const heads = ref.permute(ref.reshape(qkv, [B, T, 3, H, D]), [2, 0, 3, 1, 4]);
  const part = (i: number) => ref.reshape(ref.slice(heads, [i, 0, 0, 0, 0], [i + 1, B, H, T, D]), [B, H, T, D]);
  const o = ref.attention(part(0), part(1), part(2), { mask });
  const merged = ref.reshape(ref.permute(o, [0, 2, 1, 3]), [B, T, E]);
  return ref.linear(merged, p.get(`${pre}out_proj.weight`)!, p.get(`${pre}out_proj.bias`)!);
}

function encoderRef(x: R, p: Map<string, R>, H: number, act: 'relu' | 'gelu', normFirst: boolean, mask?: number[]): R {
  const ln = (h: R, n: string) => ref.layerNorm(h, p.get(`${n}.weight`)!, p.get(`${n}.bias`)!);
  const ff = (h: R) => {
    const a = ref.linear(h, p.get('linear1.weight')!, p.get('linear1.bias')!);
    return ref.linear(ref.unary(a, act), p.get('linear2.weight')!, p.get('linear2.bias')!);
  };
  if (normFirst) {
    const h = ref.add(x, mhaRef(ln(x, 'norm1'), p, 'self_attn.', H, mask));
    return ref.add(h, ff(ln(h, 'norm2')));
  }
  const h = ln(ref.add(x, mhaRef(x, p, 'self_attn.', H, mask)), 'norm1');
  return ln(ref.add(h, ff(h)), 'norm2');
}

describe('TransformerEncoderLayer vs float64 reference', () => {
  // Head dim 8, as in autograd-nnops (one set of attention pipelines to compile).
  it('torch parameter names; post-norm gelu with padding mask and pre-norm relu: output and every gradient', { timeout: 400_000 }, async () => {
    const r = rt();
    const [B, T, E, H] = [2, 5, 16, 2];
    const mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    for (const [act, normFirst] of [['gelu', false], ['relu', true]] as const) {
      const layer = new TransformerEncoderLayer(r, E, H, { dimFeedforward: 24, dropout: 0, activation: act, normFirst, rng: new Rng(5) });
      expect([...layer.stateDict().keys()]).toEqual([
        'self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight', 'self_attn.out_proj.bias',
        'linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias', 'norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias',
      ]);
      const xh = randArray(B * T * E, 41);
      const x = Tensor.from(r, xh, [B, T, E]);
      x.requiresGrad = true;
      const m = Tensor.from(r, mask, [B, T]);
      const gyh = randArray(B * T * E, 42);
      const gy = Tensor.from(r, gyh, [B, T, E]);
      const y = scope(r, () => layer.forward(x, normFirst ? {} : { mask: m }));
      backward(y, gy);

      const p = await cpuState(layer);
      const xr = leaf(xh, [B, T, E]);
      const yr = encoderRef(xr, p, H, act, normFirst, normFirst ? undefined : mask);
      backwardRef(yr, gyh);
      expectClose(await y.read(), yr.data, { atol: 1e-4, rtol: 1e-3 }, `${act} output`);
      expectClose(await x.grad!.read(), xr.grad, { atol: 2e-4, rtol: 2e-3 }, `${act} dx`);
      await expectGrads(layer, p);
      layer.dispose();
      for (const z of [x, m, gy, y]) {
        z.grad?.dispose();
        z.dispose();
      }
    }
  });
});

class Block extends Module {
  blocks: Linear[];
  head: Linear;
  constructor(r: Runtime, rng: Rng) {
    super();
    this.blocks = [new Linear(r, 4, 4, { rng }), new Linear(r, 4, 4, { rng, bias: false })];
    this.head = new Linear(r, 4, 2, { rng });
  }
}

describe('nn Module: names, state dicts, freezing, modes, init', () => {
  it('keys follow torch: Sequential indices, arrays as ModuleList, buffers after params', () => {
    const r = rt();
    const cnn = new Sequential(new Conv2d(r, 3, 4, 3), new BatchNorm2d(r, 4), new ReLU(), new Linear(r, 4, 2));
    expect([...cnn.stateDict().keys()]).toEqual([
      '0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '3.weight', '3.bias',
    ]);
    expect(cnn.namedParameters().map(([k]) => k)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias']);
    const b = new Block(r, new Rng(1));
    expect([...b.stateDict().keys()]).toEqual(['blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight', 'head.weight', 'head.bias']);
    // Replacing a child (a new classifier head) is picked up by attribute.
    b.head.dispose();
    b.head = new Linear(r, 4, 7, { rng: new Rng(2) });
    expect(b.stateDict().get('head.weight')!.shape).toEqual([7, 4]);
    cnn.dispose();
    b.dispose();
  });

  it('stateDict round trip keeps tensor identity; num_batches_tracked is accepted', async () => {
    const r = rt();
    const a = new Sequential(new Conv2d(r, 2, 3, 3, { rng: new Rng(1) }), new BatchNorm2d(r, 3));
    const b = new Sequential(new Conv2d(r, 2, 3, 3, { rng: new Rng(2) }), new BatchNorm2d(r, 3));
    (a.at(1) as BatchNorm2d).running_var!.write([2, 3, 4]);
    const before = [...b.stateDict().values()];
    const dict = new Map(a.stateDict());
    const nbt = Tensor.from(r, [5], [1], 'i32');
    dict.set('1.num_batches_tracked', nbt);
    const res = b.loadStateDict(dict);
    expect(res).toEqual({ missingKeys: [], unexpectedKeys: [] });
    b.loadStateDict(b.stateDict()); // loading a module's own tensors is a no-op
    expect([...b.stateDict().values()]).toEqual(before);
    for (const [k, t] of a.stateDict()) expectClose(await b.stateDict().get(k)!.read(), await t.read(), { atol: 0, rtol: 0 }, k);
    if (r.features.f16) {
      const half = new Map([...a.stateDict()].map(([k, t]) => [k, Tensor.from(r, [...new Float32Array(t.size).fill(0.5)], t.shape, 'f16')]));
      b.loadStateDict(half);
      expectClose(await b.stateDict().get('0.weight')!.read(), new Float32Array(54).fill(0.5), { atol: 0, rtol: 0 });
      for (const t of half.values()) t.dispose();
    }
    a.dispose();
    b.dispose();
    nbt.dispose();
  });

  it('loadStateDict errors name the tensor and both shapes; strict lists missing and unexpected keys', () => {
    const r = rt();
    const m = new Sequential(new Linear(r, 4, 3), new Linear(r, 3, 2));
    const wrong = new Map(m.stateDict());
    const bad = Tensor.zeros(r, [3, 5]);
    wrong.set('0.weight', bad);
    expect(() => m.loadStateDict(wrong)).toThrow(/0\.weight: checkpoint has \[3, 5\], module has \[3, 4\]/);
    const partial = new Map(m.stateDict());
    partial.delete('1.bias');
    const extra = Tensor.zeros(r, [2]);
    partial.set('2.bias', extra);
    expect(() => m.loadStateDict(partial)).toThrow(/missing \(1\): 1\.bias[\s\S]*unexpected \(1\): 2\.bias/);
    expect(m.loadStateDict(partial, { strict: false })).toEqual({ missingKeys: ['1.bias'], unexpectedKeys: ['2.bias'] });
    m.dispose();
    bad.dispose();
    extra.dispose();
  });

  it('freeze / unfreeze by glob, module prefix and RegExp; frozen parameters get no gradient', async () => {
    const r = rt();
    const b = new Block(r, new Rng(4));
    const req = () => b.namedParameters().filter(([, t]) => t.requiresGrad).map(([k]) => k);
    b.freeze('*');
    expect(req()).toEqual([]);
    b.unfreeze('head');
    expect(req()).toEqual(['head.weight', 'head.bias']);
    b.unfreeze(/^blocks\.1\./);
    expect(req()).toEqual(['blocks.1.weight', 'head.weight', 'head.bias']);
    b.freeze('*.bias');
    expect(req()).toEqual(['blocks.1.weight', 'head.weight']);
    expect(() => b.freeze('blokcs')).toThrow(/no parameter name matches/);
    const x = Tensor.from(r, randArray(8, 3), [2, 4]);
    const loss = scope(r, () => F.sum(b.head.forward(b.blocks[1]!.forward(b.blocks[0]!.forward(x)))));
    backward(loss);
    expect(b.blocks[0]!.weight.grad).toBeNull();
    expect(b.head.bias!.grad).toBeNull();
    expect(b.head.weight.grad).not.toBeNull();
    b.zeroGrad(false);
    expectClose(await b.head.weight.grad!.read(), new Float32Array(8));
    b.zeroGrad();
    expect(b.head.weight.grad).toBeNull();
    b.dispose();
    x.dispose();
    loss.dispose();
  });

  it('train / eval propagate; init is seeded and within torch bounds', async () => {
    const r = rt();
    const b = new Block(r, new Rng(5));
    b.eval();
    expect(b.namedModules().every(([, m]) => !m.training)).toBe(true);
    b.train();
    expect(b.blocks[1]!.training).toBe(true);
    const l1 = new Linear(r, 50, 40, { rng: new Rng(9) });
    const l2 = new Linear(r, 50, 40, { rng: 9 }); // a seed or an Rng
    const l3 = new Linear(r, 50, 40, { rng: new Rng(10) });
    const w1 = await l1.weight.read();
    expect(Array.from(await l2.weight.read())).toEqual(Array.from(w1));
    expect(Array.from(await l3.weight.read())).not.toEqual(Array.from(w1));
    const bound = 1 / Math.sqrt(50);
    expect(Math.max(...w1.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w1.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    expect(Math.max(...(await l1.bias!.read()).map(Math.abs))).toBeLessThanOrEqual(bound);
    const c = new Conv2d(r, 4, 8, 3, { groups: 2, rng: new Rng(1) });
    const cb = 1 / Math.sqrt(2 * 9);
    expect(Math.max(...(await c.weight.read()).map(Math.abs))).toBeLessThanOrEqual(cb);
    noGrad(() => undefined);
    for (const m of [b, l1, l2, l3, c]) m.dispose();
  });
});
