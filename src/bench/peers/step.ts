// What a peer's training step looks like to the runner (build once, step N times), and the timing loop shared by every in-process peer.
import type * as TF from '@tensorflow/tfjs-core';
import { Rng } from '../../autograd/random.js';
import { median } from '../measure.js';
import type { FinetuneBenchSpec, PeerResult } from '../finetune-spec.js';

/** One model + optimizer + fixed synthetic batch, built by a peer for one spec. */
export interface PeerTrainStep {
  /** Parameter elements updated by the optimizer, and in the whole model (frozen included). */
  trainableParams: number;
  totalParams: number;
  /** One full training step (forward, loss, backward, optimizer update); resolves when the work is done, with the loss. */
  step(): Promise<number>;
  dispose(): void;
}

/** Progress callback: `done` of `total` steps (warm-up included). */
export type StepProgress = (done: number, total: number) => void;

/** Run `spec.warmup` untimed and `spec.steps` timed steps; median step time → samples/s. */
export async function timeSteps(peer: string, description: string, s: PeerTrainStep, spec: FinetuneBenchSpec, onProgress?: StepProgress): Promise<PeerResult> {
  const total = spec.warmup + spec.steps;
  const ms: number[] = [];
  for (let i = 0; i < total; i++) {
    const t0 = performance.now();
    const loss = await s.step();
    const dt = performance.now() - t0;
    if (!Number.isFinite(loss)) throw new Error(`${peer}: loss is ${loss} at step ${i}`);
    if (i >= spec.warmup) ms.push(dt);
    onProgress?.(i + 1, total);
  }
  const med = median(ms);
  return { peer, description, samplesPerSec: (spec.batch * 1000) / med, medianStepMs: med, steps: ms.length };
}

/** A peer result for a spec the peer could not run. */
export function skippedResult(peer: string, description: string, why: string): PeerResult {
  return { peer, description, samplesPerSec: NaN, medianStepMs: NaN, steps: 0, skipped: why };
}

/** Seeded host arrays for synthetic weights and batches. */
export class HostRandom {
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  normal(n: number, std: number): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.rng.normal(0, std);
    return a;
  }
  uniform(n: number, bound: number): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.rng.uniform(-bound, bound);
    return a;
  }
  /** Integers in [lo, hi). */
  ints(n: number, lo: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.min(hi - 1, lo + Math.floor(this.rng.next() * (hi - lo)));
    return a;
  }
}

/** Variables of a tfjs model, with the optimizer's list (trainable ones) kept apart. */
export class VarBag {
  readonly all: TF.Variable[] = [];
  readonly trainable: TF.Variable[] = [];
  constructor(private readonly tf: typeof TF) {}
  add(values: Float32Array, shape: number[], trainable: boolean): TF.Variable {
    const t = this.tf.tensor(values, shape);
    const v = this.tf.variable(t, trainable);
    t.dispose();
    this.all.push(v);
    if (trainable) this.trainable.push(v);
    return v;
  }
  count(vs: readonly TF.Variable[]): number {
    return vs.reduce((n, v) => n + v.size, 0);
  }
  dispose(): void {
    for (const v of this.all) v.dispose();
  }
}

/** AdamW hyper-parameters of every peer (graft's benchmark uses the same: lr 1e-4, weight decay 0.01, no clipping, no schedule). */
export const PEER_ADAMW = { lr: 1e-4, weightDecay: 0.01 } as const;

/** Knobs the tests turn (the benchmark uses the defaults). */
export interface PeerStepOptions {
  /** AdamW learning rate (default PEER_ADAMW.lr). */
  lr?: number;
  /** Hidden dropout probability in training (BERT; default 0.1 as graft's train mode). */
  dropout?: number;
}

/** AdamW on tfjs: tf.train.adam plus decoupled weight decay (p ← p·(1 − lr·wd) before the Adam update, as torch.optim.AdamW). */
export class TfjsAdamW {
  private readonly opt: TF.AdamOptimizer;
  constructor(
    private readonly tf: typeof TF,
    private readonly vars: TF.Variable[],
    private readonly lr: number,
    private readonly weightDecay = PEER_ADAMW.weightDecay,
  ) {
    this.opt = tf.train.adam(lr, 0.9, 0.999, 1e-8);
  }
  /** One step on loss = f(); returns the loss (the caller disposes it). */
  step(f: () => TF.Scalar): TF.Scalar {
    const { value, grads } = this.tf.variableGrads(f, this.vars);
    const decay = 1 - this.lr * this.weightDecay;
    this.tf.tidy(() => {
      for (const v of this.vars) v.assign(this.tf.mul(v, decay));
    });
    this.opt.applyGradients(this.vars.map((v) => ({ name: v.name, tensor: grads[v.name]! })));
    this.tf.dispose(grads);
    return value;
  }
  dispose(): void {
    this.opt.dispose();
  }
}

/**
 * The PeerTrainStep every tfjs model shares: AdamW over the bag's trainable variables; linear-probe runs the
 * backbone `features()` outside the gradient tape, the other strategies differentiate through it.
 */
export function tfjsTrainStep<F extends TF.Tensor>(
  tf: typeof TF,
  bag: VarBag,
  o: { strategy: FinetuneBenchSpec['strategy']; lr?: number; features: () => F; lossOf: (f: F) => TF.Scalar; inputs: readonly TF.Tensor[] },
): PeerTrainStep {
  const opt = new TfjsAdamW(tf, bag.trainable, o.lr ?? PEER_ADAMW.lr);
  return {
    trainableParams: bag.count(bag.trainable),
    totalParams: bag.count(bag.all),
    async step() {
      let cost: TF.Scalar;
      if (o.strategy === 'linear-probe') {
        const f = tf.tidy(o.features); // backbone outside the tape: not differentiated
        cost = opt.step(() => o.lossOf(f));
        f.dispose();
      } else {
        cost = opt.step(() => o.lossOf(o.features()));
      }
      const v = (await cost.data())[0]!; // the read waits for the whole step (submitted in order)
      cost.dispose();
      return v;
    },
    dispose() {
      opt.dispose();
      bag.dispose();
      for (const t of o.inputs) t.dispose();
    },
  };
}
