// Times one graft op (and optionally the same op in a peer library, same run, same clock) into a result record.
import type { Runtime } from '../runtime/runtime.js';
import type { GraftCase } from './cases.js';
import { describeTimer, gflops, measure, measureAsync, type MeasureOptions, type Timer } from './measure.js';
import { diffStats } from './shapes.js';
import type { PeerCase } from './tfjs.js';

export interface PeerResult {
  name: string;
  version: string;
  gflops: number;
  medianMs: number;
  minMs: number;
  timer: 'wall-clock';
  /** graft timed by wall clock in the same run, for the ratio. */
  graftGflops: number;
  graftMedianMs: number;
  /** Largest |graft - peer| over the output, and the output's largest |value| for scale. */
  maxAbsDiff: number;
  maxAbsRef: number;
}

export interface OpBenchResult {
  op: string;
  shape: object;
  label: string;
  variant: string;
  flops: number;
  /** Median GFLOP/s by `timer`. */
  gflops: number;
  medianMs: number;
  minMs: number;
  samplesMs: number[];
  timer: Timer;
  /** `timer`, with why it is the wall clock when it is. */
  timerNote: string;
  warmup: number;
  repeats: number;
  adapter: string;
  peer?: PeerResult;
  /** graft / peer GFLOP/s, both by wall clock in this run. */
  ratio?: number;
}

export interface OpBenchSpec {
  op: string;
  shape: object;
  label: string;
  variant: string;
  graft: GraftCase;
  /** Build the peer's case (loading the peer library) when a comparison is wanted. */
  peer?: () => Promise<{ name: string; version: string; case: PeerCase }>;
}

export interface OpBenchOptions {
  warmup?: number;
  repeats?: number;
  timer?: MeasureOptions['timer'];
  /** Runs finished so far out of all runs this benchmark does (warm-ups included). */
  onProgress?: (done: number, total: number) => void;
  /** Called when a new phase starts ('graft', 'graft wall-clock', peer name). */
  onPhase?: (phase: string) => void;
}

/** Adapter name for reports. */
export function adapterName(rt: Runtime): string {
  const i = rt.adapter.info;
  return i.description || i.device || [i.vendor, i.architecture].filter(Boolean).join(' ') || '(unnamed adapter)';
}

/**
 * Measure `spec.graft` with the best timer (GPU timestamps when available); with a peer, also
 * time graft and the peer by wall clock (each run waits for its GPU queue) and compare outputs.
 */
export async function runOpBench(rt: Runtime, spec: OpBenchSpec, opts: OpBenchOptions = {}): Promise<OpBenchResult> {
  const warmup = opts.warmup ?? 2;
  const repeats = opts.repeats ?? 10;
  const per = warmup + repeats;
  const total = per * (spec.peer ? 3 : 1);
  let base = 0;
  const onRun = (done: number) => opts.onProgress?.(base + done, total);
  const g = spec.graft;

  opts.onPhase?.('graft');
  const m = await measure(rt, () => g.record(), { warmup, repeats, timer: opts.timer, onRun });
  const result: OpBenchResult = {
    op: spec.op,
    shape: spec.shape,
    label: spec.label,
    variant: spec.variant,
    flops: g.flops,
    gflops: gflops(g.flops, m.medianMs),
    medianMs: m.medianMs,
    minMs: m.minMs,
    samplesMs: m.samplesMs,
    timer: m.timer,
    timerNote: describeTimer(rt, m.timer),
    warmup,
    repeats,
    adapter: adapterName(rt),
  };
  if (!spec.peer) return result;

  base += per;
  opts.onPhase?.('graft wall-clock');
  const gw = await measure(rt, () => g.record(), { warmup, repeats, timer: 'wall-clock', onRun });
  const peer = await spec.peer();
  base += per;
  opts.onPhase?.(peer.name);
  try {
    const pm = await measureAsync(() => peer.case.run(), { warmup, repeats, onRun });
    const d = diffStats(await g.output(), await peer.case.output());
    const graftGflops = gflops(g.flops, gw.medianMs);
    const peerGflops = gflops(peer.case.flops, pm.medianMs);
    result.peer = {
      name: peer.name,
      version: peer.version,
      gflops: peerGflops,
      medianMs: pm.medianMs,
      minMs: pm.minMs,
      timer: 'wall-clock',
      graftGflops,
      graftMedianMs: gw.medianMs,
      ...d,
    };
    result.ratio = graftGflops / peerGflops;
  } finally {
    peer.case.dispose();
  }
  return result;
}
