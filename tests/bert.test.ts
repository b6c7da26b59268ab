// BERT structure (HF keys / shapes for bert-tiny, MiniLM, bert-base), config parsing, the HF-folder loader and its errors,
// pooling helpers, and training through autograd (finite grads, directional-derivative check, fused vs autograd paths).
import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { backward } from '../src/autograd/engine.js';
import * as F from '../src/autograd/functional.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { CheckpointError, ShapeError } from '../src/runtime/errors.js';
import { Tensor } from '../src/tensor.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { BERT_BASE, bertConfig, bertConfigJson, bertParameterShapes, parseBertConfig, readBertConfig, type BertConfig } from '../src/models/bert-config.js';
import { BertForSequenceClassification, BertModel, type BertInputs } from '../src/models/bert.js';
import { bertSynthCheckpoint } from '../src/models/bert-synthetic.js';
import { loadBert, loadBertForSequenceClassification, loadBertTokenizer, saveBert } from '../src/models/bert-load.js';
import { bertBatch, readSentenceConfig } from '../src/models/bert-embed.js';
import { clsPool, l2Normalize, meanPool } from '../src/models/bert-pooling.js';

const ASSETS = join(import.meta.dirname, '..', '..', 'shared', 'assets', 'bert');
const getRt = useRuntime();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'graft-bert-'));
  dirs.push(d);
  return d;
};

/** A small config that still has several heads, layers and padding. */
const SMALL: BertConfig = bertConfig({
  vocabSize: 61,
  hiddenSize: 32,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  intermediateSize: 48,
  maxPositionEmbeddings: 24,
  typeVocabSize: 2,
});

/** A HF folder: config.json + model.safetensors from the synthetic generator (or the given tensors). */
async function folder(cfg: BertConfig, tensors?: Map<string, TensorToWrite>, arch = 'BertModel'): Promise<string> {
  const d = tmp();
  writeFileSync(join(d, 'config.json'), JSON.stringify(bertConfigJson(cfg, [arch])));
  await writeSafetensors(join(d, 'model.safetensors'), tensors ?? bertSynthCheckpoint(cfg));
  return d;
}

/** safetensors with arbitrary dtypes (writeSafetensors only writes floats): each entry is raw little-endian bytes. */
function writeRaw(path: string, entries: [string, { dtype: string; shape: number[]; bytes: Uint8Array }][]): void {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [k, e] of entries) {
    header[k] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...entries.map(([, e]) => Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.length))]));
}
const f32Bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Two rows, the second padded; token types for a pair in row 0. */
function smallInputs(vocab: number): BertInputs & { dispose(): void } {
  return bertBatch(getRt(), [
    { inputIds: [2, 5, 9, 17, 3, 40, 41, 3].map((i) => i % vocab), tokenTypeIds: [0, 0, 0, 0, 0, 1, 1, 1] },
    { inputIds: [2, 33, 7, 3].map((i) => i % vocab) },
  ]);
}

async function hiddenOf(model: BertModel, inp: BertInputs): Promise<{ h: Float32Array; p: Float32Array | null }> {
  const o = noGrad(() => model.forward(inp));
  const r = { h: await o.lastHiddenState.read(), p: o.poolerOutput ? await o.poolerOutput.read() : null };
  o.lastHiddenState.dispose();
  o.poolerOutput?.dispose();
  return r;
}

const shapesOf = (m: { stateDict(): Map<string, Tensor> }): [string, number[]][] => [...m.stateDict()].map(([k, t]) => [k, [...t.shape]]);

