// Houlsby bottleneck adapters in BERT: identity at init, HF-style names, gradients on adapters only, training lowers the loss.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import * as F from '../src/autograd/functional.js';
import { backward } from '../src/autograd/engine.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { AdamW } from '../src/optim/index.js';
import { bertConfig } from '../src/models/bert-config.js';
import { BertForSequenceClassification } from '../src/models/bert.js';
import { addAdapters, removeAdapters, trainAdaptersOnly } from '../src/peft/adapters.js';
import { useRuntime } from './helpers/gpu.js';
import { maxAbsDiff } from './helpers/close.js';

const rt = useRuntime();
const cfg = bertConfig({ vocabSize: 60, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 32, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0, initializerRange: 0.2 });

/** Toy task: label 1 iff token 7 occurs. ids [B, T], one padded tail per odd row. */
function toy(B: number, T: number, seed: number) {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0) / 4294967296;
  const ids = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  const y = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const len = b % 2 ? T - 3 : T;
    y[b] = b % 2;
    for (let t = 0; t < len; t++) {
      ids[b * T + t] = t === 0 ? 2 : 8 + Math.floor(next() * 50);
      mask[b * T + t] = 1;
    }
    if (y[b]) ids[b * T + 1 + Math.floor(next() * (len - 1))] = 7;
  }
  return { ids, mask, y };
}

describe('bottleneck adapters', () => {
  it('a fresh adapter is the identity: logits and hidden states equal the base model (fused eval and autograd paths)', async () => {
    const r = rt();
    const model = new BertForSequenceClassification(r, cfg, { rng: new Rng(1) });
    model.eval();
    const { ids, mask } = toy(3, 11, 5);
    const inputIds = Tensor.from(r, ids, [3, 11], 'i32');
    const attentionMask = Tensor.from(r, mask, [3, 11]);
    const before = noGrad(() => model.forward({ inputIds, attentionMask }));
    const adapters = addAdapters(model.bert, { size: 8, rng: 3 });
    expect(adapters.length).toBe(2 * cfg.numHiddenLayers);
    const after = noGrad(() => model.forward({ inputIds, attentionMask }));
    expect(maxAbsDiff(await after.read(), await before.read())).toBeLessThanOrEqual(1e-6);
    // Autograd path (graph recorded) also equals the base.
    const graph = scope(r, () => model.forward({ inputIds, attentionMask }));
    expect(maxAbsDiff(await graph.read(), await before.read())).toBeLessThanOrEqual(1e-5);
    // A non-zero up projection changes the output (the hook is live).
    adapters[1]!.up.weight.write(Float32Array.from({ length: adapters[1]!.up.weight.size }, (_, i) => 0.3 * Math.cos(i)));
    const changed = noGrad(() => model.forward({ inputIds, attentionMask }));
    expect(maxAbsDiff(await changed.read(), await before.read())).toBeGreaterThan(1e-4);
    const keys = [...model.stateDict().keys()];
    for (const k of ['bert.encoder.layer.0.attention.output.adapter.down.weight', 'bert.encoder.layer.0.attention.output.adapter.up.bias', 'bert.encoder.layer.1.output.adapter.down.bias', 'bert.encoder.layer.1.output.adapter.up.weight']) {
      expect(keys).toContain(k);
    }
    expect(model.stateDict().get('bert.encoder.layer.0.output.adapter.down.weight')!.shape).toEqual([8, 32]);
    expect(model.stateDict().get('bert.encoder.layer.0.output.adapter.up.weight')!.shape).toEqual([32, 8]);
    removeAdapters(model.bert);
    expect([...model.stateDict().keys()].some((k) => k.includes('adapter'))).toBe(false);
    const removed = noGrad(() => model.forward({ inputIds, attentionMask }));
    expect(maxAbsDiff(await removed.read(), await before.read())).toBe(0);
    for (const t of [before, after, graph, changed, removed, inputIds, attentionMask]) t.dispose();
    model.dispose();
  });

  it('with the backbone frozen only adapters (+ classifier) get gradients; a short run lowers the loss', async () => {
    const r = rt();
    const model = new BertForSequenceClassification(r, cfg, { rng: new Rng(2) });
    const adapters = addAdapters(model.bert, { size: 16, rng: 4 });
    const trainable = trainAdaptersOnly(model, { layerNorms: false, also: ['classifier'] });
    expect(trainable.every((n) => n.includes('.adapter.') || n.startsWith('classifier.'))).toBe(true);
    expect(trainable.length).toBe(2 * cfg.numHiddenLayers * 4 + 2);
    const B = 16;
    const T = 12;
    const { ids, mask, y } = toy(B, T, 9);
    const inputIds = Tensor.from(r, ids, [B, T], 'i32');
    const attentionMask = Tensor.from(r, mask, [B, T]);
    const labels = Tensor.from(r, y, [B], 'i32');
    model.train();
    const loss0 = scope(r, () => F.crossEntropy(model.forward({ inputIds, attentionMask }), labels));
    backward(loss0);
    for (const [name, t] of model.namedParameters()) {
      if (trainable.includes(name)) expect(t.grad, name).not.toBeNull();
      else expect(t.grad, name).toBeNull();
    }
    const gUp = await adapters[1]!.up.weight.grad!.read();
    expect(Math.max(...Array.from(gUp, Math.abs))).toBeGreaterThan(0);
    loss0.dispose();
    model.zeroGrad();

    const frozen = new Map(await Promise.all(model.namedParameters().filter(([n]) => !trainable.includes(n)).map(async ([n, t]) => [n, await t.read()] as const)));
    const opt = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
    const losses: number[] = [];
    for (let s = 0; s < 30; s++) {
      opt.zeroGrad();
      const loss = scope(r, () => F.crossEntropy(model.forward({ inputIds, attentionMask }), labels));
      backward(loss);
      opt.step();
      losses.push((await loss.read())[0]!);
      loss.dispose();
    }
    expect(losses[losses.length - 1]!).toBeLessThan(0.5 * losses[0]!);
    for (const [n, t] of model.namedParameters()) {
      if (frozen.has(n)) expect(maxAbsDiff(await t.read(), frozen.get(n)!), `${n} frozen`).toBe(0);
    }
    opt.dispose();
    for (const t of [inputIds, attentionMask, labels]) t.dispose();
    model.dispose();
  });
});
