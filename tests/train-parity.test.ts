// PyTorch training replay: SmallCNN and TinyEncoder load the fixture's initial weights, take the same 20 AdamW steps (warm-up/decay schedule, clipping) and must match torch's per-step losses, grad norms and final weights.
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime/runtime.js';
import { Tensor, scope } from '../src/tensor.js';
import { backward, F } from '../src/autograd/index.js';
import type { Module } from '../src/nn/index.js';
import { AdamW, clipGradNorm, linearWarmupDecay, linearWarmupFactor } from '../src/optim/index.js';
import { SmallCNN, TinyEncoder } from '../src/models/small.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { fixtureValues, isCnnBatch, isTextBatch, loadTrainFixture, stateTensors, type TrainFixture } from './helpers/fixtures.js';

const rt = useRuntime();

/**
 * Tolerances. Achieved on lavapipe (printed by each test): losses within 4e-7 relative, grad norms
 * within 3e-7 relative, final weights and running stats within 5.4e-7 absolute (gauge coordinates
 * excepted, below). The bounds leave ≥ 18× headroom for adapters that sum in yet another order:
 * float32 reductions (tiled matmul/conv, two-stage norms, Welford BN stats) never run in PyTorch's
 * order, so bit equality is not expected.
 */
const TOL = { lossRtol: 1e-5, normRtol: 1e-5, weightAtol: 1e-5, weightRtol: 1e-5 };

/**
 * Gauge coordinates: parameters the loss does not depend on, so their exact gradient is 0 and what
 * both frameworks compute is float32 rounding noise. AdamW normalises the update (m / √v), turning
 * noise of 1e-9 into steps of ±lr, so their final values are set by each framework's rounding and
 * cannot match. Here: a conv bias in front of a training-mode BatchNorm (the batch mean removes
 * it) and the key bias of self-attention (it adds q·b_k to every score of a query row; softmax is
 * shift-invariant). The test checks instead that (1) graft's gradient for them is rounding noise
 * at every step (relative to the grad norm: a real gradient would be orders larger), (2) they moved
 * no further from torch than two AdamW trajectories of at most lr·(ρ_t + wd) per step can, and
 * (3) everything else matches tightly (so the noise leaked nowhere). BatchNorm's running_mean
 * averages the conv output *with* its bias, so it inherits the conv bias' difference through its
 * momentum average; checkRunningMean separates the two parts.
 */
interface Gauge {
  key: string;
  /** Element range [start, end) of the parameter (flattened). */
  start: number;
  end: number;
}

/** |gradient| of a gauge coordinate relative to the global grad norm: rounding noise stays far below this. */
const GAUGE_GRAD_REL = 1e-5;

interface Replay {
  losses: number[];
  norms: number[];
  /** Per step: max |grad| over the gauge coordinates. */
  gaugeGrad: number[];
  /** Per step: the values of each gauge parameter before the step (its trajectory). */
  trajectory: Map<string, Float32Array[]>;
}

/** The fixture's steps: zeroGrad, forward + cross-entropy, backward, clip, AdamW step, scheduler step; loss, norm and gauge grads read back per step. */
async function replay<B>(
  r: Runtime,
  model: Module,
  fx: TrainFixture<B>,
  gauges: readonly Gauge[],
  logits: (b: B) => { out: Tensor; y: Tensor },
): Promise<Replay> {
  const opt = new AdamW(model.parameters(), { lr: fx.lr, weightDecay: fx.weightDecay });
  const sched = linearWarmupDecay(opt, fx.warmup, fx.steps);
  const params = new Map(model.namedParameters());
  const out: Replay = { losses: [], norms: [], gaugeGrad: [], trajectory: new Map() };
  model.train();
  for (const b of fx.batches) {
    for (const key of new Set(gauges.map((g) => g.key))) {
      const list = out.trajectory.get(key) ?? [];
      list.push(await params.get(key)!.read());
      out.trajectory.set(key, list);
    }
    opt.zeroGrad();
    const loss = scope(r, () => {
      const { out: z, y } = logits(b);
      return F.crossEntropy(z, y);
    });
    backward(loss);
    let g = 0;
    for (const gs of gauges) {
      const grad = (await params.get(gs.key)!.grad!.read()).subarray(gs.start, gs.end);
      for (const v of grad) g = Math.max(g, Math.abs(v));
    }
    out.gaugeGrad.push(g);
    const norm = clipGradNorm(opt, fx.clip);
    opt.step();
    sched.step();
    out.losses.push((await loss.read())[0]!);
    out.norms.push((await norm.read())[0]!);
    loss.dispose();
    norm.dispose();
  }
  opt.dispose(); // parameters move back to pooled buffers and stay usable
  return out;
}

/**
 * ρ_t: the largest |m̂_t| / √v̂_t AdamW can produce at its t-th update (t from 1), by Cauchy–Schwarz:
 * (1 − β1)/(1 − β1^t) · √((1 − β2^t)/(1 − β2)) · √(Σ_{k<t} (β1²/β2)^k). ρ_1 = 1, ρ_20 ≈ 1.15.
 */
