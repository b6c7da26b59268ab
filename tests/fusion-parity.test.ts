// Every fusion switch: the fused and unfused paths give the same outputs and the same gradients on awkward
// shapes, and the switch really changes the kernels run (dispatch counts differ).
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { GraftError } from '../src/runtime/errors.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { FUSION_NAMES, withFusion, type FusionName } from '../src/runtime/fusion.js';
import { backward } from '../src/autograd/engine.js';
import * as F from '../src/autograd/functional.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { loraLinear } from '../src/peft/functional.js';
import { BatchNorm2d, Conv2d, LayerNorm, Linear } from '../src/nn/layers.js';
import { BertLayer, addLayerNorm, linearAct } from '../src/models/bert-layers.js';
import { bertConfig } from '../src/models/bert-config.js';
import { FoldCache, residualBlock, type ResidualBlock } from '../src/models/resnet-block.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, type Tol } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const getRt = useRuntime();

interface In {
  data: Float32Array;
  shape: number[];
  grad: boolean;
}
const inp = (shape: number[], seed: number, grad = true, lo = -1, hi = 1): In => ({ data: randArray(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape, grad });

interface Run {
  y: Float32Array;
  grads: (Float32Array | null)[];
  dispatches: number;
}

/** Forward (+ backward with a fixed random upstream gradient when any input needs one) with the switch set. */
async function runWith(rt: Runtime, name: FusionName, on: boolean, ins: In[], f: (xs: Tensor[]) => Tensor): Promise<Run> {
  const xs = ins.map((d) => {
    const t = Tensor.from(rt, d.data, d.shape);
    t.requiresGrad = d.grad;
    return t;
  });
  await rt.sync();
  const d0 = rt.stats.dispatches;
  const y = withFusion({ [name]: on }, () => f(xs));
  const dispatches = rt.stats.dispatches - d0;
  let gy: Tensor | null = null;
  if (ins.some((d) => d.grad)) {
    gy = Tensor.from(rt, randArray(y.size, 4242), y.shape);
    withFusion({ [name]: on }, () => backward(y, gy!));
  }
  const out = await y.read();
  const grads = await Promise.all(xs.map((t) => (t.grad ? t.grad.read() : Promise.resolve(null))));
  for (const t of [y, gy, ...xs]) {
    t?.grad?.dispose();
    t?.dispose();
  }
  return { y: out, grads, dispatches };
}

async function same(name: FusionName, ins: In[], f: (xs: Tensor[]) => Tensor, tol: Tol = { atol: 2e-5, rtol: 2e-4 }): Promise<void> {
  const rt = getRt();
  const a = await runWith(rt, name, true, ins, f);
  const b = await runWith(rt, name, false, ins, f);
  expect(a.dispatches, `${name}: the switch changes the kernels run`).not.toBe(b.dispatches);
  expectClose(b.y, a.y, tol, `${name}: forward unfused vs fused`);
  ins.forEach((d, i) => {
    if (!d.grad) return;
    expect(a.grads[i], `${name}: input ${i} has a fused gradient`).not.toBeNull();
    expect(b.grads[i], `${name}: input ${i} has an unfused gradient`).not.toBeNull();
    expectClose(b.grads[i]!, a.grads[i]!, tol, `${name}: d/d input ${i} unfused vs fused`);
  });
}

describe('attention switch', () => {
  it('padding mask, Tq != Tk, odd head dim', async () => {
    const [B, H, Tq, Tk, D] = [2, 3, 5, 7, 6];
    const m = Float32Array.from({ length: B * Tk }, (_, i) => (i === Tk - 1 || i === Tk + 2 || i >= 2 * Tk - 2 ? 0 : 1));
    const rt = getRt();
    const mask = Tensor.from(rt, m, [B, Tk]);
    await same('attention', [inp([B, H, Tq, D], 1, true, -2, 2), inp([B, H, Tk, D], 2, true, -2, 2), inp([B, H, Tk, D], 3)], ([q, k, v]) =>
      F.scaledDotProductAttention(q!, k!, v!, { mask }),
    );
    mask.dispose();
  });
  it('a fully padded sequence gives 0 and no gradient on both paths', async () => {
    const [B, H, T, D] = [3, 1, 4, 4];
    const rt = getRt();
    const mask = Tensor.from(rt, [1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1], [B, T]);
    const s = [B, H, T, D];
    await same('attention', [inp(s, 31), inp(s, 32), inp(s, 33)], ([q, k, v]) => F.scaledDotProductAttention(q!, k!, v!, { mask }));
    mask.dispose();
  });
  it('causal with a custom scale, Dh 5, T 9', async () => {
    const s = [1, 2, 9, 5];
    await same('attention', [inp(s, 4), inp(s, 5), inp(s, 6)], ([q, k, v]) => F.scaledDotProductAttention(q!, k!, v!, { causal: true, scale: 0.7 }));
  });
});

describe('attention switch: scores over the binding limit', () => {
  it('forced off is a GraftError; on its default the fused kernel runs', async () => {
    const rt = getRt();
    const T = Math.ceil(Math.sqrt(rt.limits.maxStorageBufferBindingSize / 4)) + 1; // T·T·4 bytes > the limit
    const q = Tensor.from(rt, randArray(T * 4, 40), [1, 1, T, 4]);
    expect(() => withFusion({ attention: false }, () => F.scaledDotProductAttention(q, q, q))).toThrow(GraftError);
    expect(() => withFusion({ attention: false }, () => F.scaledDotProductAttention(q, q, q))).toThrow(/GRAFT_FUSE_ATTENTION=1/);
    const y = F.scaledDotProductAttention(q, q, q);
    expect(y.shape).toEqual([1, 1, T, 4]);
    const v = await y.read();
    expect(v.every(Number.isFinite)).toBe(true);
    y.dispose();
    q.dispose();
  }, 60_000);
});

describe('cross-entropy switch', () => {
  const B = 7;
  const C = 13;
  const tgt = (rt: Runtime, ignored: number): Tensor => Tensor.from(rt, [3, ignored, 0, 12, 5, ignored, 7], [B], 'i32');
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    it(`reduction ${reduction}, label smoothing 0.1, ignored targets (-100)`, async () => {
      const t = tgt(getRt(), -100);
      await same('cross-entropy', [inp([B, C], 7, true, -3, 3)], ([x]) => F.crossEntropy(x!, t, { reduction, labelSmoothing: 0.1 }));
      t.dispose();
    });
  }
  it('in-range ignoreIndex 5, no smoothing', async () => {
    const t = tgt(getRt(), 5);
    await same('cross-entropy', [inp([B, C], 8, true, -3, 3)], ([x]) => F.crossEntropy(x!, t, { ignoreIndex: 5 }));
    t.dispose();
  });
});

