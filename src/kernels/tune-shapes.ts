// The matmul and conv2d shapes a model's training step runs (forward and backward), for `graft tune --model`.
import type { TuneShape } from './tune-cache.js';
import { MATMUL_TUNE_SHAPES } from './matmul-tune.js';

export const TUNE_MODELS = ['resnet50', 'resnet18', 'bert-tiny', 'bert-mini', 'bert-base'] as const;
export type TuneModel = (typeof TUNE_MODELS)[number];

export interface TuneModelSpec {
  /** Examples per step. */
  batch: number;
  /** ResNet input side: x [batch, 3, res, res]. */
  res: number;
  /** BERT tokens per sequence. */
  seq: number;
  /** Classes of the head. */
  classes: number;
}

type MM = Extract<TuneShape, { kind: 'matmul' }>;
type CV = Extract<TuneShape, { kind: 'conv2d' }>;

const mm = (M: number, N: number, K: number, batch = 1, transA = false, transB = false): MM => ({ kind: 'matmul', M, N, K, batch, transA, transB });

/**
 * A Linear x [batch, rows, inF] · w [outF, inF]ᵀ and its backward, as the autograd rules run them:
 * y: M = rows, transB (batched over `batch`); dx = g · w: M = rows, K = outF; dw = g2ᵀ · x2: M = outF, K = batch·rows.
 */
function linear(batch: number, rows: number, inF: number, outF: number, backward: boolean): MM[] {
  const out = [mm(rows, outF, inF, batch, false, true)];
  if (backward) out.push(mm(rows, inF, outF, batch), mm(outF, inF, batch * rows, 1, true, false));
  return out;
}

/** A batched matmul a [bt, M, K] · b [bt, K, N] and its backward (da = g · bᵀ, db = aᵀ · g). */
function bmm(bt: number, M: number, N: number, K: number): MM[] {
  return [mm(M, N, K, bt), mm(M, K, N, bt, false, true), mm(K, N, M, bt, true, false)];
}

function conv(n: number, c: number, h: number, k: number, r: number, stride: number, pad: number): CV {
  return { kind: 'conv2d', x: [n, c, h, h], w: [k, c, r, r], stride: [stride, stride], padding: [pad, pad], dilation: [1, 1], groups: 1 };
}

const outSide = (h: number, r: number, s: number, p: number): number => Math.floor((h + 2 * p - r) / s) + 1;

/** torchvision ResNet-18/50 forward convolutions (stride in the 3×3 of a bottleneck, v1.5) and the fc layer. */
function resnet(depth: 18 | 50, s: TuneModelSpec): TuneShape[] {
  const B = s.batch;
  const out: TuneShape[] = [conv(B, 3, s.res, 64, 7, 2, 3)];
  let h = outSide(outSide(s.res, 7, 2, 3), 3, 2, 1); // stem conv, then 3×3 max pool stride 2
  let inC = 64;
  const blocks = depth === 50 ? [3, 4, 6, 3] : [2, 2, 2, 2];
  [64, 128, 256, 512].forEach((planes, li) => {
    for (let b = 0; b < blocks[li]!; b++) {
      const stride = b === 0 && li > 0 ? 2 : 1;
      const ho = outSide(h, 3, stride, 1);
      if (depth === 50) {
        out.push(conv(B, inC, h, planes, 1, 1, 0), conv(B, planes, h, planes, 3, stride, 1), conv(B, planes, ho, 4 * planes, 1, 1, 0));
        if (b === 0) out.push(conv(B, inC, h, 4 * planes, 1, stride, 0));
        inC = 4 * planes;
      } else {
        out.push(conv(B, inC, h, planes, 3, stride, 1), conv(B, planes, ho, planes, 3, 1, 1));
        if (b === 0 && (stride !== 1 || inC !== planes)) out.push(conv(B, inC, h, planes, 1, stride, 0));
        inC = planes;
      }
      h = ho;
    }
  });
  out.push(...linear(1, B, inC, s.classes, true));
  return out;
}

const BERT: Record<'bert-tiny' | 'bert-mini' | 'bert-base', { H: number; heads: number; I: number }> = {
  'bert-tiny': { H: 128, heads: 2, I: 512 },
  'bert-mini': { H: 256, heads: 4, I: 1024 },
  'bert-base': { H: 768, heads: 12, I: 3072 },
};

/** One BERT encoder layer's projections, FFN and attention products, the pooler, the head, and LoRA (r 8) on q/v. */
function bert(name: keyof typeof BERT, s: TuneModelSpec): TuneShape[] {
  const { H, heads, I } = BERT[name];
  const B = s.batch;
  const T = s.seq;
  const dh = H / heads;
  const r = 8;
  return [
    ...linear(B, T, H, H, true), // query / key / value / attention output
    ...linear(B, T, H, I, true), // FFN up (+ GELU)
    ...linear(B, T, I, H, true), // FFN down
    ...bmm(B * heads, T, T, dh), // scores q · kᵀ
    ...bmm(B * heads, T, dh, T), // probabilities · v
    ...linear(1, B, H, H, true), // pooler
    ...linear(1, B, H, s.classes, true), // classifier
    ...linear(B, T, H, r, true), // LoRA down (x · Aᵀ)
    ...linear(B, T, r, H, true), // LoRA up (u · Bᵀ)
  ];
}

/** Every distinct matmul/conv2d shape of one training step of `model` (order of first use); `repeats` keeps each layer's (ResNet). */
export function modelTuneShapes(model: TuneModel, spec: TuneModelSpec, repeats = false): TuneShape[] {
  const all = model === 'resnet50' ? resnet(50, spec) : model === 'resnet18' ? resnet(18, spec) : bert(model, spec);
  if (repeats) return all;
  const seen = new Set<string>();
  return all.filter((t) => {
    const k = JSON.stringify(t);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The standard matmul list (no model given): MATMUL_TUNE_SHAPES, untransposed. */
export function standardMatmulShapes(): TuneShape[] {
  return MATMUL_TUNE_SHAPES.map(([M, N, K]) => mm(M, N, K));
}
