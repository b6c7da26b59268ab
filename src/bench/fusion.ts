// `graft bench fusion` measuring code: each fusion's workload timed with the switch on and off (runs interleaved), median of N after warm-up.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { FUSION_NAMES, assertFusionName, fusionEnabled, withFusion, type FusionName } from '../runtime/fusion.js';
import { describeTimer, measure, median, type Timer } from './measure.js';
import { adapterName } from './run.js';
import { FUSION_CASES, type FusionCase } from './fusion-cases.js';

export interface FusionBenchOptions {
  /** Fusions to time (default all). */
  only?: readonly FusionName[];
  /** Tiny shapes, 1 warm-up, 2 timed runs (a smoke test, not a measurement). */
  quick?: boolean;
  /** Untimed fused + unfused rounds first (default 2; --quick 1). */
  warmup?: number;
  /** Timed rounds (default: enough for about 12 s per case, 5 to 31; --quick 2). */
  repeats?: number;
  timer?: 'auto' | Timer;
  /** Called before each case is timed. */
  onCase?: (label: string) => void;
}

export interface FusionRow {
  fusion: FusionName;
  workload: string;
  fusedMs: number;
  unfusedMs: number;
  /** Timed runs per side. */
  repeats: number;
  /** unfusedMs / fusedMs (> 1: the fusion is faster). */
  speedup: number;
  /** The switch's current value (API override, env GRAFT_FUSE_<NAME>, else FUSION_DEFAULTS). */
  enabled: boolean;
}

export interface FusionBenchResult {
  adapter: string;
  timer: string;
  quick: boolean;
  warmup: number;
  rows: FusionRow[];
}

/** Parse '--only attention,lora' into fusion names (GraftError on an unknown one). */
export function parseFusionNames(s: string): FusionName[] {
  const names = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (!names.length) throw new GraftError(`--only needs at least one fusion name (known: ${FUSION_NAMES.join(', ')})`);
  for (const n of names) assertFusionName(n);
  return names as FusionName[];
}

type Counts = Required<Pick<FusionBenchOptions, 'warmup' | 'timer' | 'quick'>> & { repeats: number | undefined };

/** Time budget per case when --repeats is not given: short workloads get more samples (noisy shared machines). */
const AUTO_BUDGET_MS = 12_000;
const AUTO_MIN = 5;
const AUTO_MAX = 31;

/** Repeats for a fused + unfused round of `roundMs` (odd, so the median is one sample). */
export function autoRepeats(roundMs: number): number {
  const n = roundMs > 0 ? Math.ceil(AUTO_BUDGET_MS / roundMs) : AUTO_MAX;
  const c = Math.min(AUTO_MAX, Math.max(AUTO_MIN, n));
  return c % 2 ? c : c + 1;
}

/**
 * Build the workload once per side (each under its switch), then alternate single timed runs fused /
 * unfused (order flipped every round) so drift on a shared, noisy machine hits both sides alike.
 */
async function timeCase(rt: Runtime, c: FusionCase, o: Counts): Promise<{ fusedMs: number; unfusedMs: number; repeats: number; timer: Timer }> {
  const sides = [true, false] as const;
  const work = sides.map((on) => withFusion({ [c.fusion]: on }, () => c.make(rt, o.quick)));
  const samples: number[][] = [[], []];
  let timer: Timer = 'wall-clock';
  const once = async (i: 0 | 1): Promise<number> =>
    withFusion({ [c.fusion]: sides[i] }, async () => {
      const m = await measure(rt, () => work[i]!.run(), { warmup: 0, repeats: 1, timer: o.timer });
      timer = m.timer;
      return m.medianMs;
    });
  try {
    let last = 0;
    for (let r = 0; r < o.warmup; r++) last = (await once(0)) + (await once(1));
    const repeats = o.repeats ?? autoRepeats(last);
    for (let r = 0; r < repeats; r++) {
      const order: (0 | 1)[] = r % 2 ? [1, 0] : [0, 1];
      for (const i of order) samples[i]!.push(await once(i));
    }
  } finally {
    for (const w of work) w.dispose();
    await rt.sync();
  }
  return { fusedMs: median(samples[0]!), unfusedMs: median(samples[1]!), repeats: samples[0]!.length, timer };
}

/** Time every selected fusion fused and unfused on this runtime's adapter. */
export async function runFusionBench(rt: Runtime, opts: FusionBenchOptions = {}): Promise<FusionBenchResult> {
  const quick = opts.quick ?? false;
  const o: Counts = { quick, warmup: opts.warmup ?? (quick ? 1 : 2), repeats: opts.repeats ?? (quick ? 2 : undefined), timer: opts.timer ?? 'auto' };
  const only = opts.only ? new Set(opts.only) : null;
  const rows: FusionRow[] = [];
  let timer: Timer = 'wall-clock';
  for (const c of FUSION_CASES) {
    if (only && !only.has(c.fusion)) continue;
    const label = c.label(quick);
    opts.onCase?.(label);
    const t = await timeCase(rt, c, o);
    timer = t.timer;
    rows.push({ fusion: c.fusion, workload: label, fusedMs: t.fusedMs, unfusedMs: t.unfusedMs, repeats: t.repeats, speedup: t.unfusedMs / t.fusedMs, enabled: fusionEnabled(c.fusion) });
  }
  return { adapter: adapterName(rt), timer: describeTimer(rt, timer), quick, warmup: o.warmup, rows };
}

/** The table: fusion, workload, fused ms, unfused ms, speed-up, current default. */
export function formatFusionBench(r: FusionBenchResult): string[] {
  const head = ['fusion', 'workload', 'fused ms', 'unfused ms', 'speed-up', 'runs', 'default'];
  const body = r.rows.map((x) => [x.fusion, x.workload, x.fusedMs.toFixed(2), x.unfusedMs.toFixed(2), `${x.speedup.toFixed(2)}×`, String(x.repeats), x.enabled ? 'on' : 'off']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [
    `adapter   ${r.adapter}`,
    `timer     ${r.timer}; median of the runs per side after ${r.warmup} warm-up rounds, fused and unfused interleaved${r.quick ? ' (--quick: tiny shapes, not a measurement)' : ''}`,
    `default   the switch as it stands now (API / GRAFT_FUSE_<NAME> / FUSION_DEFAULTS)`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
  ];
}
