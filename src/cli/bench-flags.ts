// Flags every `graft bench <op>` command shares (repeats, warm-up, timer, peer, variant, --json) and its progress bar.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import type { OpBenchOptions } from '../bench/run.js';
import { nonNegInt, posInt } from './errors.js';
import { startProgress } from './progress.js';

export type TimerFlag = 'auto' | 'gpu-timestamp' | 'wall-clock';
export type PeerFlag = 'tfjs';

export interface CommonBenchFlags {
  variant?: string;
  repeats: number;
  warmup: number;
  timer: TimerFlag;
  peer?: PeerFlag;
  json?: boolean;
}

export function parseTimer(v: string): TimerFlag {
  if (v === 'auto' || v === 'gpu-timestamp' || v === 'wall-clock') return v;
  throw new GraftError(`--timer must be auto, gpu-timestamp or wall-clock, got '${v}'`);
}

export function parsePeer(v: string): PeerFlag {
  if (v === 'tfjs') return v;
  throw new GraftError(`--peer must be tfjs, got '${v}'`);
}

/** Add the shared options to a bench subcommand. */
export function addBenchFlags(cmd: Command): Command {
  return cmd
    .option('--variant <name>', 'force a kernel variant (default: the kernel chooses)')
    .option('--repeats <R>', 'timed runs; the median is reported', posInt('--repeats'), 10)
    .option('--warmup <W>', 'untimed runs first (pipeline compiles)', nonNegInt('--warmup'), 2)
    .option('--timer <kind>', 'auto (GPU timestamps when the adapter has them) | gpu-timestamp | wall-clock', parseTimer, 'auto')
    .option('--peer <name>', 'also time the same op in a peer library in this run, by wall clock (tfjs)', parsePeer)
    .option('--json', 'print one JSON object on stdout');
}

export type ProgressHooks = Required<Pick<OpBenchOptions, 'onProgress' | 'onPhase'>>;

/** Run `fn` under a stderr progress bar (none with --json or off a TTY), removing the bar on exit. */
export async function withProgress<T>(label: string, json: boolean | undefined, fn: (hooks: ProgressHooks) => Promise<T>): Promise<T> {
  const bar = startProgress(label, { total: 1, unit: 'runs', json });
  try {
    return await fn({
      onProgress: (done, total) => bar.update(done, total),
      onPhase: (phase) => bar.label(`${label} (${phase})`),
    });
  } finally {
    bar.stop();
  }
}
