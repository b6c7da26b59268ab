// Replays PyTorch 1.13 torch.optim.SGD / AdamW trajectories (groups, clip_grad_norm_, grad scaling, a grad-less param) and LR schedules from tests/fixtures/optim-torch.json (scripts/fixtures/optim_reference.py).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { AdamW, SGD, LambdaLR, StepLR, linearWarmupDecay, cosineWarmupDecay, type LRScheduler, type ParamGroup, type SGDHyper, type AdamWHyper } from '../src/optim/index.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';

const rt = useRuntime();

interface TorchHyper {
  lr: number;
  momentum?: number;
  dampening?: number;
  weight_decay?: number;
  nesterov?: boolean;
  maximize?: boolean;
  betas?: [number, number];
  eps?: number;
}
interface Case {
  name: string;
  kind: 'sgd' | 'adamw';
  amsgrad: boolean;
  clip: number | null;
  gradScale: number;
  groups: { params: number[]; hyper: TorchHyper }[];
  init: number[][];
  steps: { grads: (number[] | null)[]; norm?: number; params: number[][] }[];
}
interface Schedule {
  name: string;
  args: { warmup?: number; total?: number; cycles?: number; stepSize?: number; gamma?: number };
  lrs: number[][];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/optim-torch.json', import.meta.url), 'utf8')) as {
  torch: string;
  cases: Case[];
  schedules: Schedule[];
};

/**
 * Tolerance: both sides run float32; PyTorch's CPU kernels fuse multiply-adds differently from
 * WGSL, so elements differ by a few ulps per step (|p| ≤ ~1.5, ulp ≈ 1.2e-7).
 */
const TOL = { atol: 1e-6, rtol: 1e-6 };

function toGroup(t: TorchHyper, params: Tensor[]): ParamGroup<SGDHyper> & ParamGroup<AdamWHyper> {
  return {
    params,
    lr: t.lr,
    ...(t.momentum !== undefined && { momentum: t.momentum }),
    ...(t.dampening !== undefined && { dampening: t.dampening }),
    ...(t.nesterov !== undefined && { nesterov: t.nesterov }),
    ...(t.weight_decay !== undefined && { weightDecay: t.weight_decay }),
    ...(t.maximize !== undefined && { maximize: t.maximize }),
    ...(t.betas !== undefined && { betas: t.betas }),
    ...(t.eps !== undefined && { eps: t.eps }),
  };
}

describe(`PyTorch ${fixture.torch} optimizer trajectories`, () => {
  for (const c of fixture.cases) {
    it(`${c.name}: every step within ${TOL.atol}/${TOL.rtol} of torch`, async () => {
      const ps = c.init.map((v) => {
        const t = Tensor.from(rt(), v, [v.length]);
        t.requiresGrad = true;
        return t;
      });
      const groups = c.groups.map((g) => toGroup(g.hyper, g.params.map((i) => ps[i]!)));
      // small chunks so the groups span several arena chunks
      const opts = { maxChunkBytes: 512 };
      const opt = c.kind === 'sgd' ? new SGD(groups, { lr: 0, ...opts }) : new AdamW(groups, { amsgrad: c.amsgrad, ...opts });
      expect(opt.chunkCount).toBeGreaterThan(1);
      for (const [s, step] of c.steps.entries()) {
        opt.zeroGrad();
        step.grads.forEach((g, i) => {
          if (g) ps[i]!.grad!.write(g);
          else ps[i]!.grad = null; // torch: grad None -> parameter skipped this step
        });
        const norm = c.clip !== null ? opt.clipGradNorm(c.clip, { gradScale: c.gradScale }) : null;
        opt.step({ gradScale: c.gradScale });
        if (norm) expectClose(await norm.read(), [step.norm!], { atol: 0, rtol: 2e-6 }, `${c.name} norm at step ${s}`);
        for (let i = 0; i < ps.length; i++) expectClose(await ps[i]!.read(), step.params[i]!, TOL, `${c.name} step ${s} param ${i}`);
      }
      opt.dispose();
      for (const p of ps) p.dispose();
    });
  }
});

describe(`PyTorch ${fixture.torch} LR schedules`, () => {
  for (const s of fixture.schedules) {
    it(`${s.name}: ${s.lrs.length} steps match torch's LambdaLR/StepLR`, () => {
      const g = { paramGroups: [0.1, 0.01].map((lr) => ({ lr, initialLr: lr })) };
      const a = s.args;
      let sched: LRScheduler;
      if (s.name === 'linear') sched = linearWarmupDecay(g, a.warmup!, a.total!);
      else if (s.name === 'step') sched = new StepLR(g, a.stepSize!, a.gamma!);
      else if (s.name === 'cosine-cycles') sched = cosineWarmupDecay(g, a.warmup!, a.total!, a.cycles!);
      else sched = cosineWarmupDecay(g, a.warmup!, a.total!);
      expect(sched).toBeInstanceOf(s.name === 'step' ? StepLR : LambdaLR);
      s.lrs.forEach((lrs, k) => {
        if (k > 0) sched.step();
        expectClose(sched.lastLr(), lrs, { atol: 1e-15, rtol: 1e-12 }, `${s.name} step ${k}`);
      });
    });
  }
});
