// Analytic FLOP count of one fine-tuning step (forward + backward, matmul/conv/attention products only) for the finetune benchmark.
//
// Counted: every convolution, Linear and attention product, 2 FLOPs per multiply-add. Not counted:
// BatchNorm, LayerNorm, activations, softmax, pooling, dropout, embedding gathers / scatters, the loss and
// AdamW (elementwise work that is small next to the products).
//
// A product with forward cost f costs, in the backward pass, f more for the gradient of its input (dX,
// when something below it needs a gradient) and f more for the gradient of its weight (dW, when the weight
// is trained). So full fine-tuning ≈ 3× forward, and the frozen strategies count only what they need:
//   linear-probe: backbone forward only (under noGrad), head forward + head dW.
//   lora: forward of the base model and the adapters; dX from the head down to the lowest adapter; dW of
//   the adapters (A and B) and the head only; nothing below the lowest adapter.
// Attention (scores Q·Kᵀ and context P·V, f = 4·B·T²·H in all) has no weights: its backward (dQ, dK, dP,
// dV) costs 2·f when any gradient flows through it.
import type { FinetuneBenchSpec } from './finetune-spec.js';
import { RESNET_CONFIGS } from '../models/resnet.js';
import type { BertConfig } from '../models/bert-config.js';

/** One product of the step: forward FLOPs and which backward products are needed. */
export interface FlopTerm {
  name: string;
  fwd: number;
  /** Gradient of the input is computed (cost fwd). */
  dx: boolean;
  /** Gradient of the weight is computed (cost fwd). */
  dw: boolean;
}

export interface StepFlops {
  /** Forward products of the whole model (what inference would cost). */
  forward: number;
  /** Backward products that the strategy needs. */
  backward: number;
  /** forward + backward. */
  total: number;
  terms: FlopTerm[];
}

export function sumFlops(terms: readonly FlopTerm[]): StepFlops {
  let forward = 0;
  let backward = 0;
  for (const t of terms) {
    forward += t.fwd;
    backward += (t.dx ? t.fwd : 0) + (t.dw ? t.fwd : 0);
  }
  return { forward, backward, total: forward + backward, terms: [...terms] };
}

/** Output side of a convolution (square kernels, dilation 1). */
const convOut = (h: number, k: number, stride: number, pad: number): number => Math.floor((h + 2 * pad - k) / stride) + 1;

interface ConvShape {
  name: string;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  hout: number;
  /** Its input is the output of layer3 (or earlier): no gradient reaches below it under LoRA. */
  stageInput: boolean;
  stage: number;
}

/** Every conv of torchvision resnet{depth} on a res×res input, in forward order (stage 0 = stem). */
export function resnetConvShapes(depth: 18 | 50, res: number): ConvShape[] {
  const cfg = RESNET_CONFIGS[depth];
  const out: ConvShape[] = [];
  let h = convOut(res, 7, 2, 3);
  out.push({ name: 'conv1', cin: 3, cout: 64, k: 7, stride: 2, hout: h, stageInput: true, stage: 0 });
  h = convOut(h, 3, 2, 1); // max pool
  let inPlanes = 64;
  [64, 128, 256, 512].forEach((planes, si) => {
    for (let b = 0; b < cfg.layers[si]!; b++) {
      const p = `layer${si + 1}.${b}`;
      const stride = b === 0 && si > 0 ? 2 : 1;
      const ho = convOut(h, 3, stride, 1);
      const first = b === 0;
      const stage = si + 1;
      if (cfg.block === 'basic') {
        out.push({ name: `${p}.conv1`, cin: inPlanes, cout: planes, k: 3, stride, hout: ho, stageInput: first, stage });
        out.push({ name: `${p}.conv2`, cin: planes, cout: planes, k: 3, stride: 1, hout: ho, stageInput: false, stage });
      } else {
        out.push({ name: `${p}.conv1`, cin: inPlanes, cout: planes, k: 1, stride: 1, hout: h, stageInput: first, stage });
        out.push({ name: `${p}.conv2`, cin: planes, cout: planes, k: 3, stride, hout: ho, stageInput: false, stage });
        out.push({ name: `${p}.conv3`, cin: planes, cout: planes * 4, k: 1, stride: 1, hout: ho, stageInput: false, stage });
      }
      const width = cfg.block === 'basic' ? planes : planes * 4;
      if (stride !== 1 || inPlanes !== width) {
        out.push({ name: `${p}.downsample.0`, cin: inPlanes, cout: width, k: 1, stride, hout: ho, stageInput: first, stage });
      }
      inPlanes = width;
      h = ho;
    }
  });
  return out;
}