function adamRatioBound(t: number, b1 = 0.9, b2 = 0.999): number {
  let s = 0;
  for (let k = 0; k < t; k++) s += (b1 * b1 / b2) ** k;
  return ((1 - b1) / (1 - b1 ** t)) * Math.sqrt((1 - b2 ** t) / (1 - b2)) * Math.sqrt(s);
}

/**
 * U[t]: how far one AdamW trajectory can move a coordinate in its first t steps (|p| ≤ 1 here):
 * Σ_{s<t} lr_s·(ρ_{s+1} + wd). Two runs can end up to 2·U[T] apart.
 */
function movementBounds<B>(fx: TrainFixture<B>): number[] {
  const out = [0];
  for (let t = 0; t < fx.steps; t++) {
    const lr = fx.lr * linearWarmupFactor(t, fx.warmup, fx.steps);
    out.push(out[t]! + lr * (adamRatioBound(t + 1) + fx.weightDecay));
  }
  return out;
}

/**
 * BatchNorm's running_mean is an EMA of batch means of conv(x) + b, so it is linear in the conv
 * bias b_t used at each step: rm_T = (1 − m)^T·rm_0 + Σ_t w_t·(μ_t + b_t), w_t = m(1 − m)^(T−1−t),
 * μ_t the bias-free batch mean (which must match torch: conv.weight does). With graft's own
 * trajectory b_t, R = rm_graft − Σ w_t·b_t is the bias-free part, so torch's rm − R is the EMA of
 * torch's (unknown) bias trajectory. That trajectory starts at the fixture's initial conv.bias, ends
 * at its final one, and moves at most U per step, which pins each b_t to an interval; check that
 * torch's implied EMA lies in Σ w_t·interval_t. Returns the interval half-widths' max (how tight the check is).
 */
function checkRunningMean<B>(fx: TrainFixture<B>, rmGraft: Float32Array, biasTrajectory: Float32Array[], momentum: number): number {
  const T = fx.steps;
  const U = movementBounds(fx);
  const b0 = fixtureValues(fx.initial['conv.bias']!);
  const bT = fixtureValues(fx.final['conv.bias']!);
  const rmTorch = fixtureValues(fx.final['bn.running_mean']!);
  let widest = 0;
  for (let c = 0; c < rmGraft.length; c++) {
    let emaGraft = 0;
    let lo = 0;
    let hi = 0;
    for (let t = 0; t < T; t++) {
      const w = momentum * (1 - momentum) ** (T - 1 - t);
      emaGraft += w * biasTrajectory[t]![c]!;
      lo += w * Math.max(b0[c]! - U[t]!, bT[c]! - (U[T]! - U[t]!));
      hi += w * Math.min(b0[c]! + U[t]!, bT[c]! + (U[T]! - U[t]!));
    }
    const implied = rmTorch[c]! - (rmGraft[c]! - emaGraft);
    widest = Math.max(widest, (hi - lo) / 2);
    expect(implied, `bn.running_mean[${c}]: torch's implied bias EMA`).toBeGreaterThanOrEqual(lo - TOL.weightAtol);
    expect(implied, `bn.running_mean[${c}]: torch's implied bias EMA`).toBeLessThanOrEqual(hi + TOL.weightAtol);
  }
  return widest;
}

const relDiffs = (got: number[], ref: number[]): number[] => got.map((g, i) => Math.abs(g - ref[i]!) / Math.abs(ref[i]!));
const fmt = (v: number): string => v.toExponential(2);

function checkSteps<B>(name: string, fx: TrainFixture<B>, rep: Replay): void {
  console.log(
    `${name}: loss ${fx.losses[0]!.toFixed(4)} -> ${fx.losses[fx.losses.length - 1]!.toFixed(4)}; ` +
      `losses max |diff| ${fmt(maxAbsDiff(rep.losses, fx.losses))} (rel ${fmt(Math.max(...relDiffs(rep.losses, fx.losses)))}); ` +
      `grad norms max |diff| ${fmt(maxAbsDiff(rep.norms, fx.gradNorms))} (rel ${fmt(Math.max(...relDiffs(rep.norms, fx.gradNorms)))}); ` +
      `gauge grads max |g|/norm ${fmt(Math.max(...rep.gaugeGrad.map((g, i) => g / rep.norms[i]!)))}`,
  );
  expectClose(rep.losses, fx.losses, { atol: 0, rtol: TOL.lossRtol }, `${name} losses`);
  expectClose(rep.norms, fx.gradNorms, { atol: 0, rtol: TOL.normRtol }, `${name} grad norms`);
  expect(fx.gradNorms.some((n) => n > fx.clip), 'the clip bites in some step (else clipping is untested)').toBe(true);
  rep.gaugeGrad.forEach((g, i) => expect(g, `${name} step ${i}: gauge gradient is rounding noise`).toBeLessThanOrEqual(GAUGE_GRAD_REL * rep.norms[i]!));
}

