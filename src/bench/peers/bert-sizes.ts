// The BERT sizes of the fine-tune benchmark (Google's bert-tiny / bert-mini, bert-base-uncased), shared by every peer.
import type { FinetuneModel } from '../finetune-spec.js';
import { GraftError } from '../../runtime/errors.js';

export interface BertSize {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocab: number;
  eps: number;
}

const base = { vocab: 30522, maxPositions: 512, typeVocab: 2, eps: 1e-12 } as const;

export const BERT_SIZES: Record<string, BertSize> = {
  'bert-tiny': { ...base, hidden: 128, layers: 2, heads: 2, intermediate: 512 },
  'bert-mini': { ...base, hidden: 256, layers: 4, heads: 4, intermediate: 1024 },
  'bert-base': { ...base, hidden: 768, layers: 12, heads: 12, intermediate: 3072 },
};

export function bertSize(model: FinetuneModel): BertSize {
  const s = BERT_SIZES[model];
  if (!s) throw new GraftError(`'${model}' is not a BERT model of the fine-tune benchmark (known: ${Object.keys(BERT_SIZES).join(', ')})`);
  return s;
}
