// `graft bench fusion` measuring code: each fusion's workload timed with the switch on and off, median of N after warm-up.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import { FUSION_NAMES, assertFusionName, fusionEnabled, withFusion, type FusionName } from '../runtime/fusion.js';
import { describeTimer, measure, type Timer } from './measure.js';
import { adapterName } from './run.js';
import { FUSION_CASES, type FusionCase } from './fusion-cases.js';

export interface FusionBenchOptions {
  /** Fusions to time (default all). */
  only?: readonly FusionName[];
  /** Tiny shapes, 1 warm-up, 2 timed runs (a smoke test, not a measurement). */
  quick?: boolean;
  warmup?: number;
  repeats?: number;
  timer?: 'auto' | Timer;
  /** Called before each timed half: (case label, fused?). */
  onCase?: (label: string, fused: boolean) => void;
}

export interface FusionRow {
  fusion: FusionName;
  workload: string;
  fusedMs: number;
  unfusedMs: number;
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
  repeats: number;
  rows: FusionRow[];
}

/** Parse '--only attention,lora' into fusion names (GraftError on an unknown one). */
export function parseFusionNames(s: string): FusionName[] {
  const names = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (!names.length) throw new GraftError(`--only needs at least one fusion name (known: ${FUSION_NAMES.join(', ')})`);
  for (const n of names) assertFusionName(n);
  return names as FusionName[];
}

async function timeCase(rt: Runtime, c: FusionCase, fused: boolean, o: Required<Pick<FusionBenchOptions, 'warmup' | 'repeats' | 'timer' | 'quick'>>): Promise<{ ms: number; timer: Timer }> {
  return withFusion({ [c.fusion]: fused }, async () => {
    const w = c.make(rt, o.quick);
    try {
      const m = await measure(rt, () => w.run(), { warmup: o.warmup, repeats: o.repeats, timer: o.timer });
      return { ms: m.medianMs, timer: m.timer };
    } finally {
      w.dispose();
      await rt.sync();
    }
  });
}

/** Time every selected fusion fused and unfused on this runtime's adapter. */
export async function runFusionBench(rt: Runtime, opts: FusionBenchOptions = {}): Promise<FusionBenchResult> {
  const quick = opts.quick ?? false;
  const o = { quick, warmup: opts.warmup ?? (quick ? 1 : 2), repeats: opts.repeats ?? (quick ? 2 : 5), timer: opts.timer ?? 'auto' };
  const only = opts.only ? new Set(opts.only) : null;
  const rows: FusionRow[] = [];
  let timer: Timer = 'wall-clock';
  for (const c of FUSION_CASES) {
    if (only && !only.has(c.fusion)) continue;
    const label = c.label(quick);
    opts.onCase?.(label, true);
    const f = await timeCase(rt, c, true, o);
    opts.onCase?.(label, false);
    const u = await timeCase(rt, c, false, o);
    timer = f.timer;
    rows.push({ fusion: c.fusion, workload: label, fusedMs: f.ms, unfusedMs: u.ms, speedup: u.ms / f.ms, enabled: fusionEnabled(c.fusion) });
  }
  return { adapter: adapterName(rt), timer: describeTimer(rt, timer), quick, warmup: o.warmup, repeats: o.repeats, rows };
}

/** The table: fusion, workload, fused ms, unfused ms, speed-up, current default. */
export function formatFusionBench(r: FusionBenchResult): string[] {
  const head = ['fusion', 'workload', 'fused ms', 'unfused ms', 'speed-up', 'on'];
  const body = r.rows.map((x) => [x.fusion, x.workload, x.fusedMs.toFixed(2), x.unfusedMs.toFixed(2), `${x.speedup.toFixed(2)}×`, x.enabled ? 'on' : 'off']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [
    `adapter   ${r.adapter}`,
    `timer     ${r.timer}; median of ${r.repeats} after ${r.warmup} warm-up${r.quick ? ' (--quick: tiny shapes, not a measurement)' : ''}`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
  ];
}
