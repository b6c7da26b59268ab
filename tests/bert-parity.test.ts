// BERT vs a float64 PyTorch rendering of HF BertModel (tests/fixtures/bert-parity.json): hash-generated weights written
// as a real HF folder (config.json + model.safetensors), loaded with loadBert, run on padded pair / single inputs.
import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { readBertConfig } from '../src/models/bert-config.js';
import { bertSynthCheckpoint } from '../src/models/bert-synthetic.js';
import { loadBert, loadBertForSequenceClassification } from '../src/models/bert-load.js';
import { bertBatch } from '../src/models/bert-embed.js';
import { l2Normalize, meanPool } from '../src/models/bert-pooling.js';
import type { Tensor } from '../src/tensor.js';

interface Case {
  name: string;
  config: string;
  num_labels: number;
  input_ids: number[][];
  token_type_ids: number[][];
  attention_mask: number[][];
  hidden_positions: number[] | null;
  last_hidden_state: number[];
  pooler_output: number[];
  mean_pooled: number[];
  mean_pooled_normalized: number[];
  logits?: number[];
  torch_f32_vs_f64_max_abs: { last_hidden_state: number; pooler_output: number };
}

const ASSETS = join(import.meta.dirname, '..', '..', 'shared', 'assets', 'bert');
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'bert-parity.json'), 'utf8')) as { cases: Case[] };
// Shader compilation dominates the first forward; generous per-test limits keep a loaded 2-core machine from timing out.
const getRt = useRuntime();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Max |diff| per output, printed once per case (the numbers the report quotes). */
const reached: Record<string, Record<string, number>> = {};
afterAll(() => {
  for (const [k, v] of Object.entries(reached)) console.log(`bert parity ${k}: ${Object.entries(v).map(([n, d]) => `${n} ${d.toExponential(2)}`).join(', ')}`);
});

/** A HF folder for the case: the asset config.json and synthetic weights (optionally `bert.`-prefixed + classifier). */
async function writeFolder(c: Case, opts: { prefix?: string; numLabels?: number } = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'graft-bert-parity-'));
  dirs.push(dir);
  copyFileSync(join(ASSETS, c.config), join(dir, 'config.json'));
  const cfg = await readBertConfig(join(dir, 'config.json'));
  await writeSafetensors(join(dir, 'model.safetensors'), bertSynthCheckpoint(cfg, opts));
  return dir;
}

/** Rows of h [B, T, H] at the fixture's positions (all when null). */
function select(h: Float32Array, B: number, T: number, H: number, pos: number[] | null): Float32Array {
  if (!pos) return h;
  const out = new Float32Array(B * pos.length * H);
  for (let b = 0; b < B; b++) pos.forEach((t, i) => out.set(h.subarray((b * T + t) * H, (b * T + t + 1) * H), (b * pos.length + i) * H));
  return out;
}

const batchOf = (c: Case) =>
  bertBatch(
    getRt(),
    c.input_ids.map((ids, b) => ({ inputIds: ids, tokenTypeIds: c.token_type_ids[b], attentionMask: c.attention_mask[b] })),
  );

describe('BertModel parity with HF (float64 PyTorch reference)', () => {
  for (const c of fixture.cases) {
    it(`${c.name}: last hidden state, pooler output, mean pooling`, async () => {
      const rt = getRt();
      const dir = await writeFolder(c);
      const { model, config } = await loadBert(rt, dir, { tokenizer: false });
      expect(model.training).toBe(false);
      const batch = batchOf(c);
      const [B, T] = batch.inputIds.shape as [number, number];
      const H = config.hiddenSize;
      const outs = noGrad(() => {
        const o = model.forward(batch);
        const mp = meanPool(o.lastHiddenState, batch.attentionMask);
        return { h: o.lastHiddenState, p: o.poolerOutput!, mp, mpn: l2Normalize(mp) };
      });
      const h = select(await outs.h.read(), B, T, H, c.hidden_positions);
      const got: Record<string, [Float32Array, number[]]> = {
        last_hidden_state: [h, c.last_hidden_state],
        pooler_output: [await outs.p.read(), c.pooler_output],
        mean_pooled: [await outs.mp.read(), c.mean_pooled],
        mean_pooled_normalized: [await outs.mpn.read(), c.mean_pooled_normalized],
      };
      reached[c.name] = {};
      for (const [k, [a, ref]] of Object.entries(got)) {
        reached[c.name]![k] = maxAbsDiff(a, ref);
        expectClose(a, ref, { atol: 1e-4, rtol: 0 }, `${c.name} ${k}`);
      }
      for (const t of Object.values(outs) as Tensor[]) t.dispose();
      batch.dispose();
      model.dispose();
    }, 300_000);
  }

  const tiny = fixture.cases.find((c) => c.logits)!;
  it(`${tiny.name}: a 'bert.'-prefixed BertForSequenceClassification checkpoint (classifier logits; loadBert drops the head)`, async () => {
    const rt = getRt();
    const dir = await writeFolder(tiny, { prefix: 'bert.', numLabels: tiny.num_labels });
    // config.json says nothing about labels (HF default 2): the 3-way head must be asked for, else shapes clash.
    await expect(loadBertForSequenceClassification(rt, dir, { tokenizer: false })).rejects.toThrow(/classifier\.weight: checkpoint \[3, 128\], model \[2, 128\]/);
    const cls = await loadBertForSequenceClassification(rt, dir, { tokenizer: false, numLabels: tiny.num_labels });
    expect(cls.missingKeys).toEqual([]);
    expect(cls.model.numLabels).toBe(tiny.num_labels);
    const batch = batchOf(tiny);
    const logits = noGrad(() => cls.model.forward(batch));
    expectClose(await logits.read(), tiny.logits!, { atol: 1e-4, rtol: 0 }, 'logits');
    reached[`${tiny.name} (bert. prefix)`] = { logits: maxAbsDiff(await logits.read(), tiny.logits!) };
    logits.dispose();
    cls.model.dispose();

    const base = await loadBert(rt, dir, { tokenizer: false });
    expect(base.ignoredKeys.sort()).toEqual(['classifier.bias', 'classifier.weight']);
    const o = noGrad(() => base.model.forward(batch));
    expectClose(await o.poolerOutput!.read(), tiny.pooler_output, { atol: 1e-4, rtol: 0 }, 'pooler via prefixed checkpoint');
    o.lastHiddenState.dispose();
    o.poolerOutput!.dispose();
    base.model.dispose();
    batch.dispose();
  }, 300_000);
});