describe('BERT structure', () => {
  it('HF keys and shapes in HF order: bert-tiny, all-MiniLM-L6-v2, bert-base (parameter counts as transformers reports)', async () => {
    const rt = getRt();
    const cases: [string, BertConfig, number][] = [
      ['bert-tiny', await readBertConfig(join(ASSETS, 'bert-tiny', 'config.json')), 4_385_920],
      ['all-MiniLM-L6-v2', await readBertConfig(join(ASSETS, 'all-MiniLM-L6-v2', 'config.json')), 22_713_216],
      ['bert-base', BERT_BASE, 109_482_240],
    ];
    for (const [name, cfg, count] of cases) {
      const m = new BertModel(rt, cfg, { init: 'none' });
      const expected = [...bertParameterShapes(cfg)];
      expect(shapesOf(m), name).toEqual(expected);
      expect(m.parameters().reduce((s, t) => s + t.size, 0), name).toBe(count);
      expect(m.namedBuffers()).toEqual([]);
      if (name === 'bert-base') {
        // 12 heads of 64 through the whole stack
        const inp = bertBatch(rt, [{ inputIds: [101, 7592, 2088, 102] }]);
        const o = noGrad(() => m.forward(inp));
        expect(o.lastHiddenState.shape).toEqual([1, 4, 768]);
        expect(o.poolerOutput!.shape).toEqual([1, 768]);
        expect((await o.poolerOutput!.read()).every(Number.isFinite)).toBe(true);
        o.lastHiddenState.dispose();
        o.poolerOutput!.dispose();
        inp.dispose();
      }
      m.dispose();
    }
    const cls = new BertForSequenceClassification(rt, SMALL, { numLabels: 5 });
    const keys = [...cls.stateDict().keys()];
    expect(keys.slice(0, 3)).toEqual(['bert.embeddings.word_embeddings.weight', 'bert.embeddings.position_embeddings.weight', 'bert.embeddings.token_type_embeddings.weight']);
    expect(keys.slice(-4)).toEqual(['bert.pooler.dense.weight', 'bert.pooler.dense.bias', 'classifier.weight', 'classifier.bias']);
    expect(cls.classifier.weight.shape).toEqual([5, 32]);
    cls.dispose();
    const noPool = new BertModel(rt, SMALL, { addPoolingLayer: false, init: 'none' });
    expect([...noPool.stateDict().keys()].some((k) => k.startsWith('pooler'))).toBe(false);
    noPool.dispose();
  });

  it("HF init: normal(0, initializer_range) weights, zero biases and padding row, LayerNorm 1 / 0", async () => {
    const m = new BertModel(getRt(), { ...SMALL, initializerRange: 0.5 }, { rng: new Rng(3) });
    const w = await m.encoder.layer[1]!.intermediate.dense.weight.read();
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(std).toBeGreaterThan(0.45);
    expect(std).toBeLessThan(0.55);
    expect((await m.encoder.layer[0]!.attention.self.query.bias!.read()).every((v) => v === 0)).toBe(true);
    expect((await m.embeddings.LayerNorm.weight!.read()).every((v) => v === 1)).toBe(true);
    const emb = await m.embeddings.word_embeddings.weight.read();
    expect(emb.subarray(0, 32).every((v) => v === 0)).toBe(true); // pad_token_id 0
    expect(emb.subarray(32, 64).some((v) => v !== 0)).toBe(true);
    m.dispose();
  });
});

describe('BERT config', () => {
  it('parses the shared configs and the HF defaults', async () => {
    const tiny = await readBertConfig(join(ASSETS, 'bert-tiny', 'config.json'));
    expect(tiny).toMatchObject({ hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 512, vocabSize: 30522, hiddenAct: 'gelu', layerNormEps: 1e-12, numLabels: 2 });
    const mini = await readBertConfig(join(ASSETS, 'all-MiniLM-L6-v2', 'config.json'));
    expect(mini).toMatchObject({ hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536, maxPositionEmbeddings: 512 });
    expect(parseBertConfig({ id2label: { '0': 'neg', '1': 'neu', '2': 'pos' } })).toMatchObject({ numLabels: 3, id2label: ['neg', 'neu', 'pos'], hiddenSize: 768 });
    expect(parseBertConfig(bertConfigJson(SMALL))).toEqual(SMALL);
  });

  it('rejects configs graft cannot run, naming the key', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ hidden_act: 'swish' }, /hidden_act 'swish' is not supported/],
      [{ hidden_size: 100, num_attention_heads: 12 }, /hidden_size 100 is not divisible by num_attention_heads 12/],
      [{ model_type: 'roberta' }, /model_type 'roberta' is not 'bert'/],
      [{ position_embedding_type: 'relative_key' }, /position_embedding_type 'relative_key'/],
      [{ num_hidden_layers: '12' }, /num_hidden_layers must be a number/],
      [{ vocab_size: 0 }, /vocab_size must be a positive integer/],
      [{ hidden_size: 512, num_attention_heads: 2 }, /head size 256 .* over the attention kernel's limit 128/],
    ];
    for (const [j, re] of bad) expect(() => parseBertConfig(j, 'x/config.json'), JSON.stringify(j)).toThrow(re);
    expect(() => parseBertConfig([], 'x')).toThrow(CheckpointError);
  });
});

