// Cached autotuning of matmul and conv2d variants: measure the shape classes of a list of shapes, keep the fastest
// per class, and save the choices to the tuning cache (tune-cache.ts) under this adapter.
import type { Runtime } from '../runtime/runtime.js';
import {
  GRAFT_VERSION,
  cachedEntries,
  clearPending,
  pendingShapes,
  readTuneFile,
  saveTuned,
  tuneCachePath,
  tuneMode,
  type TuneEntry,
  type TuneFamily,
  type TuneShape,
} from './tune-cache.js';
import { matmulTuneClass, measureMatmul } from './matmul-tune.js';
import { defaultVariant } from './matmul-variants.js';
import { matmulDims } from './matmul.js';
import { conv2dTuneClass, measureConv2d } from './conv2d-tune.js';
import { conv2dDefaultVariant } from './conv2d.js';
import { convGeom } from './conv2d-geom.js';
import { tuneTimer } from './tune-time.js';

/** One tuned class, for reports. */
export interface TuneRow {
  family: TuneFamily;
  cls: string;
  variant: string;
  ms: number;
  runnerUp: string | null;
  runnerUpMs: number | null;
  /** The deterministic default for the measured shape, and its time there (null if it did not run). */
  defaultVariant: string;
  defaultMs: number | null;
  /** true: taken from the cache, nothing measured now. */
  cached: boolean;
  shape: TuneShape;
}

export interface TuneOptions {
  /** Measure again even when the class is cached (default false). */
  force?: boolean;
  /** Timed runs per candidate (default 3). */
  reps?: number;
  /** Called before each class is measured (progress). */
  onClass?: (family: TuneFamily, cls: string, index: number, total: number) => void;
}

export function tuneFamily(s: TuneShape): TuneFamily {
  return s.kind;
}

/** The shape class of a tuning shape. */
export function tuneClass(s: TuneShape): string {
  if (s.kind === 'matmul') {
    const aShape = s.transA ? [s.K, s.M] : [s.M, s.K];
    const bShape = s.transB ? [s.N, s.K] : [s.K, s.N];
    return matmulTuneClass(matmulDims(aShape, bShape, s.transA, s.transB));
  }
  return conv2dTuneClass(convGeom(s.x, s.w, s));
}

/** The deterministic (untuned) variant for a tuning shape. */
export function untunedVariant(rt: Runtime, s: TuneShape): string {
  if (s.kind === 'matmul') return defaultVariant(rt, s.M, s.N);
  return conv2dDefaultVariant(rt, s.x, s.w, s);
}

async function measure(rt: Runtime, s: TuneShape, reps: number, only?: readonly string[]): Promise<Record<string, number>> {
  return s.kind === 'matmul' ? measureMatmul(rt, s, reps, only ? [...only] : undefined) : measureConv2d(rt, s, reps, only);
}

/** Faster by at least 10% in the head-to-head, or the deterministic default is kept (timings on loaded CPU adapters are noisy). */
const MARGIN = 0.9;
/** Rounds of the head-to-head (two candidates only, so more rounds than the sweep). */
const H2H_REPS = 5;

/**
 * Measure every candidate on `shape`, then time the fastest against the deterministic default head to head
 * (round-robin again, max(reps, H2H_REPS) rounds, since one sweep on a loaded machine can flatter a variant): the
 * winner replaces the default only when it is at least 10% faster there. Returns the choice and the times (head-to-head ones for the two).
 */
async function pickVariant(rt: Runtime, shape: TuneShape, reps: number): Promise<{ variant: string; ms: Record<string, number> } | null> {
  const ms = await measure(rt, shape, reps);
  const ranked = Object.entries(ms).sort((a, b) => a[1] - b[1]);
  if (!ranked.length) return null;
  const winner = ranked[0]![0];
  const def = untunedVariant(rt, shape);
  if (winner === def || ms[def] === undefined) return { variant: winner, ms };
  const h2h = await measure(rt, shape, Math.max(reps, H2H_REPS), [winner, def]);
  const both = { ...ms, ...h2h };
  const w = both[winner]!;
  const d = both[def]!;
  return { variant: w < MARGIN * d ? winner : def, ms: both };
}

