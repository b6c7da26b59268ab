// Dropout under whole-step capture: every replay draws a fresh seed (the default generator's next draw), shared by the forward and backward dispatches of each dropout call.
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime/runtime.js';
import { captureStep } from '../src/runtime/capture.js';
import { Tensor } from '../src/tensor.js';
import { backward, F } from '../src/autograd/index.js';
import { defaultRng, manualSeed } from '../src/autograd/random.js';
import { loraLinear } from '../src/peft/functional.js';
import { Dropout, Linear, type Module } from '../src/nn/index.js';
import { AdamW, SGD, captureTrainingStep, type BatchInput } from '../src/optim/index.js';
import { useRuntime } from './helpers/gpu.js';
import { rng } from './helpers/rand.js';

const rt = useRuntime();

function batch(seed: number): BatchInput[] {
  const u = rng(seed);
  return [
    { data: Float32Array.from({ length: 8 * 32 }, () => 2 * u() - 1), shape: [8, 32] },
    { data: Int32Array.from({ length: 8 }, () => Math.floor(u() * 5)), shape: [8], dtype: 'i32' },
  ];
}

/** Run `steps` steps of stepFn (captured or not) from manualSeed(seed) on alternating batches: losses, weights, stats. */
async function runSteps(r: Runtime, stepFn: (inputs: readonly Tensor[]) => Tensor, params: readonly Tensor[], steps: number, capture: boolean, seed: number) {
  manualSeed(seed);
  const runner = captureTrainingStep(r, stepFn, { capture });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const loss = runner.step(batch(i % 2));
    losses.push((await loss.read())[0]!);
    loss.dispose();
  }
  const weights = await Promise.all(params.map((t) => t.read()));
  const stats = { ...runner.stats };
  runner.dispose();
  return { losses, weights, stats };
}

/** 32 → 24 → 5 MLP with F.dropout (default generator) on the input and the hidden layer, trained by AdamW. */
async function train(r: Runtime, steps: number, capture: boolean) {
  const l1 = new Linear(r, 32, 24, { rng: 1 });
  const l2 = new Linear(r, 24, 5, { rng: 2 });
  const params = [...l1.parameters(), ...l2.parameters()];
  const opt = new AdamW(params, { lr: 1e-2 });
  const stepFn = ([x, y]: readonly Tensor[]): Tensor => {
    opt.zeroGrad();
    const h = F.relu(l1.forward(F.dropout(x!, 0.2)));
    const l = F.crossEntropy(l2.forward(F.dropout(h, 0.5)), y!);
    backward(l);
    opt.step();
    return l;
  };
  const out = await runSteps(r, stepFn, params, steps, capture, 77);
  opt.dispose();
  for (const m of [l1, l2] as Module[]) m.dispose();
  await r.sync();
  return out;
}

/** Base linear 32 → 5 (frozen) with a fused LoRA branch (r 4, dropout 0.3, seed drawn per step), A and B trained. */
async function trainLora(r: Runtime, steps: number, capture: boolean) {
  const base = new Linear(r, 32, 5, { rng: 3 });
  const a = Tensor.from(r, Float32Array.from({ length: 4 * 32 }, (_, i) => Math.sin(i) * 0.2), [4, 32]);
  const b = Tensor.from(r, Float32Array.from({ length: 5 * 4 }, (_, i) => Math.cos(i) * 0.2), [5, 4]);
  a.requiresGrad = true;
  b.requiresGrad = true;
  const opt = new AdamW([a, b], { lr: 1e-2 });
  const stepFn = ([x, y]: readonly Tensor[]): Tensor => {
    opt.zeroGrad();
    const out = loraLinear(x!, base.weight, a, b, base.bias, { scaling: 2, dropout: 0.3, seed: defaultRng().seed(), fused: true });
    const l = F.crossEntropy(out, y!);
    backward(l);
    opt.step();
    return l;
  };
  const out = await runSteps(r, stepFn, [a, b], steps, capture, 78);
  opt.dispose();
  base.dispose();
  a.dispose();
  b.dispose();
  await r.sync();
  return out;
}

