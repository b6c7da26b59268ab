// Workloads for `graft bench fusion`: one training-relevant case per fusion switch (full and --quick sizes).
import type { Runtime } from '../runtime/runtime.js';
import type { FusionName } from '../runtime/fusion.js';
import { Tensor, keep } from '../tensor.js';
import { backward } from '../autograd/engine.js';
import * as F from '../autograd/functional.js';
import { noGrad } from '../autograd/grad-mode.js';
import { Rng } from '../autograd/random.js';
import { loraLinear } from '../peft/functional.js';
import { AdamW } from '../optim/index.js';
import { BatchNorm2d, Conv2d, LayerNorm, Linear } from '../nn/layers.js';
import { addLayerNorm, linearAct } from '../models/bert-layers.js';
import { FoldCache, residualBlock, type ResidualBlock } from '../models/resnet-block.js';

/** A prepared workload: `run` records one timed iteration (the caller's scope frees its temporaries). */
export interface FusionWorkload {
  run(): void;
  dispose(): void;
}

export interface FusionCase {
  fusion: FusionName;
  /** What is timed, with shapes. */
  label: (quick: boolean) => string;
  /** Build inputs and modules; called with the switch already set (some decisions are made at build time). */
  make: (rt: Runtime, quick: boolean) => FusionWorkload;
}

function randn(rt: Runtime, shape: number[], rng: Rng, scale = 1, grad = false): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * scale;
  const t = keep(Tensor.from(rt, d, shape));
  t.requiresGrad = grad;
  return t;
}

/** Forward + backward of `f` with a fixed upstream gradient; leaf gradients are dropped before each run. */
function fwdBwd(leaves: Tensor[], gy: Tensor, f: () => Tensor): () => void {
  return () => {
    for (const t of leaves) {
      t.grad?.dispose();
      t.grad = null;
    }
    const y = f();
    backward(y, gy);
  };
}

function disposeAll(ts: (Tensor | null)[]): () => void {
  return () => {
    for (const t of ts) {
      t?.grad?.dispose();
      t?.dispose();
    }
  };
}

const linearRelu: FusionCase = {
  fusion: 'matmul-epilogue',
  label: (q) => (q ? 'linear+ReLU fwd+bwd [32, 24→40]' : 'linear+bias+ReLU fwd+bwd [1024, 768→3072]'),
  make(rt, quick) {
    const [M, K, N] = quick ? [32, 24, 40] : [1024, 768, 3072];
    const rng = new Rng(1);
    const x = randn(rt, [M, K], rng, 1, true);
    const lin = new Linear(rt, K, N, { rng });
    const gy = randn(rt, [M, N], rng);
    const leaves = [x, lin.weight, lin.bias!];
    return { run: fwdBwd(leaves, gy, () => lin.forwardRelu(x)), dispose: () => (disposeAll([x, gy])(), lin.dispose()) };
  },
};

const linearGelu: FusionCase = {
  fusion: 'matmul-epilogue',
  label: (q) => (q ? 'BERT linear+GELU inference [32, 24→40]' : 'BERT linear+bias+GELU inference [1024, 768→3072]'),
  make(rt, quick) {
    const [M, K, N] = quick ? [32, 24, 40] : [1024, 768, 3072];
    const rng = new Rng(2);
    const x = randn(rt, [M, K], rng);
    const lin = new Linear(rt, K, N, { rng });
    return { run: () => noGrad(() => linearAct(x, lin, 'gelu')), dispose: () => (x.dispose(), lin.dispose()) };
  },
};

const lora: FusionCase = {
  fusion: 'lora',
  label: (q) => (q ? 'LoRA r4 fwd+bwd [32, 24→24]' : 'LoRA r8 linear fwd+bwd, frozen W [1024, 768→768]'),
  make(rt, quick) {
    const [M, D, r] = quick ? [32, 24, 4] : [1024, 768, 8];
    const rng = new Rng(3);
    const x = randn(rt, [M, D], rng, 1, true);
    const w = randn(rt, [D, D], rng, 0.03);
    const bias = randn(rt, [D], rng, 0.1);
    const a = randn(rt, [r, D], rng, 0.03, true);
    const b = randn(rt, [D, r], rng, 0.03, true);
    const gy = randn(rt, [M, D], rng);
    const run = fwdBwd([x, a, b], gy, () => loraLinear(x, w, a, b, bias, { scaling: 2 }));
    return { run, dispose: disposeAll([x, w, bias, a, b, gy]) };
  },
};

const lnResidual: FusionCase = {
  fusion: 'layernorm-residual',
  label: (q) => (q ? 'LN(x + r) inference [32, 24]' : 'LN(x + residual) inference [1024, 768]'),
  make(rt, quick) {
    const [M, D] = quick ? [32, 24] : [1024, 768];
    const rng = new Rng(4);
    const x = randn(rt, [M, D], rng);
    const r = randn(rt, [M, D], rng);
    const ln = new LayerNorm(rt, D, 1e-12);
    return { run: () => noGrad(() => addLayerNorm(x, r, ln)), dispose: () => (disposeAll([x, r])(), ln.dispose()) };
  },
};

