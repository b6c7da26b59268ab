// The fine-tune benchmark's ResNet training step in TensorFlow.js (placeholder until written).
import type { TfjsPeer } from '../tfjs.js';
import type { FinetuneBenchSpec } from '../finetune-spec.js';
import type { PeerTrainStep } from './step.js';

export function tfjsResnetStep(_p: TfjsPeer, spec: FinetuneBenchSpec): PeerTrainStep {
  throw new Error(`tfjs ${spec.model} step not written yet`);
}
