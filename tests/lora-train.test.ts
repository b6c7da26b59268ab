// LoRA training: adapters on a frozen random MLP learn a synthetic regression task (loss falls) while every base
// weight stays bit-identical; the fused and unfused paths follow the same trajectory.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import { backward } from '../src/autograd/engine.js';
import * as F from '../src/autograd/functional.js';
import { Rng } from '../src/autograd/random.js';
import { Linear } from '../src/nn/layers.js';
import { ReLU, Sequential } from '../src/nn/simple.js';
import { AdamW } from '../src/optim/index.js';
import { applyLora, loraLayers } from '../src/peft/index.js';
import { useRuntime } from './helpers/gpu.js';
import { randArray } from './helpers/rand.js';

const rt = useRuntime();

/** Train LoRA (r 4, alpha 8, dropout 0.05) on every Linear of a frozen 16→32→32→4 MLP; returns per-step losses and the base weights before/after. */
async function train(fused: boolean, steps: number) {
  const rng = new Rng(7);
  const model = new Sequential(new Linear(rt(), 16, 32, { rng }), new ReLU(), new Linear(rt(), 32, 32, { rng }), new ReLU(), new Linear(rt(), 32, 4, { rng }));
  const baseBefore = new Map<string, Float32Array>();
  for (const [k, t] of model.stateDict()) baseBefore.set(k, await t.read());
  const info = applyLora(model, { r: 4, alpha: 8, dropout: 0.05, targetModules: ['0', '2', '4'], fused, rng: new Rng(11) });
  expect(info.targets).toEqual(['0', '2', '4']);
  const params = model.parameters().filter((t) => t.requiresGrad);
  expect(params).toHaveLength(6);
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
  // synthetic task: a random linear teacher plus a fixed non-linearity, 64 samples
  const X = randArray(64 * 16, 1);
  const T = randArray(16 * 4, 2);
  const Y = new Float32Array(64 * 4);
  for (let i = 0; i < 64; i++) for (let j = 0; j < 4; j++) {
    let s = 0;
    for (let k = 0; k < 16; k++) s += X[i * 16 + k]! * T[k * 4 + j]!;
    Y[i * 4 + j] = Math.tanh(s);
  }
  const x = Tensor.from(rt(), X, [64, 16]);
  const y = Tensor.from(rt(), Y, [64, 4]);
  const losses: number[] = [];
  model.train();
  for (let step = 0; step < steps; step++) {
    const loss = scope(rt(), () => {
      const l = F.mseLoss(model.forward(x), y);
      backward(l);
      return l;
    });
    opt.step();
    opt.zeroGrad();
    losses.push((await loss.read())[0]!);
    loss.dispose();
  }
  const frozenGrads = model.namedParameters().filter(([k]) => !k.includes('.lora_')).map(([k, t]) => [k, t.grad] as const);
  const baseAfter = new Map<string, Float32Array>();
  for (const [k, t] of model.stateDict()) if (!k.includes('.lora_')) baseAfter.set(k, await t.read());
  x.dispose();
  y.dispose();
  model.dispose();
  return { losses, baseBefore, baseAfter, frozenGrads, layers: loraLayers(model).length };
}

describe('LoRA training on a frozen MLP', () => {
  it('the loss falls, base weights and biases stay bit-identical and never get a gradient; fused and unfused agree', async () => {
    const f = await train(true, 60);
    expect(f.layers).toBe(3);
    const first = f.losses[0]!;
    const last = f.losses[f.losses.length - 1]!;
    expect(last).toBeLessThan(0.4 * first);
    expect([...f.baseAfter.keys()].sort()).toEqual([...f.baseBefore.keys()].sort());
    for (const [k, v] of f.baseBefore) expect(f.baseAfter.get(k), k).toEqual(v);
    for (const [k, g] of f.frozenGrads) expect(g, k).toBeNull();

    const u = await train(false, 60);
    for (const [k, v] of u.baseBefore) expect(u.baseAfter.get(k), k).toEqual(v);
    // same init, same dropout masks: the two paths differ only by f32 rounding
    for (let i = 0; i < f.losses.length; i++) expect(Math.abs(f.losses[i]! - u.losses[i]!), `step ${i}`).toBeLessThan(1e-4 * f.losses[i]! + 1e-6);
  });
});