describe('dropout in captured steps', () => {
  it('fused LoRA with lora_dropout > 0: captured steps equal normal steps (fresh mask per replay, forward mask reused by backward)', async () => {
    const r = rt();
    const normal = await trainLora(r, 5, false);
    const captured = await trainLora(r, 5, true);
    expect(captured.stats).toEqual({ captures: 1, replays: 4 });
    for (let i = 0; i < 5; i++) expect(Math.abs(captured.losses[i]! - normal.losses[i]!), `loss of step ${i}`).toBeLessThanOrEqual(1e-6);
    expect(normal.losses[2]).not.toBeCloseTo(normal.losses[0]!, 6);
    for (let k = 0; k < 2; k++) {
      let worst = 0;
      for (let i = 0; i < normal.weights[k]!.length; i++) worst = Math.max(worst, Math.abs(normal.weights[k]![i]! - captured.weights[k]![i]!));
      expect(worst, `LoRA ${k ? 'B' : 'A'}: max |captured − normal|`).toBeLessThanOrEqual(1e-6);
    }
  });

  it('6 captured steps (1 recorded + 5 replayed) with F.dropout equal 6 normal steps with the same manualSeed: losses and weights', async () => {
    const r = rt();
    const normal = await train(r, 6, false);
    const captured = await train(r, 6, true);
    expect(captured.stats).toEqual({ captures: 1, replays: 5 });
    for (let i = 0; i < 6; i++) expect(Math.abs(captured.losses[i]! - normal.losses[i]!), `loss of step ${i}`).toBeLessThanOrEqual(1e-6);
    // the batches alternate, so equal losses two steps apart would mean a repeated mask
    expect(normal.losses[2]).not.toBeCloseTo(normal.losses[0]!, 6);
    for (let k = 0; k < normal.weights.length; k++) {
      const a = normal.weights[k]!;
      const b = captured.weights[k]!;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      expect(worst, `parameter ${k}: max |captured − normal|`).toBeLessThanOrEqual(1e-6);
    }
  });

  it('nn.Dropout with its own generator: each replay draws a new mask, and backward uses the forward mask', async () => {
    const r = rt();
    const n = 4096;
    const w = Tensor.from(r, Float32Array.from({ length: n }, (_, i) => 1 + (i % 5)), [n]);
    w.requiresGrad = true;
    const c = Tensor.from(r, Float32Array.from({ length: n }, (_, i) => 1 + (i % 3)), [n]);
    const opt = new SGD([w], { lr: 0 });
    const drop = new Dropout(0.5, { rng: 9 });
    drop.train();
    const cap = captureStep(r, () => {
      opt.zeroGrad();
      const y = drop.forward(w);
      backward(F.sum(F.mul(y, c)));
      return y;
    });
    const masks: string[] = [];
    for (let step = 0; step < 4; step++) {
      const out = step === 0 ? cap.outputs[0]!.reshape([n]) : cap.replay()[0]!;
      const [y, g, wv, cv] = await Promise.all([out.read(), w.grad!.read(), w.read(), c.read()]);
      out.dispose();
      let kept = 0;
      let mask = '';
      for (let i = 0; i < n; i++) {
        const k = y[i] !== 0;
        if (k) kept++;
        mask += k ? '1' : '0';
        // forward: y = 2w or 0; backward: dL/dw = 2c where kept, 0 where dropped (the same mask)
        expect(y[i], `y[${i}] at step ${step}`).toBe(k ? 2 * wv[i]! : 0);
        expect(g[i], `grad[${i}] at step ${step}`).toBe(k ? 2 * cv[i]! : 0);
      }
      expect(kept / n).toBeGreaterThan(0.45);
      expect(kept / n).toBeLessThan(0.55);
      masks.push(mask);
    }
    expect(new Set(masks).size, 'every replay has its own mask').toBe(4);
    cap.dispose();
    opt.dispose();
    w.dispose();
    c.dispose();
    await r.sync();
  });
});