describe('matmul-epilogue switch', () => {
  it('linear + ReLU forward/backward, batched [2, 3, 7] -> 11', async () => {
    await same('matmul-epilogue', [inp([2, 3, 7], 9), inp([11, 7], 10), inp([11], 11)], ([x, w, b]) => F.linear(x!, w!, b!, 'relu'));
  });
  it('linear with bias, no activation, one row', async () => {
    await same('matmul-epilogue', [inp([1, 8], 25), inp([3, 8], 26), inp([3], 27)], ([x, w, b]) => F.linear(x!, w!, b!));
  });
  it('linear + ReLU without bias', async () => {
    await same('matmul-epilogue', [inp([5, 9], 12), inp([6, 9], 13)], ([x, w]) => F.linear(x!, w!, null, 'relu'));
  });
  it('BERT linear + GELU (inference, no graph)', async () => {
    const rt = getRt();
    const lin = new Linear(rt, 10, 14, { rng: new Rng(3) });
    await same('matmul-epilogue', [inp([3, 4, 10], 14, false)], ([x]) => noGrad(() => linearAct(x!, lin, 'gelu')));
    lin.dispose();
  });
});

describe('layernorm-residual switch', () => {
  it('inference LN(x + r), D 19', async () => {
    const rt = getRt();
    const ln = new LayerNorm(rt, 19, 1e-12);
    ln.weight!.write(randArray(19, 15, 0.5, 1.5));
    ln.bias!.write(randArray(19, 16));
    await same('layernorm-residual', [inp([3, 5, 19], 17, false), inp([3, 5, 19], 18, false)], ([x, r]) => noGrad(() => addLayerNorm(x!, r!, ln)));
    ln.dispose();
  });
});

describe('lora switch', () => {
  it('LoRA linear forward/backward, odd sizes, frozen base', async () => {
    await same(
      'lora',
      [inp([2, 5, 9], 19), inp([7, 9], 20, false), inp([3, 9], 21), inp([7, 3], 22), inp([7], 23, false)],
      ([x, w, a, b, bias]) => loraLinear(x!, w!, a!, b!, bias!, { scaling: 1.5 }),
    );
  });
});

