// GPU backward through the autograd engine vs the float64 reference: the layer ops (linear, conv, pool, norms, losses, attention).
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import * as F from '../src/autograd/functional.js';
import { dropoutMaskHost } from '../src/kernels/dropout.js';
import { backward } from '../src/autograd/engine.js';
import * as ref from './ref/autograd-ref.js';
import { useRuntime } from './helpers/gpu.js';
import { randArray } from './helpers/rand.js';
import { gpuVsRef, inp } from './autograd-harness.js';

const rt = useRuntime();
const frozen = (shape: number[], lo = -1, hi = 1) => inp(shape, lo, hi, false);

describe('autograd: linear algebra and convolution', () => {
  it('matmul: batched, broadcast b, awkward sizes', async () => {
    const cases: [number[], number[]][] = [
      [[3, 17, 33], [3, 33, 1]],
      [[17, 33], [33, 3]],
      [[2, 3, 17, 33], [33, 17]],
      [[1, 1], [1, 1]],
    ];
    for (const [a, b] of cases) {
      await gpuVsRef(rt(), `matmul ${a}@${b}`, [inp(a), inp(b)], ([x, y]) => F.matmul(x!, y!), ([x, y]) => ref.matmul(x!, y!));
    }
    await gpuVsRef(rt(), 'matmul b frozen', [inp([3, 17, 5]), frozen([5, 33])], ([x, y]) => F.matmul(x!, y!), ([x, y]) => ref.matmul(x!, y!));
  });

  it('linear: with / without bias, fused relu, frozen weight, 3-D input', async () => {
    await gpuVsRef(rt(), 'linear', [inp([3, 17, 33]), inp([1, 33]), inp([1])], ([x, w, b]) => F.linear(x!, w!, b!), ([x, w, b]) => ref.linear(x!, w!, b!));
    await gpuVsRef(rt(), 'linear relu', [inp([17, 33]), inp([3, 33]), inp([3])], ([x, w, b]) => F.linear(x!, w!, b!, 'relu'), ([x, w, b]) => ref.linear(x!, w!, b!, 'relu'));
    await gpuVsRef(rt(), 'linear no bias', [inp([1, 3]), inp([17, 3])], ([x, w]) => F.linear(x!, w!), ([x, w]) => ref.linear(x!, w!, null));
    await gpuVsRef(rt(), 'linear frozen w', [inp([5, 17]), frozen([33, 17]), inp([33])], ([x, w, b]) => F.linear(x!, w!, b!), ([x, w, b]) => ref.linear(x!, w!, b!));
  });

  it('conv2d: stride, padding, dilation, groups, bias, fused relu, frozen input', async () => {
    await gpuVsRef(
      rt(), 'conv2d s2 p1',
      [inp([3, 3, 17, 17]), inp([33, 3, 3, 3]), inp([33])],
      ([x, w, b]) => F.conv2d(x!, w!, b!, { stride: 2, padding: 1 }),
      ([x, w, b]) => ref.conv2d(x!, w!, b!, { stride: [2, 2], padding: [1, 1] }),
      { atol: 2e-4, rtol: 1e-3 },
    );
    await gpuVsRef(
      rt(), 'conv2d dilation + relu',
      [inp([1, 4, 9, 7]), inp([3, 4, 3, 2]), inp([3])],
      ([x, w, b]) => F.conv2d(x!, w!, b!, { padding: [2, 1], dilation: [2, 1], activation: 'relu' }),
      ([x, w, b]) => ref.unary(ref.conv2d(x!, w!, b!, { padding: [2, 1], dilation: [2, 1] }), 'relu'),
    );
    await gpuVsRef(
      rt(), 'conv2d depthwise, no bias, frozen x',
      [frozen([2, 6, 5, 5]), inp([6, 1, 3, 3])],
      ([x, w]) => F.conv2d(x!, w!, null, { groups: 6, padding: 1 }),
      ([x, w]) => ref.conv2d(x!, w!, null, { groups: 6, padding: [1, 1] }),
    );
  });

  it('pooling: max, avg (ceil mode, count_include_pad), global, adaptive', async () => {
    await gpuVsRef(rt(), 'maxPool2d', [inp([2, 3, 17, 17])], ([x]) => F.maxPool2d(x!, { kernel: 3, stride: 2, padding: 1 }), ([x]) => ref.pool2d(x!, 'max', { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }));
    await gpuVsRef(
      rt(), 'avgPool2d',
      [inp([1, 3, 9, 10])],
      ([x]) => F.avgPool2d(x!, { kernel: [2, 3], stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
      ([x]) => ref.pool2d(x!, 'avg', { kernel: [2, 3], stride: [2, 2], padding: [1, 1], ceilMode: true, countIncludePad: false }),
    );
    await gpuVsRef(rt(), 'globalAvgPool2d', [inp([3, 17, 5, 7])], ([x]) => F.globalAvgPool2d(x!), ([x]) => ref.globalAvgPool2d(x!));
  });
});

describe('autograd: normalisation, softmax, losses', () => {
  it('layerNorm: affine, none, multi-dim normalized shape', async () => {
    await gpuVsRef(rt(), 'layerNorm', [inp([3, 17, 33]), inp([33]), inp([33])], ([x, w, b]) => F.layerNorm(x!, 33, w!, b!), ([x, w, b]) => ref.layerNorm(x!, w!, b!));
    await gpuVsRef(rt(), 'layerNorm no affine', [inp([17, 3])], ([x]) => F.layerNorm(x!, [3]), ([x]) => ref.layerNorm(x!, null, null));
    await gpuVsRef(
      rt(), 'layerNorm [3, 5]',
      [inp([2, 3, 5]), inp([3, 5]), frozen([3, 5])],
      ([x, w, b]) => F.layerNorm(x!, [3, 5], w!, b!),
      ([x, w, b]) => ref.reshape(ref.layerNorm(ref.reshape(x!, [2, 15]), ref.reshape(w!, [15]), ref.reshape(b!, [15])), [2, 3, 5]),
    );
  });

  it('batchNorm2d: training (batch stats) and eval (running stats, fused relu, frozen affine)', async () => {
    await gpuVsRef(
      rt(), 'batchNorm2d train',
      [inp([3, 17, 5, 5]), inp([17]), inp([17])],
      ([x, w, b]) => F.batchNorm2d(x!, null, null, w!, b!, { training: true }),
      ([x, w, b]) => ref.batchNormTrain(x!, w!, b!).y,
    );
    await gpuVsRef(
      rt(), 'batchNorm2d train + relu, no affine',
      [inp([2, 3, 4, 1])],
      ([x]) => F.batchNorm2d(x!, null, null, null, null, { training: true, activation: 'relu' }),
      ([x]) => ref.unary(ref.batchNormTrain(x!, null, null).y, 'relu'),
    );
    const mean = randArray(17, 5);
    const variance = randArray(17, 6, 0.5, 2);
    for (const [name, wGrad, act] of [['eval', true, 'none'], ['eval relu frozen w', false, 'relu']] as const) {
      await gpuVsRef(
        rt(), `batchNorm2d ${name}`,
        [inp([3, 17, 3, 5]), inp([17], -1, 1, wGrad), inp([17])],
        ([x, w, b]) => {
          const m = Tensor.from(rt(), mean, [17]);
          const v = Tensor.from(rt(), variance, [17]);
          return F.batchNorm2d(x!, m, v, w!, b!, { activation: act });
        },
        ([x, w, b]) => ref.batchNormEval(x!, mean, variance, w!, b!, 1e-5, act === 'relu'),
      );
    }
  });

  it('softmax and logSoftmax along several axes', async () => {
    for (const axis of [-1, 0, 1]) {
      await gpuVsRef(rt(), `softmax ${axis}`, [inp([3, 17, 33], -3, 3)], ([x]) => F.softmax(x!, axis), ([x]) => ref.softmax(x!, (axis + 3) % 3));
      await gpuVsRef(rt(), `logSoftmax ${axis}`, [inp([3, 17, 33], -3, 3)], ([x]) => F.logSoftmax(x!, axis), ([x]) => ref.softmax(x!, (axis + 3) % 3, true));
    }
  });

  it('crossEntropy: mean / sum / none, label smoothing, ignore index', async () => {
    const B = 33;
    const C = 17;
    const t = Array.from(randArray(B, 77, 0, C), Math.floor);
    t[3] = -100;
    t[20] = -100;
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      for (const labelSmoothing of [0, 0.1]) {
        await gpuVsRef(
          rt(), `crossEntropy ${reduction} ls=${labelSmoothing}`,
          [inp([B, C], -3, 3)],
          ([x]) => {
            const tt = Tensor.from(rt(), t, [B], 'i32');
            return F.crossEntropy(x!, tt, { reduction, labelSmoothing });
          },
          ([x]) => ref.crossEntropy(x!, t, { reduction, labelSmoothing }),
        );
      }
    }
  });
});

describe('autograd: attention, embedding, dropout', () => {
  // Head dim 8 only: every distinct Dh is another set of attention pipelines to compile (slow on a
  // CPU adapter with a cold shader cache, hence the longer timeout).
  it('scaledDotProductAttention: padding mask, causal, frozen q', { timeout: 400_000 }, async () => {
    const [B, H, T, D] = [2, 3, 17, 8];
    const mask = Array.from({ length: B * T }, (_, i) => (i % T < T - 1 - 4 * (i >= T ? 1 : 0) ? 1 : 0));
    await gpuVsRef(
      rt(), 'attention mask',
      [inp([B, H, T, D]), inp([B, H, T, D]), inp([B, H, T, D])],
      ([q, k, v]) => F.scaledDotProductAttention(q!, k!, v!, { mask: Tensor.from(rt(), mask, [B, T]) }),
      ([q, k, v]) => ref.attention(q!, k!, v!, { mask }),
    );
    await gpuVsRef(
      rt(), 'attention causal frozen q',
      [frozen([1, 2, 33, 8]), inp([1, 2, 33, 8]), inp([1, 2, 33, 8])],
      ([q, k, v]) => F.scaledDotProductAttention(q!, k!, v!, { causal: true, scale: 0.2 }),
      ([q, k, v]) => ref.attention(q!, k!, v!, { causal: true, scale: 0.2 }),
    );
  });

  it('embedding: any ids shape, repeated ids accumulate, padding row gets zero gradient', async () => {
    const ids = Array.from(randArray(3 * 17, 31, 0, 33), Math.floor);
    ids[0] = ids[5] = ids[9] = 4;
    await gpuVsRef(
      rt(), 'embedding',
      [inp([33, 17])],
      ([table]) => F.embedding(Tensor.from(rt(), ids, [3, 17], 'i32'), table!, 4),
      ([table]) => ref.embedding(ids, [3, 17], table!, 4),
    );
    // The reference skips the padding row too; make sure that row really is zero on the GPU.
    const table = Tensor.from(rt(), randArray(5 * 3, 1), [5, 3]);
    table.requiresGrad = true;
    const y = F.embedding(Tensor.from(rt(), [2, 2, 1], [3], 'i32'), table, 2);
    backward(F.sum(y));
    const g = await table.grad!.read();
    expect(Array.from(g)).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('dropout: gradient uses the forward mask (Philox seed, offset); identity in eval', async () => {
    const p = 0.3;
    const n = 17 * 33;
    const keep = dropoutMaskHost(n, p, 1234, 5);
    await gpuVsRef(rt(), 'dropout', [inp([17, 33])], ([x]) => F.dropout(x!, p, true, 1234, 5), ([x]) => ref.dropoutMasked(x!, keep, p));
    const x = Tensor.from(rt(), [1, 2], [2]);
    expect(F.dropout(x, 0.5, false)).toBe(x);
    x.dispose();
  });
});