describe('loadBert: HF folders', () => {
  it('saveBert → loadBert round trip: same keys as HF, same outputs; tokenizer from tokenizer.json or vocab.txt', async () => {
    const rt = getRt();
    const src = await loadBert(rt, await folder(SMALL), { tokenizer: false });
    const dir = tmp();
    await saveBert(src.model, dir);
    const st = await SafetensorsFile.open(join(dir, 'model.safetensors'));
    expect(st.names).toEqual([...bertParameterShapes(SMALL).keys()]);
    await st.close();
    copyFileSync(join(ASSETS, 'bert-tiny', 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const back = await loadBert(rt, dir);
    expect(back.config).toEqual(SMALL);
    expect(back.tokenizer?.encode('hello world').inputIds).toEqual([101, 7592, 2088, 102]);
    const inp = smallInputs(SMALL.vocabSize);
    const a = await hiddenOf(src.model, inp);
    const b = await hiddenOf(back.model, inp);
    expect(maxAbsDiff(a.h, b.h)).toBe(0);
    expect(maxAbsDiff(a.p!, b.p!)).toBe(0);
    inp.dispose();
    src.model.dispose();
    back.model.dispose();

    const vdir = tmp();
    copyFileSync(join(ASSETS, 'vocab.txt'), join(vdir, 'vocab.txt'));
    writeFileSync(join(vdir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
    const cased = await loadBertTokenizer(vdir);
    expect(cased!.encode('Hello').tokens).toEqual(['[CLS]', '[UNK]', '[SEP]']); // uncased vocab, casing kept
    rmSync(join(vdir, 'tokenizer_config.json'));
    expect((await loadBertTokenizer(vdir))!.encode('Hello').tokens).toEqual(['[CLS]', 'hello', '[SEP]']);
    expect(await loadBertTokenizer(tmp())).toBeNull();
  });

  it('tolerates position_ids buffers (I64), TF-style LayerNorm gamma/beta, F16 weights, and a missing pooler', async () => {
    const rt = getRt();
    const inp = smallInputs(SMALL.vocabSize);
    const ref = await loadBert(rt, await folder(SMALL), { tokenizer: false });
    const want = await hiddenOf(ref.model, inp);
    ref.model.dispose();

    // bert.-prefixed, gamma/beta names, position_ids + token_type_ids buffers, cls.* MLM head, no pooler
    const d = tmp();
    writeFileSync(join(d, 'config.json'), JSON.stringify(bertConfigJson(SMALL, ['BertForMaskedLM'])));
    const entries: [string, { dtype: string; shape: number[]; bytes: Uint8Array }][] = [];
    for (const [k, t] of bertSynthCheckpoint(SMALL, { pooler: false })) {
      const name = 'bert.' + k.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
      entries.push([name, { dtype: 'F32', shape: [...t.shape], bytes: f32Bytes(t.data) }]);
    }
    const pos = new BigInt64Array(SMALL.maxPositionEmbeddings).map((_, i) => BigInt(i));
    entries.push(['bert.embeddings.position_ids', { dtype: 'I64', shape: [1, SMALL.maxPositionEmbeddings], bytes: new Uint8Array(pos.buffer) }]);
    entries.push(['bert.embeddings.token_type_ids', { dtype: 'I64', shape: [1, SMALL.maxPositionEmbeddings], bytes: new Uint8Array(8 * SMALL.maxPositionEmbeddings) }]);
    entries.push(['cls.predictions.bias', { dtype: 'F32', shape: [SMALL.vocabSize], bytes: f32Bytes(new Float32Array(SMALL.vocabSize)) }]);
    writeRaw(join(d, 'model.safetensors'), entries);
    const r = await loadBert(rt, d, { tokenizer: false });
    expect(r.model.pooler).toBeNull();
    expect(r.ignoredKeys.sort()).toEqual(['bert.embeddings.position_ids', 'bert.embeddings.token_type_ids', 'cls.predictions.bias']);
    expect(r.missingKeys).toEqual([]);
    const got = await hiddenOf(r.model, inp);
    expect(got.p).toBeNull();
    expect(maxAbsDiff(got.h, want.h)).toBe(0);
    r.model.dispose();

    // F16 storage: same model up to half-precision rounding of the weights
    const half = new Map([...bertSynthCheckpoint(SMALL)].map(([k, t]) => [k, { ...t, dtype: 'F16' as const }]));
    const h16 = await loadBert(rt, await folder(SMALL, half), { tokenizer: false });
    const g16 = await hiddenOf(h16.model, inp);
    expect(maxAbsDiff(g16.h, want.h)).toBeGreaterThan(0);
    expectClose(g16.h, want.h, { atol: 2e-2, rtol: 0 }, 'F16 weights');
    h16.model.dispose();
    inp.dispose();
  });

  it('sharded checkpoints (model.safetensors.index.json) load the same weights', async () => {
    const rt = getRt();
    const all = [...bertSynthCheckpoint(SMALL)];
    const d = tmp();
    writeFileSync(join(d, 'config.json'), JSON.stringify(bertConfigJson(SMALL)));
    const half = Math.floor(all.length / 2);
    const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    await writeSafetensors(join(d, shards[0]!), all.slice(0, half));
    await writeSafetensors(join(d, shards[1]!), all.slice(half));
    const weightMap = Object.fromEntries(all.map(([k], i) => [k, shards[i < half ? 0 : 1]]));
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const sharded = await loadBert(rt, d, { tokenizer: false });
    const single = await loadBert(rt, await folder(SMALL), { tokenizer: false });
    const inp = smallInputs(SMALL.vocabSize);
    expect(maxAbsDiff((await hiddenOf(sharded.model, inp)).h, (await hiddenOf(single.model, inp)).h)).toBe(0);
    inp.dispose();
    sharded.model.dispose();
    single.model.dispose();
  });

  it('clear errors: missing folder / config / weights, bad config, corrupt file, shape mismatch, missing and unexpected keys', async () => {
    const rt = getRt();
    await expect(loadBert(rt, '/nonexistent/model')).rejects.toThrow(/model folder \/nonexistent\/model does not exist/);
    const empty = tmp();
    await expect(loadBert(rt, empty)).rejects.toThrow(/no config\.json/);
    writeFileSync(join(empty, 'config.json'), '{"hidden_size": 32,');
    await expect(loadBert(rt, empty)).rejects.toThrow(/config\.json: invalid JSON/);
    writeFileSync(join(empty, 'config.json'), JSON.stringify(bertConfigJson(SMALL)));
    writeFileSync(join(empty, 'pytorch_model.bin'), 'x');
    await expect(loadBert(rt, empty)).rejects.toThrow(/no model\.safetensors .*pytorch_model\.bin is not supported/);

    const corrupt = await folder(SMALL);
    truncateSync(join(corrupt, 'model.safetensors'), 5000);
    await expect(loadBert(rt, corrupt)).rejects.toThrow(CheckpointError);
    await expect(loadBert(rt, corrupt)).rejects.toThrow(/truncated|header length|data section/);

    // weights of a wider model under a config that says 32
    const wide = bertConfig({ ...SMALL, intermediateSize: 64 });
    const mismatch = await folder(SMALL, bertSynthCheckpoint(wide));
    const err = await loadBert(rt, mismatch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(String(err)).toMatch(/encoder\.layer\.0\.intermediate\.dense\.weight: checkpoint \[64, 32\], model \[48, 32\]/);
    expect(String(err)).toMatch(/encoder\.layer\.1\.output\.dense\.weight: checkpoint \[32, 64\], model \[32, 48\]/);

    const tensors = bertSynthCheckpoint(SMALL);
    tensors.delete('encoder.layer.1.attention.self.key.bias');
    tensors.delete('embeddings.LayerNorm.weight');
    await expect(loadBert(rt, await folder(SMALL, tensors))).rejects.toThrow(
      /missing 2 tensor\(s\): embeddings\.LayerNorm\.weight, encoder\.layer\.1\.attention\.self\.key\.bias/,
    );

    const extra = bertSynthCheckpoint(SMALL);
    extra.set('encoder.layer.7.output.dense.weight', { shape: [2], data: new Float32Array(2) });
    const extraDir = await folder(SMALL, extra);
    await expect(loadBert(rt, extraDir)).rejects.toThrow(/1 unexpected tensor\(s\) .*encoder\.layer\.7\.output\.dense\.weight/);
    const lax = await loadBert(rt, extraDir, { strict: false, tokenizer: false });
    expect(lax.unexpectedKeys).toEqual(['encoder.layer.7.output.dense.weight']);
    lax.model.dispose();
  });

  it('BertForSequenceClassification from a bare encoder checkpoint: new classifier (HF init), listed as missing', async () => {
    const rt = getRt();
    const r = await loadBertForSequenceClassification(rt, await folder(SMALL), { numLabels: 4, rng: new Rng(1), tokenizer: false });
    expect(r.missingKeys).toEqual(['classifier.weight', 'classifier.bias']);
    const w = await r.model.classifier.weight.read();
    expect(w.some((v) => v !== 0)).toBe(true);
    expect(Math.max(...w.map(Math.abs))).toBeLessThan(0.2); // normal(0, 0.02)
    const inp = smallInputs(SMALL.vocabSize);
    const logits = noGrad(() => r.model.forward(inp));
    expect(logits.shape).toEqual([2, 4]);
    logits.dispose();
    inp.dispose();
    r.model.dispose();
  });
});

describe('pooling', () => {
  it('meanPool (masked, zero-length rows give 0), clsPool and l2Normalize match plain loops', async () => {
    const rt = getRt();
    const [B, T, H] = [3, 5, 7];
    const h = randArray(B * T * H, 11, -2, 2);
    const m = new Float32Array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    const ht = Tensor.from(rt, h, [B, T, H]);
    const mt = Tensor.from(rt, m, [B, T]);
    const ref = new Float32Array(B * H);
    const cls = new Float32Array(B * H);
    const norm = new Float32Array(B * H);
    for (let b = 0; b < B; b++) {
      let n = 0;
      for (let t = 0; t < T; t++) n += m[b * T + t]!;
      for (let j = 0; j < H; j++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += h[(b * T + t) * H + j]! * m[b * T + t]!;
        ref[b * H + j] = s / Math.max(n, 1e-9);
        cls[b * H + j] = h[b * T * H + j]!;
      }
      const len = Math.hypot(...ref.subarray(b * H, (b + 1) * H));
      for (let j = 0; j < H; j++) norm[b * H + j] = ref[b * H + j]! / Math.max(len, 1e-12);
    }
    const outs = noGrad(() => {
      const mp = meanPool(ht, mt);
      return { mp, n: l2Normalize(mp), c: clsPool(ht), plain: meanPool(ht, null) };
    });
    expectClose(await outs.mp.read(), ref, { atol: 1e-6 }, 'meanPool');
    expect((await outs.mp.read()).subarray(2 * H).every((v) => v === 0)).toBe(true);
    expectClose(await outs.n.read(), norm, { atol: 1e-6 }, 'l2Normalize');
    expectClose(await outs.c.read(), cls, { atol: 0 }, 'clsPool');
    expect(outs.plain.shape).toEqual([B, H]);
    expect(() => meanPool(ht, Tensor.from(rt, m.subarray(0, 10), [2, T]))).toThrow(ShapeError);
    for (const t of [ht, mt, ...Object.values(outs)]) t.dispose();
    expect(() => bertBatch(rt, [{ inputIds: [1, 99] }], { vocabSize: 61 })).toThrow(/token id 99 .* outside the vocabulary \[0, 61\)/);
  });

  it('sentence-transformers folder settings (MiniLM: mean pooling, Normalize, max_seq_length 256)', async () => {
    expect(await readSentenceConfig(join(ASSETS, 'all-MiniLM-L6-v2'))).toEqual({ pooling: 'mean', normalize: true, maxSeqLength: 256 });
    expect(await readSentenceConfig(join(ASSETS, 'bert-tiny'))).toEqual({ pooling: 'mean', normalize: false, maxSeqLength: null });
    const d = tmp();
    mkdirSync(join(d, '1_Pooling'));
    writeFileSync(join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: false }));
    expect((await readSentenceConfig(d)).pooling).toBe('cls');
    writeFileSync(join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_max_tokens: true }));
    await expect(readSentenceConfig(d)).rejects.toThrow(/pooling_mode_max_tokens is not supported/);
  });
});

describe('training through autograd', () => {
  /** Sum of grad·dir over parameters, and the parameter list. */
  async function gradDot(model: BertForSequenceClassification, dirs: Map<Tensor, Float32Array>): Promise<number> {
    let s = 0;
    for (const [p, d] of dirs) {
      const g = await p.grad!.read();
      for (let i = 0; i < g.length; i++) s += g[i]! * d[i]!;
    }
    return s;
  }

  it('loss.backward gives finite gradients for every parameter; matches a central difference along a random direction', async () => {
    const rt = getRt();
    const cfg = bertConfig({ ...SMALL, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });
    const model = new BertForSequenceClassification(rt, cfg, { numLabels: 3, rng: new Rng(7) });
    // larger weights than HF's init, so the gradient is not tiny everywhere
    for (const [k, t] of bertSynthCheckpoint(cfg)) model.bert.stateDict().get(k)!.write(t.data);
    model.train();
    const inp = smallInputs(cfg.vocabSize);
    const labels = Tensor.from(rt, [2, 0], [2], 'i32');
    const lossOf = (): Tensor => {
      const logits = model.forward(inp);
      const l = model.loss(logits, labels);
      logits.dispose();
      return l;
    };
    const loss = lossOf();
    backward(loss);
    const l0 = (await loss.read())[0]!;
    loss.dispose();
    expect(Number.isFinite(l0)).toBe(true);
    let zero = 0;
    for (const [k, p] of model.namedParameters()) {
      expect(p.grad, k).not.toBeNull();
      const g = await p.grad!.read();
      expect(g.every(Number.isFinite), k).toBe(true);
      if (g.every((v) => v === 0)) zero++;
    }
    expect(zero).toBe(0);
    // the padding row of the word embeddings gets no gradient (padding_idx)
    expect((await model.bert.embeddings.word_embeddings.weight.grad!.read()).subarray(0, cfg.hiddenSize).every((v) => v === 0)).toBe(true);

    // d/dε loss(θ + ε·dir) at 0 = Σ grad·dir
    const rng = new Rng(5);
    const dirs = new Map<Tensor, Float32Array>();
    for (const p of model.parameters()) dirs.set(p, Float32Array.from({ length: p.size }, () => rng.uniform(-1, 1)));
    const analytic = await gradDot(model, dirs);
    const base = new Map<Tensor, Float32Array>();
    for (const p of model.parameters()) base.set(p, await p.read());
    const lossAt = async (eps: number): Promise<number> => {
      for (const [p, d] of dirs) p.write(base.get(p)!.map((v, i) => v + eps * d[i]!));
      const l = noGrad(lossOf);
      const v = (await l.read())[0]!;
      l.dispose();
      return v;
    };
    const eps = 1e-3;
    const numeric = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
    expect(Math.abs(analytic)).toBeGreaterThan(1e-2);
    expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(2e-2);
    labels.dispose();
    inp.dispose();
    model.dispose();
  });

  it('fused inference path = autograd path; dropout changes training outputs; exact attention-probability dropout path', async () => {
    const rt = getRt();
    const inp = smallInputs(SMALL.vocabSize);
    const dir = await folder(SMALL);
    const fused = (await loadBert(rt, dir, { tokenizer: false })).model;
    const want = await hiddenOf(fused, inp);
    // autograd path (graph recorded: unfused linear + gelu, add + layerNorm), dropout off
    const noDrop = bertConfig({ ...SMALL, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });
    const graph = new BertModel(rt, noDrop, { init: 'none' });
    graph.loadStateDict(fused.stateDict());
    graph.train();
    const o = graph.forward(inp);
    expect(o.lastHiddenState.gradFn).not.toBeNull();
    expectClose(await o.lastHiddenState.read(), want.h, { atol: 2e-5, rtol: 0 }, 'autograd vs fused');
    o.lastHiddenState.dispose();
    o.poolerOutput?.dispose();

    // HF dropout p = 0.1 in training: outputs differ from eval and between calls
    fused.train();
    const d1 = fused.forward(inp);
    const d2 = fused.forward(inp);
    const a1 = await d1.lastHiddenState.read();
    expect(maxAbsDiff(a1, want.h)).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(a1, await d2.lastHiddenState.read())).toBeGreaterThan(1e-2);
    for (const t of [d1.lastHiddenState, d1.poolerOutput, d2.lastHiddenState, d2.poolerOutput]) t?.dispose();

    // unfused softmax(QKᵀ + mask)·V with probability dropout: p → 0 reproduces the fused kernel
    const tinyP = bertConfig({ ...SMALL, hiddenDropoutProb: 0, attentionProbsDropoutProb: 1e-7 });
    const exact = new BertModel(rt, tinyP, { init: 'none', exactAttentionDropout: true });
    exact.loadStateDict(fused.stateDict());
    exact.train();
    const e = exact.forward(inp);
    expectClose(await e.lastHiddenState.read(), want.h, { atol: 2e-5, rtol: 0 }, 'exact attention path');
    const s = F.sum(e.poolerOutput!);
    backward(s);
    s.dispose();
    e.poolerOutput!.dispose();
    const g = await exact.encoder.layer[0]!.attention.self.key.weight.grad!.read();
    expect(g.every(Number.isFinite) && g.some((v) => v !== 0)).toBe(true);
    e.lastHiddenState.dispose();
    for (const m of [fused, graph, exact]) m.dispose();
    inp.dispose();
  });
});