function row(rt: Runtime, cls: string, e: TuneEntry, cached: boolean): TuneRow {
  const ranked = Object.entries(e.ms).sort((a, b) => a[1] - b[1]);
  const second = ranked.find(([n]) => n !== e.variant) ?? null;
  const def = untunedVariant(rt, e.shape);
  return {
    family: e.shape.kind,
    cls,
    variant: e.variant,
    ms: e.ms[e.variant] ?? NaN,
    runnerUp: second?.[0] ?? null,
    runnerUpMs: second?.[1] ?? null,
    defaultVariant: def,
    defaultMs: e.ms[def] ?? null,
    cached,
    shape: e.shape,
  };
}

/**
 * Tune the shape classes of `shapes` (in any mode: this is an explicit request): classes already in the cache are
 * reported from it unless opts.force; every other class is measured on the largest of its shapes (by work), the
 * fastest variant is kept, and the new entries are saved to the cache file. Returns one row per class.
 */
export async function tuneShapes(rt: Runtime, shapes: readonly TuneShape[], opts: TuneOptions = {}): Promise<TuneRow[]> {
  const reps = opts.reps ?? 3;
  const work = (s: TuneShape): number => (s.kind === 'matmul' ? s.M * s.N * s.K * s.batch : s.x[0] * s.w[0] * s.w[1] * s.w[2] * s.w[3] * s.x[2] * s.x[3]);
  // family -> class -> the largest shape of the class
  const classes = new Map<TuneFamily, Map<string, TuneShape>>();
  for (const s of shapes) {
    const f = tuneFamily(s);
    let m = classes.get(f);
    if (!m) classes.set(f, (m = new Map()));
    const cls = tuneClass(s);
    const prev = m.get(cls);
    if (!prev || work(s) > work(prev)) m.set(cls, s);
  }
  const rows: TuneRow[] = [];
  const total = [...classes.values()].reduce((n, m) => n + m.size, 0);
  let index = 0;
  for (const [family, m] of classes) {
    const cached = opts.force ? {} : cachedEntriesAnyMode(rt, family);
    for (const [cls, shape] of m) {
      const hit = cached[cls];
      if (hit) {
        rows.push(row(rt, cls, hit, true));
        index++;
        continue;
      }
      opts.onClass?.(family, cls, index++, total);
      const pick = await pickVariant(rt, shape, reps);
      if (!pick) continue;
      const e: TuneEntry = { variant: pick.variant, ms: pick.ms, shape, timer: tuneTimer(rt), graft: GRAFT_VERSION, date: new Date().toISOString() };
      await saveTuned(rt, family, { [cls]: e }); // class by class: an interrupted run keeps what it measured
      rows.push(row(rt, cls, e, false));
    }
    clearPending(rt, family, [...m.keys()]);
  }
  return rows;
}

/** The cache's entries even in 'off' mode (tuneShapes is explicit, so it reads the file whatever the mode). */
function cachedEntriesAnyMode(rt: Runtime, family: TuneFamily): Record<string, TuneEntry> {
  return tuneMode(rt) === 'off' ? readAll(rt, family) : cachedEntries(rt, family);
}

function readAll(rt: Runtime, family: TuneFamily): Record<string, TuneEntry> {
  return { ...(readTuneFile(tuneCachePath(rt)).adapters[rt.adapterKey()]?.[family] ?? {}) };
}

/**
 * In 'on' mode: measure the shape classes that missed the cache since the last call (the kernels remember them
 * as they run, e.g. during a first training step) and save them; later calls of those shapes use the tuned
 * variants. In 'off' and 'cache' modes this does nothing and returns [].
 */
export async function tunePending(rt: Runtime, opts: TuneOptions = {}): Promise<TuneRow[]> {
  if (tuneMode(rt) !== 'on') return [];
  const pending = pendingShapes(rt);
  if (!pending.length) return [];
  await rt.sync();
  return tuneShapes(rt, pending.map((p) => p.shape), { ...opts, force: true });
}
