// BertForMaskedLM: loss on masked positions only (vs a float64 reference over full logits), tied decoder weight, MLM pretraining on SpamAssassin, HF round trip.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import { backward } from '../src/autograd/engine.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { Rng as DataRng } from '../src/data/rng.js';
import { AdamW } from '../src/optim/index.js';
import { loadSpamAssassin } from '../src/data/spam-assassin.js';
import { WordPieceTokenizer } from '../src/text/wordpiece.js';
import { CheckpointReader } from '../src/io/sharded.js';
import { bertConfig } from '../src/models/bert-config.js';
import { loadBert, loadBertForSequenceClassification } from '../src/models/bert-load.js';
import { BertForMaskedLM, loadBertForMaskedLM } from '../src/models/bert-mlm.js';
import { pretrainMlm } from '../src/train-text/mlm.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';

const rt = useRuntime();
const ASSETS = join(import.meta.dirname, '..', '..', 'shared', 'assets', 'bert');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'graft-mlm-'));
  dirs.push(d);
  return d;
};

const small = (vocabSize: number) =>
  bertConfig({ vocabSize, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 64, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });

/** Random ids in [5, V) with a padded tail per row, and labels: -100 except at ~30% of the real tokens. */
function toyBatch(B: number, T: number, V: number, seed: number) {
  const r = new DataRng(seed);
  const ids = new Int32Array(B * T);
  const mask = new Float32Array(B * T);
  const labels = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    const len = T - (b % 3);
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (t >= len) continue;
      ids[i] = 5 + Math.floor(r.float() * (V - 5));
      mask[i] = 1;
      if (r.float() < 0.3) labels[i] = 5 + Math.floor(r.float() * (V - 5));
    }
  }
  return { ids, mask, labels };
}