describe('bn-fold switch', () => {
  it('frozen bottleneck with projection shortcut (eval BN, random running stats), odd spatial size', async () => {
    const rt = getRt();
    const rng = new Rng(5);
    const mods: (Conv2d | BatchNorm2d)[] = [];
    const bn = (c: number): BatchNorm2d => {
      const m = new BatchNorm2d(rt, c);
      m.running_mean!.write(randArray(c, 30 + mods.length, -0.3, 0.3));
      m.running_var!.write(randArray(c, 60 + mods.length, 0.4, 1.6));
      m.weight!.write(randArray(c, 90 + mods.length, 0.5, 1.5));
      m.bias!.write(randArray(c, 120 + mods.length, -0.2, 0.2));
      m.eval();
      mods.push(m);
      return m;
    };
    const conv = (i: number, o: number, k: number, stride = 1): Conv2d => {
      const c = new Conv2d(rt, i, o, k, { padding: k === 3 ? 1 : 0, stride, bias: false, rng });
      mods.push(c);
      return c;
    };
    const blk: ResidualBlock = {
      main: [
        { conv: conv(6, 4, 1), bn: bn(4) },
        { conv: conv(4, 4, 3, 2), bn: bn(4) },
        { conv: conv(4, 12, 1), bn: bn(12) },
      ],
      shortcut: { conv: conv(6, 12, 1, 2), bn: bn(12) },
    };
    for (const m of mods) for (const p of m.parameters()) p.requiresGrad = false;
    const folds = new FoldCache();
    await same('bn-fold', [inp([2, 6, 7, 7], 24, false)], ([x]) => noGrad(() => residualBlock(x!, blk, folds)), { atol: 1e-4, rtol: 1e-4 });
    folds.clear();
    for (const m of mods) m.dispose();
  });
});

describe('all switches together in a BERT layer', () => {
  const all = (on: boolean) => Object.fromEntries(FUSION_NAMES.map((n) => [n, on])) as Record<FusionName, boolean>;

  it('training forward/backward and inference agree with every fusion on vs off (H 8, 2 heads, T 5, padding)', async () => {
    const rt = getRt();
    const cfg = bertConfig({ hiddenSize: 8, numAttentionHeads: 2, intermediateSize: 12, numHiddenLayers: 1, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0, vocabSize: 20, maxPositionEmbeddings: 16 });
    const layer = new BertLayer(rt, cfg);
    layer.namedParameters().forEach(([name, p], i) => p.write(randArray(p.size, 300 + i, name.endsWith('LayerNorm.weight') ? 0.5 : -0.5, name.endsWith('LayerNorm.weight') ? 1.5 : 0.5)));
    const mask = Tensor.from(rt, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 5]);
    const hData = randArray(2 * 5 * 8, 400);
    const gyData = randArray(2 * 5 * 8, 401);
    const run = async (on: boolean, train: boolean): Promise<{ y: Float32Array; grads: Float32Array[]; dispatches: number }> => {
      layer.train(train);
      for (const p of layer.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
      const h = Tensor.from(rt, hData, [2, 5, 8]);
      h.requiresGrad = train;
      await rt.sync();
      const d0 = rt.stats.dispatches;
      const y = withFusion(all(on), () => (train ? layer.forward(h, mask) : noGrad(() => layer.forward(h, mask))));
      const dispatches = rt.stats.dispatches - d0;
      const gy = Tensor.from(rt, gyData, y.shape);
      if (train) withFusion(all(on), () => backward(y, gy));
      const out = await y.read();
      const grads = train ? await Promise.all([h, ...layer.parameters()].map((t) => t.grad!.read())) : [];
      for (const t of [y, gy, h]) {
        t.grad?.dispose();
        t.dispose();
      }
      return { y: out, grads, dispatches };
    };
    for (const train of [true, false]) {
      const a = await run(true, train);
      const b = await run(false, train);
      expect(a.dispatches, `train=${train}: different kernels`).not.toBe(b.dispatches);
      expectClose(b.y, a.y, { atol: 3e-5, rtol: 3e-4 }, `train=${train}: output`);
      a.grads.forEach((g, i) => expectClose(b.grads[i]!, g, { atol: 3e-5, rtol: 3e-4 }, `grad ${i === 0 ? 'input' : layer.namedParameters()[i - 1]![0]}`));
    }
    for (const p of layer.parameters()) p.grad?.dispose();
    mask.dispose();
    layer.dispose();
  });
});
