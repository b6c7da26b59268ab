// What a text fine-tune leaves on disk, per strategy: a PEFT LoRA adapter, a graft adapter / prompt file pair, or a whole HF folder; and loading it back onto a base model.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { BertForSequenceClassification } from '../models/bert.js';
import { saveBert } from '../models/bert-load.js';
import type { WordPieceTokenizer } from '../text/wordpiece.js';
import { ADAPTER_CONFIG, loadLoraAdapter, saveLoraAdapter } from '../peft/adapter-io.js';
import type { SoftPrompt } from '../peft/prompt.js';
import { isTunedAdapterDir, loadTunedAdapter, saveHoulsbyAdapter, savePromptTuning } from '../peft/tuned-io.js';
import type { TextStrategy } from './classify.js';

export interface SavedTextTuning {
  dir: string;
  /** 'peft-lora' (adapter_model.safetensors + adapter_config.json), 'graft-adapter' (graft_adapter.*), 'hf-model' (config.json + model.safetensors + vocab.txt). */
  format: 'peft-lora' | 'graft-adapter' | 'hf-model';
}

/**
 * Save the result of finetuneText under `dir`: lora → PEFT adapter files (task SEQ_CLS); adapter / prompt →
 * the trained tensors only (saveHoulsbyAdapter / savePromptTuning); full / linear-probe → the whole model
 * as a HF folder with the tokenizer's vocab.txt. `base` is recorded as base_model_name_or_path.
 */
export async function saveTextTuning(
  model: BertForSequenceClassification,
  strategy: TextStrategy,
  dir: string,
  o: { prompt?: SoftPrompt | null; tokenizer?: WordPieceTokenizer; base?: string | null } = {},
): Promise<SavedTextTuning> {
  const base = o.base ?? null;
  switch (strategy) {
    case 'lora':
      await saveLoraAdapter(model, dir, { baseModelNameOrPath: base, taskType: 'SEQ_CLS' });
      return { dir, format: 'peft-lora' };
    case 'adapter':
      await saveHoulsbyAdapter(model, dir, { baseModelNameOrPath: base });
      return { dir, format: 'graft-adapter' };
    case 'prompt':
      if (!o.prompt) throw new GraftError('saveTextTuning: strategy prompt needs the soft prompt');
      await savePromptTuning(model, o.prompt, dir, { baseModelNameOrPath: base });
      return { dir, format: 'graft-adapter' };
    case 'full':
    case 'linear-probe':
      await saveBert(model, dir);
      if (o.tokenizer) await writeFileAtomic(join(dir, 'vocab.txt'), o.tokenizer.idToToken.join('\n') + '\n');
      return { dir, format: 'hf-model' };
    default:
      throw new GraftError(`saveTextTuning: unknown strategy '${String(strategy)}'`);
  }
}

export interface LoadedTextTuning {
  strategy: 'lora' | 'adapter' | 'prompt';
  /** The soft prompt (strategy prompt), owned by the caller. */
  prompt: SoftPrompt | null;
}

/** Load what saveTextTuning wrote for lora / adapter / prompt onto a base `model` (by the config file found in `dir`). */
export async function loadTextTuning(model: BertForSequenceClassification, dir: string): Promise<LoadedTextTuning> {
  if (existsSync(join(dir, ADAPTER_CONFIG))) {
    await loadLoraAdapter(model, dir);
    model.eval();
    return { strategy: 'lora', prompt: null };
  }
  if (isTunedAdapterDir(dir)) {
    const r = await loadTunedAdapter(model, dir);
    return { strategy: r.config.kind === 'houlsby' ? 'adapter' : 'prompt', prompt: r.prompt };
  }
  throw new GraftError(`${dir}: no adapter here (expected ${ADAPTER_CONFIG} from a LoRA run or graft_adapter_config.json from an adapter / prompt run)`);
}
