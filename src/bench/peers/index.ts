// The fine-tune benchmark's peers (tfjs-webgpu on the same adapter, PyTorch on the CPU): run a spec on each and return their results.
import type { Runtime } from '../../runtime/runtime.js';
import { GraftError } from '../../runtime/errors.js';
import type { FinetuneBenchSpec, PeerResult } from '../finetune-spec.js';
import { skippedResult } from './step.js';
import { runTfjsFinetune } from './tfjs-peer.js';
import { runTorchFinetune } from './torch.js';

export const FINETUNE_PEERS = ['tfjs', 'torch'] as const;
export type FinetunePeer = (typeof FINETUNE_PEERS)[number];

const isPeer = (s: string): s is FinetunePeer => (FINETUNE_PEERS as readonly string[]).includes(s);

/**
 * Run `spec` on each named peer in order (warm-up steps untimed, median of `spec.steps` timed ones).
 * A peer that cannot run the spec (torch not installed, out of memory, ...) comes back with
 * `skipped` set; an unknown peer name throws a GraftError before anything runs.
 */
export async function runPeers(
  rt: Runtime,
  spec: FinetuneBenchSpec,
  peers: readonly string[],
  onProgress?: (peer: string, done: number, total: number) => void,
): Promise<PeerResult[]> {
  for (const p of peers) {
    if (!isPeer(p)) throw new GraftError(`unknown peer '${p}' (known: ${FINETUNE_PEERS.join(', ')})`);
  }
  const out: PeerResult[] = [];
  for (const p of peers) {
    const progress = (done: number, total: number) => onProgress?.(p, done, total);
    if (p === 'tfjs') {
      try {
        out.push(await runTfjsFinetune(rt, spec, progress));
      } catch (e) {
        if (e instanceof GraftError) throw e;
        out.push(skippedResult('tfjs', 'tfjs-webgpu', `tfjs failed: ${(e as Error).message.split('\n')[0]}`));
      }
    } else {
      out.push(await runTorchFinetune(spec, progress));
    }
  }
  return out;
}

export { tfjsFinetuneStep, runTfjsFinetune } from './tfjs-peer.js';
export { runTorchFinetune, runTorchScript, torchAvailable, torchPython, type TorchRun } from './torch.js';
export { BERT_SIZES, bertSize, type BertSize } from './bert-sizes.js';
export { PEER_ADAMW, type PeerTrainStep, type PeerStepOptions } from './step.js';
export { TFJS_RESNETS } from './tfjs-resnet.js';
