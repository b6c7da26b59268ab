// The fine-tune benchmark's ResNet-18/50 training step in TensorFlow.js (webgpu backend, NHWC): torchvision's architecture; full, LoRA on layer4's convs, or linear probe; AdamW.
import type * as TF from '@tensorflow/tfjs-core';
import type { TfjsPeer } from '../tfjs.js';
import type { FinetuneBenchSpec } from '../finetune-spec.js';
import { GraftError } from '../../runtime/errors.js';
import { HostRandom, VarBag, tfjsTrainStep, type PeerStepOptions, type PeerTrainStep } from './step.js';

type T4 = TF.Tensor4D;

/** torchvision's block type and blocks per stage. */
export const TFJS_RESNETS = {
  resnet18: { bottleneck: false, layers: [2, 2, 2, 2] },
  resnet50: { bottleneck: true, layers: [3, 4, 6, 3] },
} as const;

interface LoraConv {
  a: T4; // variable [k, k, in, r], same stride / padding as the base conv
  b: T4; // variable [1, 1, r, out]
  scale: number;
}

/** conv (no bias) + BatchNorm, optionally with a LoRA adapter on the conv. */
interface ConvBn {
  w: T4; // variable, HWIO [k, k, in, out]
  stride: number;
  pad: number;
  gamma: TF.Variable; // [out]
  beta: TF.Variable; // [out]
  lora: LoraConv | null;
}

interface Block {
  convs: ConvBn[]; // 2 (basic) or 3 (bottleneck)
  down: ConvBn | null;
}

const EPS = 1e-5;

/**
 * Build ResNet-18/50 with a numClasses fc, AdamW and a fixed batch (x [B, res, res, 3] ~ N(0, 1),
 * labels in [0, numClasses)). Full and LoRA run BN with batch statistics; the linear probe runs the
 * backbone in eval mode (running stats 0 / 1) outside the gradient tape.
 */
export function tfjsResnetStep(p: TfjsPeer, spec: FinetuneBenchSpec, o: PeerStepOptions = {}): PeerTrainStep {
  const { tf } = p;
  if (spec.model !== 'resnet18' && spec.model !== 'resnet50') throw new GraftError(`'${spec.model}' is not a ResNet of the fine-tune benchmark`);
  if (spec.res < 32) throw new GraftError(`res ${spec.res} is too small for ResNet (needs ≥ 32)`);
  const arch = TFJS_RESNETS[spec.model];
  const rnd = new HostRandom(spec.seed);
  const bag = new VarBag(tf);
  const full = spec.strategy === 'full';
  const train = spec.strategy !== 'linear-probe';

  const convBn = (cin: number, cout: number, k: number, stride: number, lora: boolean): ConvBn => {
    // torchvision: kaiming_normal_(fan_out, relu)
    const w = bag.add(rnd.normal(k * k * cin * cout, Math.sqrt(2 / (k * k * cout))), [k, k, cin, cout], full) as T4;
    const gamma = bag.add(new Float32Array(cout).fill(1), [cout], full);
    const beta = bag.add(new Float32Array(cout), [cout], full);
    let l: LoraConv | null = null;
    if (lora) {
      const r = spec.loraRank;
      // PEFT: lora_A kaiming_uniform(a=√5) → U(±1/√fan_in); lora_B zeros
      l = {
        a: bag.add(rnd.uniform(k * k * cin * r, 1 / Math.sqrt(k * k * cin)), [k, k, cin, r], true) as T4,
        b: bag.add(new Float32Array(r * cout), [1, 1, r, cout], true) as T4,
        scale: spec.loraAlpha / r,
      };
    }
    return { w, stride, pad: (k - 1) / 2, gamma, beta, lora: l };
  };

  const stem = convBn(3, 64, 7, 2, false);
  const blocks: Block[] = [];
  const exp = arch.bottleneck ? 4 : 1;
  let cin = 64;
  arch.layers.forEach((n, stage) => {
    const planes = 64 << stage;
    const lora = spec.strategy === 'lora' && stage === 3;
    for (let i = 0; i < n; i++) {
      const stride = i === 0 && stage > 0 ? 2 : 1;
      const convs = arch.bottleneck
        ? [convBn(cin, planes, 1, 1, lora), convBn(planes, planes, 3, stride, lora), convBn(planes, planes * 4, 1, 1, lora)]
        : [convBn(cin, planes, 3, stride, lora), convBn(planes, planes, 3, 1, lora)];
      const down = stride !== 1 || cin !== planes * exp ? convBn(cin, planes * exp, 1, stride, lora) : null;
      blocks.push({ convs, down });
      cin = planes * exp;
    }
  });
  const bound = 1 / Math.sqrt(cin);
  const fcW = bag.add(rnd.uniform(cin * spec.numClasses, bound), [cin, spec.numClasses], true);
  const fcB = bag.add(rnd.uniform(spec.numClasses, bound), [spec.numClasses], true);

  const B = spec.batch;
  const x = tf.tensor4d(rnd.normal(B * spec.res * spec.res * 3, 1), [B, spec.res, spec.res, 3]);
  const labelIds = rnd.ints(B, 0, spec.numClasses);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(labelIds, 'int32'), spec.numClasses)); // [B, C]

  const conv = (h: T4, c: ConvBn): T4 => {
    let y = tf.conv2d(h, c.w, c.stride, c.pad);
    if (c.lora) {
      const a = tf.conv2d(h, c.lora.a, c.stride, c.pad);
      y = tf.add(y, tf.mul(tf.conv2d(a, c.lora.b, 1, 0), c.lora.scale));
    }
    let z: T4;
    if (train) {
      const { mean, variance } = tf.moments(y, [0, 1, 2]);
      z = tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, EPS)));
    } else {
      z = tf.mul(y, 1 / Math.sqrt(1 + EPS)); // eval mode: running mean 0, var 1
    }
    return tf.add(tf.mul(z, c.gamma), c.beta);
  };
  const features = (): TF.Tensor2D => {
    let h: T4 = tf.maxPool(tf.relu(conv(x, stem)), 3, 2, 1);
    for (const b of blocks) {
      let y = h;
      b.convs.forEach((c, i) => {
        y = conv(y, c);
        if (i < b.convs.length - 1) y = tf.relu(y);
      });
      h = tf.relu(tf.add(y, b.down ? conv(h, b.down) : h) as T4);
    }
    return tf.mean(h, [1, 2]);
  };
  const lossOf = (f: TF.Tensor2D): TF.Scalar => tf.losses.softmaxCrossEntropy(labels, tf.add(tf.matMul(f, fcW), fcB));

  return tfjsTrainStep(tf, bag, { strategy: spec.strategy, lr: o.lr, features, lossOf, inputs: [x, labels] });
}
