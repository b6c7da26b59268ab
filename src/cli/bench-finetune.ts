// `graft bench finetune`: times fine-tuning steps (ResNet / BERT; full, LoRA or linear probe) and compares samples/s with peer libraries in the same run.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { FINETUNE_MODELS, FINETUNE_STRATEGIES, finetuneSpec, type FinetuneBenchSpec, type FinetuneModel, type FinetuneStrategy, type PeerResult } from '../bench/finetune-spec.js';
import { comparePeers, formatFinetune, runFinetuneBench, type FinetuneBenchResult } from '../bench/finetune.js';
import { printJson } from '../bench/report.js';
import { nonNegInt, posInt } from './errors.js';
import { startProgress } from './progress.js';
import { FINETUNE_PEERS, runPeers as runPeersDefault } from '../bench/peers/index.js';

export interface FinetuneFlags {
  model: FinetuneModel;
  strategy: FinetuneStrategy;
  batch: number;
  res: number;
  seq: number;
  steps: number;
  warmup: number;
  classes: number;
  loraRank: number;
  loraAlpha: number;
  seed: number;
  /** Peer names; empty: none. */
  peer: string[];
  kernels: boolean;
  /** Also time the step under whole-step capture (after the uncaptured run) and report both. */
  capture?: boolean;
  json?: boolean;
}

/** Runs the peers on a spec (src/bench/peers runPeers): one result per named peer, in order. */
export type PeerRunner = (
  rt: Runtime,
  spec: FinetuneBenchSpec,
  peers: readonly string[],
  onProgress?: (peer: string, done: number, total: number) => void,
) => Promise<PeerResult[]>;

export function parseFinetuneModel(v: string): FinetuneModel {
  const m = FINETUNE_MODELS.find((k) => k === v);
  if (!m) throw new GraftError(`--model must be one of ${FINETUNE_MODELS.join(', ')}, got '${v}'`);
  return m;
}

export function parseFinetuneStrategy(v: string): FinetuneStrategy {
  const s = FINETUNE_STRATEGIES.find((k) => k === v);
  if (!s) throw new GraftError(`--strategy must be one of ${FINETUNE_STRATEGIES.join(', ')}, got '${v}'`);
  return s;
}

/** 'tfjs,torch' -> ['tfjs', 'torch']; 'none' -> []. */
export function parsePeerList(v: string): string[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new GraftError(`--peer needs a list of ${FINETUNE_PEERS.join(', ')} or 'none', got '${v}'`);
  if (names.includes('none')) {
    if (names.length > 1) throw new GraftError(`--peer 'none' cannot be combined with other peers, got '${v}'`);
    return [];
  }
  for (const n of names) {
    if (!(FINETUNE_PEERS as readonly string[]).includes(n)) throw new GraftError(`--peer: unknown peer '${n}' (known: ${FINETUNE_PEERS.join(', ')}, or none)`);
  }
  return [...new Set(names)];
}

function parseAlpha(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new GraftError(`--lora-alpha must be a positive number, got '${v}'`);
  return n;
}

export function registerFinetuneBench(bench: Command): void {
  const d = finetuneSpec({ model: 'resnet50', strategy: 'full' });
  bench
    .command('finetune')
    .description('time fine-tuning steps (forward, cross-entropy, backward, AdamW) of ResNet or BERT, with peers in the same run')
    .option('--model <name>', FINETUNE_MODELS.join(' | '), parseFinetuneModel, 'resnet50')
    .option('--strategy <name>', FINETUNE_STRATEGIES.join(' | '), parseFinetuneStrategy, 'full')
    .option('--batch <B>', 'examples per step', posInt('--batch'), d.batch)
    .option('--res <R>', 'image side in pixels (ResNet)', posInt('--res'), d.res)
    .option('--seq <S>', 'tokens per sequence (BERT)', posInt('--seq'), d.seq)
    .option('--steps <N>', 'timed steps; the median is reported', posInt('--steps'), d.steps)
    .option('--warmup <W>', 'untimed steps first (pipeline compiles, pool warm-up)', nonNegInt('--warmup'), d.warmup)
    .option('--classes <C>', 'classes of the new head', posInt('--classes'), d.numClasses)
    .option('--lora-rank <r>', 'LoRA rank (strategy lora)', posInt('--lora-rank'), d.loraRank)
    .option('--lora-alpha <a>', 'LoRA alpha (strategy lora)', parseAlpha, d.loraAlpha)
    .option('--seed <n>', 'seed of the synthetic weights and batch', nonNegInt('--seed'), d.seed)
    .option('--peer <list>', `peers to run on the same spec: comma list of ${FINETUNE_PEERS.join(', ')}, or none`, parsePeerList, [...FINETUNE_PEERS])
    .option('--no-kernels', 'skip the per-kernel timestamp breakdown')
    .option('--capture', 'also run the step with whole-step capture (recorded at the first warm-up step, replayed after) and report encode and step ms with and without it')
    .option('--json', 'print one JSON object on stdout (progress stays on stderr)')
    .action(async (flags: FinetuneFlags) => {
      await benchFinetuneCommand(flags);
    });
}

/** The spec the flags describe. */
export function specFromFlags(f: FinetuneFlags): FinetuneBenchSpec {
  return finetuneSpec({
    model: f.model,
    strategy: f.strategy,
    batch: f.batch,
    res: f.res,
    seq: f.seq,
    steps: f.steps,
    warmup: f.warmup,
    numClasses: f.classes,
    loraRank: f.loraRank,
    loraAlpha: f.loraAlpha,
    seed: f.seed,
  });
}

/** Run graft's side, then the peers, on a fresh runtime (or `rt`); print and return the result. */
export async function benchFinetuneCommand(f: FinetuneFlags, rt?: Runtime, runPeers?: PeerRunner): Promise<FinetuneBenchResult> {
  const spec = specFromFlags(f);
  const own = rt ?? (await Runtime.create());
  if (f.capture && spec.warmup < 1) throw new GraftError('--capture needs --warmup ≥ 1 (the captured run records its step at the first warm-up step)');
  const per = spec.warmup + spec.steps;
  const own0 = f.capture ? 2 * per : per; // graft's steps (both runs with --capture)
  const total = own0 + per * f.peer.length;
  const size = spec.model.startsWith('bert-') ? `seq ${spec.seq}` : `res ${spec.res}`;
  const label = `finetune ${spec.model} ${spec.strategy} batch ${spec.batch} ${size}`;
  const bar = startProgress(`${label} (graft)`, { total, unit: 'steps', json: f.json });
  let r: FinetuneBenchResult;
  try {
    r = await runFinetuneBench(own, spec, { kernels: f.kernels, capture: f.capture ?? false, onProgress: (done) => bar.update(done) });
    if (f.peer.length) {
      const run = runPeers ?? runPeersDefault;
      const peers = await run(own, spec, f.peer, (peer, done) => {
        bar.label(`${label} (${peer})`);
        bar.update(own0 + per * Math.max(0, f.peer.indexOf(peer)) + Math.min(done, per));
      });
      r.peers = comparePeers(r, peers);
    }
  } finally {
    bar.stop();
    if (!rt) own.destroy();
  }
  if (f.json) printJson(r);
  else for (const l of formatFinetune(r)) console.log(l);
  return r;
}
