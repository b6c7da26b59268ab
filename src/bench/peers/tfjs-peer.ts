// The TensorFlow.js (webgpu) peer of the fine-tune benchmark: builds the model for a spec on graft's dawn GPU object and times its steps.
import type { Runtime } from '../../runtime/runtime.js';
import { loadTfjs, type TfjsPeer } from '../tfjs.js';
import { adapterName } from '../run.js';
import { isBert, type FinetuneBenchSpec, type PeerResult } from '../finetune-spec.js';
import { tfjsBertStep } from './tfjs-bert.js';
import { tfjsResnetStep } from './tfjs-resnet.js';
import { registerTfjsGradients } from './tfjs-grads.js';
import { timeSteps, type PeerStepOptions, type PeerTrainStep, type StepProgress } from './step.js';

/** The tfjs model + AdamW + batch for a spec (the caller disposes it). */
export function tfjsFinetuneStep(p: TfjsPeer, spec: FinetuneBenchSpec, o: PeerStepOptions = {}): PeerTrainStep {
  registerTfjsGradients(p.tf);
  return isBert(spec.model) ? tfjsBertStep(p, spec, o) : tfjsResnetStep(p, spec, o);
}

/** Time the tfjs training step for `spec` (warm-up untimed, median of the timed steps). */
export async function runTfjsFinetune(rt: Runtime, spec: FinetuneBenchSpec, onProgress?: StepProgress): Promise<PeerResult> {
  const p = await loadTfjs();
  const description = `tfjs-webgpu ${p.version} on ${adapterName(rt)}`;
  const s = tfjsFinetuneStep(p, spec);
  try {
    return await timeSteps('tfjs', description, s, spec, onProgress);
  } finally {
    s.dispose();
  }
}