/**
 * Compare the model's state dict with the fixture's final state: tight tolerances everywhere except
 * gauge coordinates (within 2·U[T]) and keys in `skip` (checked separately); logs the max |diffs|.
 */
async function compareFinal<B>(model: Module, fx: TrainFixture<B>, gauges: readonly Gauge[], skip: readonly string[] = []): Promise<void> {
  const gaugeBound = 2 * movementBounds(fx)[fx.steps]!;
  const own = model.stateDict();
  expect([...own.keys()].sort()).toEqual(Object.keys(fx.final).sort());
  let worst = { key: '', d: 0 };
  const gaugeDiffs: string[] = [];
  for (const [k, t] of own) {
    const ref = fixtureValues(fx.final[k]!, k);
    const got = await t.read();
    expect(t.shape).toEqual(fx.final[k]!.shape);
    const gs = gauges.filter((g) => g.key === k);
    const inGauge = (i: number) => gs.some((g) => i >= g.start && i < g.end);
    const strictIdx = [...got.keys()].filter((i) => !inGauge(i));
    if (skip.includes(k)) {
      gaugeDiffs.push(`${k} ${fmt(maxAbsDiff(got, ref))} (checked separately)`);
      continue;
    }
    const a = strictIdx.map((i) => got[i]!);
    const b = strictIdx.map((i) => ref[i]!);
    const d = maxAbsDiff(a, b);
    if (d > worst.d) worst = { key: k, d };
    expectClose(a, b, { atol: TOL.weightAtol, rtol: TOL.weightRtol }, `final ${k}${gs.length ? ' (non-gauge elements)' : ''}`);
    for (const g of gs) {
      const ga = got.subarray(g.start, g.end);
      const gb = ref.subarray(g.start, g.end);
      gaugeDiffs.push(`${k}[${g.start}:${g.end}] ${fmt(maxAbsDiff(ga, gb))} (bound ${fmt(gaugeBound)})`);
      expectClose(ga, gb, { atol: gaugeBound, rtol: 0 }, `final ${k}[${g.start}:${g.end}] (gauge)`);
    }
  }
  console.log(`final weights: max |diff| ${fmt(worst.d)} (${worst.key}) outside gauges; gauges: ${gaugeDiffs.join(', ')}`);
}

describe('training parity with PyTorch (20 AdamW steps, warm-up + linear decay, clip 1.0)', () => {
  it('SmallCNN (conv → BN → ReLU → max-pool → linear): losses, grad norms, final weights and BN running stats', async () => {
    const r = rt();
    const fx = loadTrainFixture('train-cnn.json', isCnnBatch);
    expect(fx.batches.length).toBe(fx.steps);
    const model = new SmallCNN(r, { rng: 1 });
    const init = stateTensors(r, fx.initial);
    model.loadStateDict(init); // strict: the key layout matches torch's, running stats included
    for (const t of init.values()) t.dispose();
    const gauges = [{ key: 'conv.bias', start: 0, end: 8 }];
    const rep = await replay(r, model, fx, gauges, (b) => ({
      out: model.forward(Tensor.from(r, fixtureValues({ shape: b.xShape, data: b.x }, 'x'), b.xShape)),
      y: Tensor.from(r, b.y, [b.y.length], 'i32'),
    }));
    checkSteps('cnn', fx, rep);
    await compareFinal(model, fx, gauges, ['bn.running_mean']);
    const width = checkRunningMean(fx, await model.bn.running_mean!.read(), rep.trajectory.get('conv.bias')!, model.bn.momentum);
    console.log(`cnn: bn.running_mean consistent with torch's conv.bias endpoints (interval half-width up to ${fmt(width)})`);
    model.dispose();
  });

  it('TinyEncoder (embeddings → 2 post-norm encoder layers with key padding → head): losses, grad norms, final weights', async () => {
    const r = rt();
    const fx = loadTrainFixture('train-transformer.json', isTextBatch);
    expect(fx.batches.length).toBe(fx.steps);
    const model = new TinyEncoder(r, { rng: 2 });
    const init = stateTensors(r, fx.initial);
    model.loadStateDict(init);
    for (const t of init.values()) t.dispose();
    const E = model.dModel;
    const gauges = model.layers.map((_, i) => ({ key: `layers.${i}.self_attn.in_proj_bias`, start: E, end: 2 * E })); // b_k: rows E..2E of [q; k; v]
    const rep = await replay(r, model, fx, gauges, (b) => {
      const ids = Tensor.from(r, b.ids, b.shape, 'i32');
      const mask = Tensor.from(r, b.mask, b.shape);
      return { out: model.forward(ids, mask), y: Tensor.from(r, b.y, [b.y.length], 'i32') };
    });
    checkSteps('transformer', fx, rep);
    await compareFinal(model, fx, gauges);
    model.dispose();
  });
});
