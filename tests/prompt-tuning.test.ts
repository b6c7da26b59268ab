// Prompt tuning: soft prompts prepended after BERT's embeddings, mask extended, gradients only on prompt + classifier, loss falls on a toy task.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import * as F from '../src/autograd/functional.js';
import { backward } from '../src/autograd/engine.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { AdamW } from '../src/optim/index.js';
import { bertConfig } from '../src/models/bert-config.js';
import { BertForSequenceClassification } from '../src/models/bert.js';
import { createSoftPrompt, freezeForPromptTuning, promptForward } from '../src/peft/prompt.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';

const rt = useRuntime();
const cfg = bertConfig({ vocabSize: 60, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 32, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0, initializerRange: 0.2 });

describe('prompt tuning', () => {
  it('prompt forward: [CLS] read after the prompts; padding stays masked; the prompt changes the logits', async () => {
    const r = rt();
    const model = new BertForSequenceClassification(r, cfg, { rng: new Rng(1) });
    model.eval();
    const prompt = await createSoftPrompt(model, { length: 4, rng: 2 });
    expect(prompt.weight.shape).toEqual([4, 32]);
    // Row 0 unpadded (T = 6); row 1 = row 0 plus 3 padding tokens: same logits.
    const ids = [2, 11, 12, 13, 14, 3];
    const a = Tensor.from(r, ids, [1, 6], 'i32');
    const b = Tensor.from(r, [...ids, 0, 0, 0], [1, 9], 'i32');
    const bm = Tensor.from(r, [1, 1, 1, 1, 1, 1, 0, 0, 0], [1, 9]);
    const la = noGrad(() => promptForward(model, prompt, { inputIds: a }));
    const lb = noGrad(() => promptForward(model, prompt, { inputIds: b, attentionMask: bm }));
    expect(la.shape).toEqual([1, 2]);
    expectClose(await lb.read(), await la.read(), { atol: 1e-5, rtol: 1e-4 }, 'padding masked');
    // The prompt matters: another prompt gives other logits; and the prompted model differs from the plain one.
    const plain = noGrad(() => model.forward({ inputIds: a }));
    expect(maxAbsDiff(await plain.read(), await la.read())).toBeGreaterThan(1e-4);
    prompt.weight.write(new Float32Array(4 * 32).fill(0.5));
    const lc = noGrad(() => promptForward(model, prompt, { inputIds: a }));
    expect(maxAbsDiff(await lc.read(), await la.read())).toBeGreaterThan(1e-4);
    for (const t of [a, b, bm, la, lb, plain, lc]) t.dispose();
    prompt.dispose();
    model.dispose();
  });

  it('with the backbone frozen only the prompt and classifier get gradients; the loss falls on a toy task', async () => {
    const r = rt();
    const model = new BertForSequenceClassification(r, cfg, { rng: new Rng(3) });
    const trainable = freezeForPromptTuning(model, ['classifier']);
    expect(trainable.sort()).toEqual(['classifier.bias', 'classifier.weight']);
    const prompt = await createSoftPrompt(model, { length: 6, rng: 4 });
    // Toy task: label = parity of the row (first real token 20 vs 40 distinguishes the classes).
    const B = 16;
    const T = 8;
    const ids = new Int32Array(B * T);
    const y = new Int32Array(B);
    for (let i = 0; i < B; i++) {
      y[i] = i % 2;
      for (let t = 0; t < T; t++) ids[i * T + t] = t === 0 ? 2 : t === 1 ? (y[i] ? 40 : 20) : 8 + ((i * 7 + t * 3) % 50);
    }
    const inputIds = Tensor.from(r, ids, [B, T], 'i32');
    const labels = Tensor.from(r, y, [B], 'i32');
    model.train();
    const loss0 = scope(r, () => F.crossEntropy(promptForward(model, prompt, { inputIds }), labels));
    backward(loss0);
    loss0.dispose();
    expect(prompt.weight.grad).not.toBeNull();
    expect(Math.max(...Array.from(await prompt.weight.grad!.read(), Math.abs))).toBeGreaterThan(0);
    for (const [name, t] of model.namedParameters()) {
      if (trainable.includes(name)) expect(t.grad, name).not.toBeNull();
      else expect(t.grad, name).toBeNull();
    }
    prompt.zeroGrad();
    model.zeroGrad();

    // Train the prompt alone (classifier frozen too): the loss must fall through the prompt.
    model.freeze('classifier');
    const before = await model.classifier.weight.read();
    const opt = new AdamW(prompt.parameters(), { lr: 5e-2, weightDecay: 0 });
    const losses: number[] = [];
    for (let s = 0; s < 25; s++) {
      opt.zeroGrad();
      const loss = scope(r, () => F.crossEntropy(promptForward(model, prompt, { inputIds }), labels));
      backward(loss);
      opt.step();
      losses.push((await loss.read())[0]!);
      loss.dispose();
    }
    expect(losses[losses.length - 1]!).toBeLessThan(0.7 * losses[0]!);
    expect(maxAbsDiff(await model.classifier.weight.read(), before)).toBe(0);
    opt.dispose();
    for (const t of [inputIds, labels]) t.dispose();
    prompt.dispose();
    model.dispose();
  });
});
