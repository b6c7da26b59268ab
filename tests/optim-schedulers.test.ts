// LR schedulers vs their defining formulas (HF warm-up schedules, StepLR's recursive form) at many steps, per-group base lrs, state resume, and the lr a step actually uses.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { SGD, StepLR, constantLr, cosineWarmupDecay, linearWarmupDecay, LambdaLR, type LRScheduler } from '../src/optim/index.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { cosineWarmupRef, linearWarmupRef, sgdStepRef, stepLrRef } from './ref/optim.js';

const rt = useRuntime();

/** A plain groups object: schedulers only need paramGroups[].lr / initialLr. */
function groups(base: number[]): { paramGroups: { lr: number; initialLr: number }[] } {
  return { paramGroups: base.map((lr) => ({ lr, initialLr: lr })) };
}

/** lrs after construction and after each of `n` steps. */
function trace(s: LRScheduler, n: number): number[][] {
  const out = [s.lastLr()];
  for (let i = 0; i < n; i++) {
    s.step();
    out.push(s.lastLr());
  }
  return out;
}

const BASE = [0.1, 3e-4];

function expectTrace(got: number[][], ref: (step: number, base: number) => number): void {
  got.forEach((lrs, step) => expectClose(lrs, BASE.map((b) => ref(step, b)), { atol: 1e-15, rtol: 1e-12 }, `step ${step}`));
}

describe('schedulers', () => {
  for (const [warmup, total] of [
    [0, 10],
    [3, 10],
    [1, 1],
    [5, 20],
  ] as const) {
    it(`linear warm-up ${warmup} then linear decay to ${total} (past the end too)`, () => {
      const g = groups(BASE);
      expectTrace(trace(linearWarmupDecay(g, warmup, total), total + 4), (s, b) => b * linearWarmupRef(s, warmup, total));
    });
    it(`linear warm-up ${warmup} then cosine decay to ${total}`, () => {
      const g = groups(BASE);
      expectTrace(trace(cosineWarmupDecay(g, warmup, total), total + 4), (s, b) => b * cosineWarmupRef(s, warmup, total));
    });
  }

  it('cosine with 1.5 cycles (floored at 0)', () => {
    expectTrace(trace(cosineWarmupDecay(groups(BASE), 2, 12, 1.5), 16), (s, b) => b * cosineWarmupRef(s, 2, 12, 1.5));
  });

  it('warm-up starts at lr 0 and reaches the base lr at the end of warm-up', () => {
    const g = groups(BASE);
    const s = linearWarmupDecay(g, 4, 8);
    expect(s.lastLr()).toEqual([0, 0]);
    for (let i = 0; i < 4; i++) s.step();
    expect(s.lastLr()).toEqual(BASE);
  });

  for (const [stepSize, gamma] of [
    [1, 0.5],
    [3, 0.1],
    [4, 0.9],
  ] as const) {
    it(`StepLR(stepSize ${stepSize}, gamma ${gamma}) matches the recursive form over 20 steps`, () => {
      const got = trace(new StepLR(groups(BASE), stepSize, gamma), 20);
      const refs = BASE.map((b) => stepLrRef(b, 20, stepSize, gamma));
      got.forEach((lrs, s) => expectClose(lrs, refs.map((r) => r[s]!), { atol: 1e-15, rtol: 1e-12 }, `step ${s}`));
    });
  }

  it('constant, and constant after warm-up', () => {
    expectTrace(trace(constantLr(groups(BASE)), 5), (_s, b) => b);
    expectTrace(trace(constantLr(groups(BASE), 3), 6), (s, b) => b * Math.min(1, s / 3));
  });

  it('LambdaLR with one function per group', () => {
    const s = new LambdaLR(groups(BASE), [(k) => 1 / (k + 1), (k) => 0.5 ** k]);
    trace(s, 5).forEach((lrs, k) => expectClose(lrs, [BASE[0]! / (k + 1), BASE[1]! * 0.5 ** k], { atol: 1e-15, rtol: 1e-12 }));
    expect(() => new LambdaLR(groups(BASE), [(k) => k])).toThrow(/2 groups/);
  });

  it('stateDict/loadStateDict resumes the schedule', () => {
    const a = cosineWarmupDecay(groups(BASE), 2, 10);
    for (let i = 0; i < 4; i++) a.step();
    const sd = JSON.parse(JSON.stringify(a.stateDict())) as ReturnType<LRScheduler['stateDict']>;
    const g = groups([9, 9]);
    const b = cosineWarmupDecay(g, 2, 10);
    b.loadStateDict(sd);
    expect(b.lastLr()).toEqual(a.lastLr());
    a.step();
    b.step();
    expect(b.lastLr()).toEqual(a.lastLr());
  });

  it('scales each group from its own initial lr, and the optimizer step uses the scheduled lr', async () => {
    const p0 = Tensor.from(rt(), randArray(17, 1), [17]);
    const p1 = Tensor.from(rt(), randArray(255, 2), [255]);
    p0.requiresGrad = p1.requiresGrad = true;
    const host = [Float64Array.from(randArray(17, 1)), Float64Array.from(randArray(255, 2))];
    const opt = new SGD([{ params: [p0], lr: 0.5 }, { params: [p1], lr: 0.05 }], { lr: 1 });
    const sched = linearWarmupDecay(opt, 2, 6);
    for (let s = 0; s < 5; s++) {
      opt.zeroGrad();
      const lrs = opt.lrs;
      expectClose(lrs, [0.5, 0.05].map((b) => b * linearWarmupRef(s, 2, 6)), { atol: 1e-15, rtol: 1e-12 });
      const gs = [randArray(17, 10 + s), randArray(255, 20 + s)];
      p0.grad!.write(gs[0]!);
      p1.grad!.write(gs[1]!);
      opt.step();
      sched.step();
      gs.forEach((g, i) => sgdStepRef(host[i]!, g, null, { lr: lrs[i]!, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false }));
    }
    expectClose(await p0.read(), host[0]!, { atol: 1e-6, rtol: 1e-5 });
    expectClose(await p1.read(), host[1]!, { atol: 1e-6, rtol: 1e-5 });
    opt.dispose();
    p0.dispose();
    p1.dispose();
  });
});
