// Adapter-only files of the text strategies: LoRA (PEFT keys), Houlsby and prompt save → load onto a fresh base reproduces the logits; shape errors name tensor and shapes; the CLI's --out / --adapter / --from-scratch.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { CheckpointError } from '../src/runtime/errors.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { bertConfig, type BertConfig } from '../src/models/bert-config.js';
import { BertForSequenceClassification } from '../src/models/bert.js';
import { saveBert } from '../src/models/bert-load.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { promptForward, type SoftPrompt } from '../src/peft/prompt.js';
import { loadTunedAdapter, saveHoulsbyAdapter, TUNED_CONFIG, TUNED_WEIGHTS } from '../src/peft/tuned-io.js';
import { applyStrategy, type TextStrategy } from '../src/train-text/classify.js';
import { loadTextTuning, saveTextTuning } from '../src/train-text/save.js';
import { WordPieceTokenizer } from '../src/text/wordpiece.js';
import { runFinetuneText } from '../src/cli/finetune-text.js';
import { useRuntime } from './helpers/gpu.js';
import { maxAbsDiff } from './helpers/close.js';

const rt = useRuntime();
const dir = mkdtempSync(join(tmpdir(), 'graft-text-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cfg = bertConfig({ vocabSize: 50, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 32, initializerRange: 0.1 });

/** The same seeded base model every call (the "pretrained" weights an adapter is loaded onto). */
const base = (r: Runtime, c: BertConfig = cfg, numLabels = 2) => new BertForSequenceClassification(r, c, { numLabels, rng: new Rng(5) });

/** Fill every trainable tensor with seeded non-trivial values (as if trained; fresh adapters are identities). */
async function perturbTrainable(model: BertForSequenceClassification, prompt: SoftPrompt | null, seed: number): Promise<void> {
  const g = new Rng(seed);
  const ts = [...model.parameters().filter((t) => t.requiresGrad), ...(prompt ? [prompt.weight] : [])];
  for (const t of ts) t.write(Float32Array.from({ length: t.size }, () => g.normal(0, 0.2)));
}

async function logits(model: BertForSequenceClassification, prompt: SoftPrompt | null): Promise<Float32Array> {
  const r = model.bert.embeddings.word_embeddings.weight.rt;
  const ids = Tensor.from(r, [2, 11, 12, 13, 3, 0, 2, 20, 21, 22, 23, 3], [2, 6], 'i32');
  const mask = Tensor.from(r, [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], [2, 6]);
  model.eval();
  const y = noGrad(() => (prompt ? promptForward(model, prompt, { inputIds: ids, attentionMask: mask }) : model.forward({ inputIds: ids, attentionMask: mask })));
  const v = await y.read();
  for (const t of [ids, mask, y]) t.dispose();
  return v;
}

describe('adapter-only save / load per text strategy', () => {
  for (const strategy of ['lora', 'adapter', 'prompt'] as TextStrategy[]) {
    it(`${strategy}: a fresh base model + the saved files gives the same logits; only the trained tensors are saved`, async () => {
      const r = rt();
      const m = base(r);
      const prompt = await applyStrategy(m, strategy, { adapterSize: 8, promptLength: 3, seed: 4, lora: { r: 4, alpha: 8 } });
      await perturbTrainable(m, prompt, 11);
      const want = await logits(m, prompt);
      const plain = base(r);
      expect(maxAbsDiff(await logits(plain, null), want)).toBeGreaterThan(1e-3); // the adapter matters
      const out = join(dir, strategy);
      const saved = await saveTextTuning(m, strategy, out, { prompt, base: 'seeded-base' });
      const files = readdirSync(out).sort();
      expect(files.some((f) => f.includes('.tmp-'))).toBe(false);
      const weights = strategy === 'lora' ? 'adapter_model.safetensors' : TUNED_WEIGHTS;
      const st = await SafetensorsFile.open(join(out, weights));
      const names = st.names.sort();
      await st.close();
      const total = m.parameters().reduce((s, t) => s + t.size, 0);
      if (strategy === 'lora') {
        expect(saved.format).toBe('peft-lora');
        expect(files).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
        expect(names).toContain('base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight');
        expect(names).toContain('base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight');
        expect(names).toContain('base_model.model.classifier.weight');
        expect(names).toContain('base_model.model.bert.pooler.dense.weight');
        expect(names.some((n) => n.includes('key') || n.includes('word_embeddings'))).toBe(false);
        const c = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
        expect(c).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['query', 'value'], modules_to_save: ['classifier', 'pooler'], task_type: 'SEQ_CLS', base_model_name_or_path: 'seeded-base' });
      } else {
        expect(saved.format).toBe('graft-adapter');
        expect(files).toEqual([TUNED_CONFIG, TUNED_WEIGHTS].sort());
        expect(names.every((n) => n.includes('.adapter.') || n.includes('LayerNorm') || n.startsWith('classifier.') || n.startsWith('bert.pooler.') || n === 'prompt.weight')).toBe(true);
        expect(names.includes('prompt.weight')).toBe(strategy === 'prompt');
        expect(names.filter((n) => n.includes('.adapter.')).length).toBe(strategy === 'adapter' ? 2 * 2 * 4 : 0);
        const c = JSON.parse(readFileSync(join(out, TUNED_CONFIG), 'utf8')) as Record<string, unknown>;
        expect(c).toMatchObject({ format: 'graft-adapter', kind: strategy === 'adapter' ? 'houlsby' : 'prompt', base_model_name_or_path: 'seeded-base', tensors: names });
      }
      // the saved tensors are a small part of the model
      let savedSize = 0;
      const st2 = await SafetensorsFile.open(join(out, weights));
      for (const n of st2.names) savedSize += st2.info(n).shape.reduce((a, b) => a * b, 1);
      await st2.close();
      expect(savedSize).toBeLessThan(total / 2);

      const fresh = base(r);
      const loaded = await loadTextTuning(fresh, out);
      expect(loaded.strategy).toBe(strategy);
      expect(loaded.prompt !== null).toBe(strategy === 'prompt');
      expect(maxAbsDiff(await logits(fresh, loaded.prompt), want)).toBeLessThanOrEqual(1e-6);
      loaded.prompt?.dispose();
      prompt?.dispose();
      for (const x of [m, plain, fresh]) x.dispose();
    });
  }

  it('a mismatched shape is a CheckpointError naming the tensor and both shapes; nothing is copied or added', async () => {
    const r = rt();
    const m = base(r);
    await applyStrategy(m, 'adapter', { adapterSize: 8, seed: 1 });
    const out = join(dir, 'mismatch');
    await saveHoulsbyAdapter(m, out);
    // a base with 3 labels: the classifier does not fit
    const other = base(r, cfg, 3);
    const before = await other.classifier.bias!.read();
    const err = await loadTunedAdapter(other, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(String((err as Error).message)).toMatch(/classifier\.weight: file has \[2, 32\], model has \[3, 32\]/);
    expect(String((err as Error).message)).toMatch(/classifier\.bias: file has \[2\], model has \[3\]/);
    expect(other.namedParameters().some(([n]) => n.includes('.adapter.'))).toBe(false);
    expect(await other.classifier.bias!.read()).toEqual(before);
    // a wider base: the adapters do not fit
    const wide = base(r, bertConfig({ ...cfg, hiddenSize: 48, intermediateSize: 64 }));
    const err2 = await loadTunedAdapter(wide, out).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(CheckpointError);
    expect(String((err2 as Error).message)).toMatch(/bert\.encoder\.layer\.0\.attention\.output\.adapter\.down\.weight: file has \[8, 32\], model has \[8, 48\]/);
    // a corrupt config
    writeFileSync(join(out, TUNED_CONFIG), '{"format": "graft-adapter", "version": 1, "kind": "lora"}');
    await expect(loadTunedAdapter(other, out)).rejects.toThrow(/kind "lora"/);
    for (const x of [m, other, wide]) x.dispose();
  });

  it('CLI: --out saves per strategy, --adapter evaluates it to the same accuracy, --from-scratch ignores the weights; one-line errors', async () => {
    const r = rt();
    // A tiny "pretrained" folder: seeded weights + a vocabulary of the first 3000 entries of BERT's.
    const full = await WordPieceTokenizer.fromVocabFile(join(import.meta.dirname, '..', '..', 'shared', 'assets', 'bert', 'vocab.txt'));
    const tok = new WordPieceTokenizer(full.idToToken.slice(0, 3000));
    const c = bertConfig({ ...cfg, vocabSize: tok.size });
    const modelDir = join(dir, 'base-model');
    const m = base(r, c);
    await saveBert(m, modelDir);
    writeFileSync(join(modelDir, 'vocab.txt'), tok.idToToken.join('\n') + '\n');
    m.dispose();
    const common = { model: modelDir, data: 'spam-assassin', epochs: 1, batch: 8, seq: 24, trainLimit: 16, testLimit: 16, seed: 3 };
    for (const strategy of ['lora', 'prompt'] as const) {
      const out = join(dir, `cli-${strategy}`);
      const ft = await runFinetuneText({ ...common, strategy, loraR: 2, loraAlpha: 4, loraTargets: 'query,key,value', promptLength: 2, out }, r);
      expect(ft.out).toBe(out);
      expect(ft.trainableParams).toBeLessThan(ft.totalParams);
      const ev = await runFinetuneText({ ...common, strategy: 'full', adapter: out }, r);
      expect(ev.strategy).toBe(strategy);
      expect(ev.steps).toBe(0);
      expect(ev.test).toBe(16);
      expect(ev.accuracy).toBe(ft.accuracy);
      expect(ev.confusion).toEqual(ft.confusion);
    }
    const cl = JSON.parse(readFileSync(join(dir, 'cli-lora', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cl).toMatchObject({ r: 2, lora_alpha: 4, target_modules: ['query', 'key', 'value'] });
    // full: a whole HF folder with the vocabulary, loadable as --model
    const fullOut = join(dir, 'cli-full');
    await runFinetuneText({ ...common, strategy: 'full', out: fullOut }, r);
    expect(existsSync(join(fullOut, 'model.safetensors')) && existsSync(join(fullOut, 'vocab.txt'))).toBe(true);
    // --from-scratch: the same run on random weights differs from the pretrained one
    const a = await runFinetuneText({ ...common, strategy: 'linear-probe', epochs: 1 }, r);
    const b = await runFinetuneText({ ...common, strategy: 'linear-probe', epochs: 1, fromScratch: true }, r);
    expect(b.fromScratch).toBe(true);
    expect(a.fromScratch).toBe(false);
    expect(Math.abs(a.firstLoss - b.firstLoss)).toBeGreaterThan(1e-6);
    await expect(runFinetuneText({ ...common, strategy: 'full', adapter: join(dir, 'nope') }, r)).rejects.toThrow(/--adapter .*no such folder/);
    await expect(runFinetuneText({ ...common, strategy: 'full', adapter: modelDir }, r)).rejects.toThrow(/no adapter here/);
    await expect(runFinetuneText({ ...common, strategy: 'lora', loraTargets: ' , ' }, r)).rejects.toThrow(/--lora-targets/);
    await expect(runFinetuneText({ ...common, strategy: 'lora', loraDropout: 1.5 }, r)).rejects.toThrow(/--lora-dropout/);
    await expect(runFinetuneText({ ...common, strategy: 'lora', loraTargets: 'nothing_here' }, r)).rejects.toThrow(/match no module/);
  });
});