const attention: FusionCase = {
  fusion: 'attention',
  label: (q) => (q ? 'attention fwd+bwd B1 H2 T16 D8, padding mask' : 'attention fwd+bwd B8 H12 T128 D64, padding mask'),
  make(rt, quick) {
    const [B, H, T, D] = quick ? [1, 2, 16, 8] : [8, 12, 128, 64];
    const rng = new Rng(5);
    const q = randn(rt, [B, H, T, D], rng, 1, true);
    const k = randn(rt, [B, H, T, D], rng, 1, true);
    const v = randn(rt, [B, H, T, D], rng, 1, true);
    const gy = randn(rt, [B, H, T, D], rng);
    // every other sequence has its last quarter padded
    const m = Float32Array.from({ length: B * T }, (_, i) => (Math.floor(i / T) % 2 === 1 && i % T >= (3 * T) / 4 ? 0 : 1));
    const mask = keep(Tensor.from(rt, m, [B, T]));
    const run = fwdBwd([q, k, v], gy, () => F.scaledDotProductAttention(q, k, v, { mask }));
    return { run, dispose: disposeAll([q, k, v, gy, mask]) };
  },
};

const crossEntropy: FusionCase = {
  fusion: 'cross-entropy',
  label: (q) => (q ? 'cross-entropy fwd+bwd [8, 30]' : 'cross-entropy fwd+bwd [256, 30522] (MLM vocabulary)'),
  make(rt, quick) {
    const [B, C] = quick ? [8, 30] : [256, 30522];
    const rng = new Rng(6);
    const logits = randn(rt, [B, C], rng, 2, true);
    const targets = keep(Tensor.from(rt, Int32Array.from({ length: B }, () => Math.floor(rng.next() * C)), [B], 'i32'));
    const one = keep(Tensor.from(rt, [1], [1]));
    const run = fwdBwd([logits], one, () => F.crossEntropy(logits, targets));
    return { run, dispose: disposeAll([logits, targets, one]) };
  },
};

/** Parameter shapes of BERT-mini (4 layers, hidden 256, 4 heads, intermediate 1024) with a 2-class head: ~11.2M values in 69 tensors. */
export function bertMiniParamShapes(quick: boolean): number[][] {
  const [V, H, I, L] = quick ? [100, 16, 32, 1] : [30522, 256, 1024, 4];
  const shapes: number[][] = [[V, H], [512, H], [2, H], [H], [H]];
  for (let l = 0; l < L; l++) {
    for (let i = 0; i < 4; i++) shapes.push([H, H], [H]); // query, key, value, attention.output.dense
    shapes.push([H], [H], [I, H], [I], [H, I], [H], [H], [H]);
  }
  shapes.push([H, H], [H], [2, H], [2]);
  return shapes;
}

const adamw: FusionCase = {
  fusion: 'adamw-multi-tensor',
  label: (q) => (q ? 'AdamW step, tiny param set' : 'AdamW step over BERT-mini parameters (69 tensors, 11.2M values)'),
  make(rt, quick) {
    const rng = new Rng(7);
    const params = bertMiniParamShapes(quick).map((s) => randn(rt, s, rng, 0.02, true));
    const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01 });
    // gradients once (d/dp Σ p² = 2p); each timed run is one optimizer step
    opt.zeroGrad();
    for (const p of params) {
      const sq = F.square(p);
      const s = F.sum(sq);
      backward(s);
      sq.dispose();
      s.dispose();
    }
    return {
      run: () => opt.step(),
      dispose: () => {
        opt.dispose();
        disposeAll(params)();
      },
    };
  },
};

/** ResNet-50 layer1 (3 bottlenecks, 64→256 channels) in eval with frozen weights: the stage a linear probe runs. */
const bnFold: FusionCase = {
  fusion: 'bn-fold',
  label: (q) => (q ? 'frozen bottleneck, batch 1, 8×8, 8→32 ch' : 'frozen ResNet-50 layer1 (3 bottlenecks), batch 8, res 64 (16×16 maps)'),
  make(rt, quick) {
    const [N, S, inC, width, blocks] = quick ? [1, 8, 8, 8, 1] : [8, 16, 64, 64, 3];
    const rng = new Rng(8);
    const mods: (Conv2d | BatchNorm2d)[] = [];
    const bn = (c: number): BatchNorm2d => {
      const m = new BatchNorm2d(rt, c);
      m.running_mean!.write(Float32Array.from({ length: c }, () => rng.normal() * 0.1));
      m.running_var!.write(Float32Array.from({ length: c }, () => 0.5 + rng.next()));
      m.eval();
      mods.push(m);
      return m;
    };
    const conv = (i: number, o: number, k: number): Conv2d => {
      const c = new Conv2d(rt, i, o, k, { padding: k === 3 ? 1 : 0, bias: false, rng });
      c.weight.requiresGrad = false;
      mods.push(c);
      return c;
    };
    const out = width * 4;
    const blks: ResidualBlock[] = [];
    for (let b = 0; b < blocks; b++) {
      const cin = b === 0 ? inC : out;
      blks.push({
        main: [
          { conv: conv(cin, width, 1), bn: bn(width) },
          { conv: conv(width, width, 3), bn: bn(width) },
          { conv: conv(width, out, 1), bn: bn(out) },
        ],
        shortcut: b === 0 ? { conv: conv(cin, out, 1), bn: bn(out) } : null,
      });
    }
    for (const m of mods) for (const p of m.parameters()) p.requiresGrad = false;
    const folds = new FoldCache();
    const x = randn(rt, [N, inC, S, S], rng);
    const run = (): void => {
      noGrad(() => {
        let h = x;
        for (const blk of blks) {
          const y = residualBlock(h, blk, folds);
          if (h !== x) h.dispose();
          h = y;
        }
      });
    };
    return {
      run,
      dispose: () => {
        folds.clear();
        x.dispose();
        for (const m of mods) m.dispose();
      },
    };
  },
};

/** Every case, in the order of FUSIONS. */
export const FUSION_CASES: readonly FusionCase[] = [linearRelu, linearGelu, lora, lnResidual, attention, crossEntropy, adamw, bnFold];