/** FLOP terms of one ResNet step for `spec` (model resnet18 / resnet50). */
export function resnetStepFlops(spec: FinetuneBenchSpec): StepFlops {
  const depth = spec.model === 'resnet50' ? 50 : 18;
  const N = spec.batch;
  const convs = resnetConvShapes(depth, spec.res);
  const features = depth === 50 ? 2048 : 512;
  const terms: FlopTerm[] = [];
  const s = spec.strategy;
  const r = spec.loraRank;
  for (const c of convs) {
    const px = N * c.hout * c.hout;
    const fwd = 2 * px * c.cout * c.cin * c.k * c.k;
    if (s === 'full') terms.push({ name: c.name, fwd, dx: c.stage > 0, dw: true });
    else if (s === 'linear-probe' || c.stage < 4) terms.push({ name: c.name, fwd, dx: false, dw: false });
    else {
      // lora, layer4: frozen base, adapter A (k×k, cin→r, same stride) then B (1×1, r→cout)
      const dx = !c.stageInput;
      terms.push({ name: c.name, fwd, dx, dw: false });
      terms.push({ name: `${c.name}.lora_A`, fwd: 2 * px * r * c.cin * c.k * c.k, dx, dw: true });
      terms.push({ name: `${c.name}.lora_B`, fwd: 2 * px * c.cout * r, dx: true, dw: true });
    }
  }
  terms.push({ name: 'fc', fwd: 2 * N * features * spec.numClasses, dx: s !== 'linear-probe', dw: true });
  // the stem's dX is never needed (the input image has no gradient); `fc`'s dX is needed except for linear-probe
  return sumFlops(terms);
}

/** bert-tiny / bert-mini / bert-base architecture (Google's BERT miniatures and bert-base-uncased), vocab 30522. */
export const BERT_SIZES: Record<'bert-tiny' | 'bert-mini' | 'bert-base', Pick<BertConfig, 'numHiddenLayers' | 'hiddenSize' | 'numAttentionHeads' | 'intermediateSize'>> = {
  'bert-tiny': { numHiddenLayers: 2, hiddenSize: 128, numAttentionHeads: 2, intermediateSize: 512 },
  'bert-mini': { numHiddenLayers: 4, hiddenSize: 256, numAttentionHeads: 4, intermediateSize: 1024 },
  'bert-base': { numHiddenLayers: 12, hiddenSize: 768, numAttentionHeads: 12, intermediateSize: 3072 },
};

/** FLOP terms of one BertForSequenceClassification step for `spec` (LoRA on query/value of every layer). */
export function bertStepFlops(spec: FinetuneBenchSpec): StepFlops {
  const cfg = BERT_SIZES[spec.model as keyof typeof BERT_SIZES];
  const { hiddenSize: H, intermediateSize: I, numHiddenLayers: L } = cfg;
  const B = spec.batch;
  const T = spec.seq;
  const M = B * T;
  const r = spec.loraRank;
  const s = spec.strategy;
  const terms: FlopTerm[] = [];
  const lin = (rows: number, inF: number, outF: number): number => 2 * rows * inF * outF;
  for (let l = 0; l < L; l++) {
    const p = `layer.${l}`;
    const dense: [string, number, number][] = [
      ['query', H, H],
      ['key', H, H],
      ['value', H, H],
      ['attention.output', H, H],
      ['intermediate', H, I],
      ['output', I, H],
    ];
    for (const [n, inF, outF] of dense) {
      const fwd = lin(M, inF, outF);
      const qkv = n === 'query' || n === 'key' || n === 'value';
      if (s === 'full') terms.push({ name: `${p}.${n}`, fwd, dx: true, dw: true });
      else if (s === 'linear-probe') terms.push({ name: `${p}.${n}`, fwd, dx: false, dw: false });
      else {
        // lora: below layer 0's q/k/v nothing needs a gradient (frozen embeddings)
        const dx = !(l === 0 && qkv);
        terms.push({ name: `${p}.${n}`, fwd, dx, dw: false });
        if (n === 'query' || n === 'value') {
          terms.push({ name: `${p}.${n}.lora_A`, fwd: lin(M, H, r), dx, dw: true });
          terms.push({ name: `${p}.${n}.lora_B`, fwd: lin(M, r, H), dx: true, dw: true });
        }
      }
    }
    // scores Q·Kᵀ and context P·V: 2·B·T·T·H each; backward 2× when a gradient flows (dQ, dK, dP, dV)
    const att = 4 * B * T * T * H;
    const back = s !== 'linear-probe';
    terms.push({ name: `${p}.attention`, fwd: att, dx: back, dw: back });
  }
  terms.push({ name: 'pooler', fwd: lin(B, H, H), dx: s !== 'linear-probe', dw: s === 'full' });
  terms.push({ name: 'classifier', fwd: lin(B, H, spec.numClasses), dx: s !== 'linear-probe', dw: true });
  return sumFlops(terms);
}

/** FLOP count of one step of `spec` (see the file comment for what is counted). */
export function stepFlops(spec: FinetuneBenchSpec): StepFlops {
  return spec.model.startsWith('bert-') ? bertStepFlops(spec) : resnetStepFlops(spec);
}