describe('BertForMaskedLM', () => {
  it('loss covers masked positions only: equals a float64 cross-entropy over the full logits at labels ≠ -100', async () => {
    const r = rt();
    const [B, T, V] = [3, 17, 53];
    const model = new BertForMaskedLM(r, small(V), { rng: new Rng(3) });
    // Non-zero head bias so it matters.
    model.cls.predictions.bias.write(Float32Array.from({ length: V }, (_, i) => 0.05 * Math.sin(i)));
    model.eval();
    const { ids, mask, labels } = toyBatch(B, T, V, 7);
    const inputIds = Tensor.from(r, ids, [B, T], 'i32');
    const attentionMask = Tensor.from(r, mask, [B, T]);
    const logits = noGrad(() => model.forward({ inputIds, attentionMask }));
    expect(logits.shape).toEqual([B, T, V]);
    const lv = await logits.read();
    let sum = 0;
    let n = 0;
    for (let i = 0; i < B * T; i++) {
      if (labels[i] === -100) continue;
      const row = Array.from(lv.slice(i * V, (i + 1) * V), Number);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
      sum += lse - row[labels[i]!]!;
      n++;
    }
    expect(n).toBeGreaterThan(5);
    const loss = model.loss({ inputIds, attentionMask }, labels)!;
    expectClose(await loss.read(), [sum / n], { atol: 1e-5, rtol: 1e-5 });
    // Changing the ids of unmasked label positions (still -100) changes nothing; unmasking one changes the loss.
    const labels2 = Int32Array.from(labels);
    const j = labels2.findIndex((x, i) => x === -100 && mask[i] === 1);
    labels2[j] = 9;
    const loss2 = model.loss({ inputIds, attentionMask }, labels2)!;
    expect(Math.abs((await loss2.read())[0]! - sum / n)).toBeGreaterThan(1e-6);
    expect(model.loss({ inputIds, attentionMask }, new Int32Array(B * T).fill(-100))).toBeNull();
    for (const t of [logits, loss, loss2, inputIds, attentionMask]) t.dispose();
    model.dispose();
  });

  it('the decoder weight is the word-embedding tensor: one parameter, gradients from both uses accumulate, stays tied after steps', async () => {
    const r = rt();
    const [B, T, V] = [2, 9, 40];
    const model = new BertForMaskedLM(r, small(V), { rng: new Rng(4) });
    const emb = model.bert.embeddings.word_embeddings.weight;
    expect(model.cls.predictions.decoderWeight).toBe(emb);
    const params = model.namedParameters();
    expect(params.filter(([, t]) => t === emb).length).toBe(1);
    expect([...model.stateDict().keys()].some((k) => k.includes('decoder'))).toBe(false);
    expect(params.map(([k]) => k)).toContain('cls.predictions.bias');
    expect(params.map(([k]) => k)).toContain('cls.predictions.transform.LayerNorm.weight');

    // Inputs use ids 5..19 only; rows 20..39 are reached only through the decoder.
    const ids = Int32Array.from({ length: B * T }, (_, i) => 5 + (i % 15));
    const labels = new Int32Array(B * T).fill(-100);
    labels[3] = 30;
    labels[11] = 7;
    const inputIds = Tensor.from(r, ids, [B, T], 'i32');
    model.train();
    const loss = scope(r, () => model.loss({ inputIds }, labels)!);
    backward(loss);
    const g = await emb.grad!.read();
    const H = model.config.hiddenSize;
    const rowNorm = (v: number) => Math.hypot(...Array.from(g.slice(v * H, (v + 1) * H)));
    expect(rowNorm(33), 'decoder-only row').toBeGreaterThan(0);
    expect(rowNorm(0), 'padding row gets no embedding gradient, but its decoder gradient').toBeGreaterThan(0);

    // Embedding-only gradient of input rows: compare with the grad of the same loss through an untied copy.
    const decoderOnly = new BertForMaskedLM(r, small(V), { rng: new Rng(4) });
    decoderOnly.loadStateDict(model.stateDict());
    const copy = Tensor.from(r, await emb.read(), emb.shape);
    copy.requiresGrad = true;
    Object.defineProperty(decoderOnly.cls.predictions, 'decoderWeight', { get: () => copy });
    decoderOnly.train();
    const loss2 = scope(r, () => decoderOnly.loss({ inputIds }, labels)!);
    backward(loss2);
    const gEmb = await decoderOnly.bert.embeddings.word_embeddings.weight.grad!.read();
    const gDec = await copy.grad!.read();
    const sum = gEmb.map((x, i) => x + gDec[i]!);
    expect(maxAbsDiff(gEmb, g)).toBeGreaterThan(1e-7);
    expectClose(g, sum, { atol: 1e-6, rtol: 1e-4 }, 'tied grad = embedding grad + decoder grad');

    const opt = new AdamW(model.parameters(), { lr: 1e-2 });
    opt.step();
    expect(model.cls.predictions.decoderWeight).toBe(model.bert.embeddings.word_embeddings.weight);
    opt.dispose();
    for (const t of [loss, loss2, inputIds, copy]) t.dispose();
    model.dispose();
    decoderOnly.dispose();
  });

  it('pretrainMlm on SpamAssassin text: the masked-LM loss falls; the HF folder loads back into loadBert / loadBertForSequenceClassification / loadBertForMaskedLM', async () => {
    const r = rt();
    // bert-base-uncased's vocabulary cut to its first 6000 entries (specials, characters, ##pieces, common words):
    // the 30522-way output layer costs seconds per step on a CPU adapter.
    const full = await WordPieceTokenizer.fromVocabFile(join(ASSETS, 'vocab.txt'));
    const tok = new WordPieceTokenizer(full.idToToken.slice(0, 6000));
    const ds = await loadSpamAssassin({ limit: 200, maxChars: 1500 });
    const texts = Array.from({ length: ds.length }, (_, i) => ds.get(i).text);
    const cfg = bertConfig({ vocabSize: tok.size, hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 128, maxPositionEmbeddings: 128 });
    const model = new BertForMaskedLM(r, cfg, { rng: new Rng(11) });
    const out = join(tmp(), 'mlm');
    const t0 = performance.now();
    const res = await pretrainMlm({ model, tokenizer: tok, texts, steps: 30, batch: 8, seq: 64, lr: 3e-3, seed: 5, out });
    console.log(`pretrainMlm: 30 steps in ${((performance.now() - t0) / 1000).toFixed(1)} s, loss ${res.firstLoss.toFixed(3)} -> ${res.lastLoss.toFixed(3)}`);
    expect(res.losses.length).toBe(30);
    expect(res.losses.every((x) => Number.isFinite(x))).toBe(true);
    expect(res.firstLoss).toBeGreaterThan(8); // ≈ ln(6000) = 8.7 at initialisation
    expect(res.lastLoss).toBeLessThan(res.firstLoss - 1.2);

    // The checkpoint: bert.* keys (no pooler), cls.predictions.*, decoder weight = word embeddings.
    const reader = await CheckpointReader.open(join(out, 'model.safetensors'));
    expect(reader.names).toContain('bert.embeddings.word_embeddings.weight');
    expect(reader.names).toContain('cls.predictions.transform.dense.weight');
    expect(reader.names).toContain('cls.predictions.bias');
    const dec = (await reader.read('cls.predictions.decoder.weight')).data;
    const we = (await reader.read('bert.embeddings.word_embeddings.weight')).data;
    expect(maxAbsDiff(dec, we)).toBe(0);
    await reader.close();

    const ids = tok.encode(texts[0]!, { maxLength: 32 }).inputIds;
    const inputIds = Tensor.from(r, ids, [1, ids.length], 'i32');
    const ref = noGrad(() => model.bert.forward({ inputIds }).lastHiddenState);
    const base = await loadBert(r, out);
    expect(base.tokenizer?.size).toBe(tok.size);
    expect(base.ignoredKeys.some((k) => k.startsWith('cls.'))).toBe(true);
    const got = noGrad(() => base.model.forward({ inputIds }).lastHiddenState);
    expectClose(await got.read(), await ref.read(), { atol: 1e-5, rtol: 1e-4 }, 'loadBert hidden states');
    const clsModel = await loadBertForSequenceClassification(r, out, { numLabels: 2 });
    expect(clsModel.missingKeys.sort()).toEqual(['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight']);
    const mlm = await loadBertForMaskedLM(r, out);
    expect(mlm.missingKeys).toEqual([]);
    const l1 = noGrad(() => model.forward({ inputIds }));
    const l2 = noGrad(() => mlm.model.forward({ inputIds }));
    expectClose(await l2.read(), await l1.read(), { atol: 1e-5, rtol: 1e-4 }, 'loadBertForMaskedLM logits');
    for (const t of [inputIds, ref, got, l1, l2]) t.dispose();
    for (const m of [model, base.model, clsModel.model, mlm.model]) m.dispose();
  }, 120_000);
});
