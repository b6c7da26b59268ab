// The fine-tune benchmark's vocabulary, shared by graft's side (src/bench/finetune*.ts) and the peers (src/bench/peers/*).

export const FINETUNE_MODELS = ['resnet50', 'resnet18', 'bert-tiny', 'bert-mini', 'bert-base'] as const;
export type FinetuneModel = (typeof FINETUNE_MODELS)[number];
export const FINETUNE_STRATEGIES = ['full', 'lora', 'linear-probe'] as const;
export type FinetuneStrategy = (typeof FINETUNE_STRATEGIES)[number];

/** One fine-tuning step to measure: the same spec is given to graft and to every peer. */
export interface FinetuneBenchSpec {
  model: FinetuneModel;
  strategy: FinetuneStrategy;
  /** Examples per step. */
  batch: number;
  /** Image side in pixels (ResNet models): input [batch, 3, res, res]. */
  res: number;
  /** Tokens per sequence (BERT models): input ids [batch, seq]. */
  seq: number;
  /** Timed steps (after `warmup` untimed ones). */
  steps: number;
  warmup: number;
  /** Classes of the new head (cross-entropy over [batch, numClasses] logits). */
  numClasses: number;
  /** LoRA rank and alpha (strategy 'lora'): ResNet targets every conv of the last stage + the head is trained; BERT targets query/value of every layer + the classifier is trained. */
  loraRank: number;
  loraAlpha: number;
  /** Seed for the synthetic weights and batch. */
  seed: number;
}

/** Defaults: batch 8, res 64 / seq 128, 10 timed steps after 2 warm-up steps, 10 classes, LoRA r 8 α 16. */
export function finetuneSpec(p: Partial<FinetuneBenchSpec> & Pick<FinetuneBenchSpec, 'model' | 'strategy'>): FinetuneBenchSpec {
  return { batch: 8, res: 64, seq: 128, steps: 10, warmup: 2, numClasses: 10, loraRank: 8, loraAlpha: 16, seed: 0, ...p };
}

export const isBert = (m: FinetuneModel): boolean => m.startsWith('bert-');

/** One peer's result for a spec (median over the timed steps). `null` fields: the peer cannot report them. */
export interface PeerResult {
  peer: string;
  /** e.g. 'tfjs-webgpu 4.22.0 on <adapter>', 'pytorch 1.13 cpu (2 threads)'. */
  description: string;
  samplesPerSec: number;
  medianStepMs: number;
  steps: number;
  /** Set when the peer could not run this spec (the other fields are then NaN). */
  skipped?: string;
}
