// Fine-tune benchmark peers: tfjs models really train and match graft's parameter counts; the torch peer runs or says why it cannot.
import { describe, expect, it } from 'vitest';
import { useRuntime } from './helpers/gpu.js';
import { finetuneSpec, type FinetuneBenchSpec } from '../src/bench/finetune-spec.js';
import { runPeers, tfjsFinetuneStep } from '../src/bench/peers/index.js';
import { loadTfjs } from '../src/bench/tfjs.js';
import { GraftError } from '../src/runtime/errors.js';
import { bertConfig, bertParameterShapes } from '../src/models/bert-config.js';
import { BERT_SIZES } from '../src/bench/peers/bert-sizes.js';

const rt = useRuntime();
const numel = (m: Map<string, number[]>): number => [...m.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);

/** Losses of `n` steps of the tfjs model on its fixed batch, with its parameter counts. */
async function tfjsLosses(spec: FinetuneBenchSpec, n: number): Promise<{ losses: number[]; trainable: number; total: number }> {
  const p = await loadTfjs();
  const s = tfjsFinetuneStep(p, spec);
  try {
    const losses: number[] = [];
    for (let i = 0; i < n; i++) losses.push(await s.step());
    return { losses, trainable: s.trainableParams, total: s.totalParams };
  } finally {
    s.dispose();
  }
}

function graftBertCounts(model: string, numClasses: number, strategy: string, r: number): { trainable: number; total: number } {
  const z = BERT_SIZES[model]!;
  const cfg = bertConfig({ hiddenSize: z.hidden, numHiddenLayers: z.layers, numAttentionHeads: z.heads, intermediateSize: z.intermediate });
  const head = z.hidden * numClasses + numClasses;
  const base = numel(bertParameterShapes(cfg)) + head;
  const lora = strategy === 'lora' ? z.layers * 2 * (2 * z.hidden * r) : 0;
  const trainable = strategy === 'full' ? base : head + lora;
  return { trainable, total: base + lora };
}

describe('tfjs BERT peer', () => {
  for (const strategy of ['full', 'lora', 'linear-probe'] as const) {
    it(`bert-tiny ${strategy}: loss starts near ln(C), decreases on a fixed batch; counts match graft's BERT`, async () => {
      rt();
      const spec = finetuneSpec({ model: 'bert-tiny', strategy, batch: 2, seq: 16, numClasses: 4, seed: 3 });
      const { losses, trainable, total } = await tfjsLosses(spec, 4);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(Math.abs(losses[0]! - Math.log(4))).toBeLessThan(0.5);
      expect(losses[3]!).toBeLessThan(losses[0]!);
      expect({ trainable, total }).toEqual(graftBertCounts('bert-tiny', 4, strategy, spec.loraRank));
    });
  }
});

describe('runPeers', () => {
  it('rejects an unknown peer name with a GraftError', async () => {
    const spec = finetuneSpec({ model: 'bert-tiny', strategy: 'full', batch: 2, seq: 16, steps: 1, warmup: 0 });
    await expect(runPeers(rt(), spec, ['tfjs', 'jax'])).rejects.toThrow(GraftError);
  });

  it('times tfjs on bert-tiny: finite samples/s, progress reported for warm-up + timed steps', async () => {
    const spec = finetuneSpec({ model: 'bert-tiny', strategy: 'lora', batch: 2, seq: 16, steps: 2, warmup: 1 });
    const seen: number[] = [];
    const [r] = await runPeers(rt(), spec, ['tfjs'], (peer, done, total) => {
      expect(peer).toBe('tfjs');
      expect(total).toBe(3);
      seen.push(done);
    });
    expect(r!.skipped).toBeUndefined();
    expect(r!.peer).toBe('tfjs');
    expect(r!.steps).toBe(2);
    expect(Number.isFinite(r!.samplesPerSec) && r!.samplesPerSec > 0).toBe(true);
    expect(r!.samplesPerSec).toBeCloseTo((2 * 1000) / r!.medianStepMs, 6);
    expect(seen).toEqual([1, 2, 3]);
  });
});
