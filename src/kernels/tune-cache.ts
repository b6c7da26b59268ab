// Kernel-variant tuning cache: the tuning mode (off / cache / on), the JSON file of tuned choices keyed by adapter,
// kernel family and shape class, and the per-runtime lookup the kernels call when they pick a variant.
//
// File (default <cacheDir>/tuning.json, else $GRAFT_TUNE_CACHE, else configureTuning(rt, { path })):
//   { "format": "graft-tuning", "version": 1,
//     "adapters": { "<rt.adapterKey()>": { "matmul": { "<class>": TuneEntry, ... }, "conv2d": { ... } } } }
// Written atomically (temp file + rename) after re-reading the file, so entries of other adapters (and other
// processes' classes) are kept. A corrupt or foreign file gives one warning and is treated as empty.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { cacheDir } from '../io/cache.js';
import { writeFileAtomic } from '../io/atomic.js';

/**
 * off:   never read the file, never measure: each kernel's deterministic default (adapter features + shape).
 * cache: use tuned choices from the file; a class missing there gets the deterministic default, nothing is measured.
 * on:    like cache, and shape classes that miss are remembered; `tunePending(rt)` measures them once and saves them.
 */
export type TuneMode = 'off' | 'cache' | 'on';
export const TUNE_MODES: readonly TuneMode[] = ['off', 'cache', 'on'];

/** Kernel families with tunable variants. */
export type TuneFamily = 'matmul' | 'conv2d';

/** A shape to measure a class on (the first shape of the class seen, or one from a model's list). */
export type TuneShape =
  | { kind: 'matmul'; M: number; N: number; K: number; batch: number; transA: boolean; transB: boolean }
  | {
      kind: 'conv2d';
      /** x [N, C, H, W] */
      x: [number, number, number, number];
      /** w [K, C/groups, R, S] */
      w: [number, number, number, number];
      stride: [number, number];
      padding: [number, number];
      dilation: [number, number];
      groups: number;
    };

/** One tuned shape class. */
export interface TuneEntry {
  variant: string;
  /** Best measured ms of every candidate that ran (on `shape`); the chosen and the default from their head-to-head. */
  ms: Record<string, number>;
  /** The shape measured. */
  shape: TuneShape;
  /** 'timestamps' (GPU timestamp queries) or 'wall' (wall clock around a sync). */
  timer: 'timestamps' | 'wall';
  graft: string;
  /** ISO date of the measurement. */
  date: string;
}

export type AdapterEntries = Partial<Record<TuneFamily, Record<string, TuneEntry>>>;

export interface TuneFile {
  format: 'graft-tuning';
  version: 1;
  adapters: Record<string, AdapterEntries>;
}

export const TUNE_FORMAT = 'graft-tuning';
/** Written into each entry (the package version; keep in step with package.json). */
export const GRAFT_VERSION = '0.1.0';

let processDefault: TuneMode = 'off';

/** The mode used when neither configureTuning nor $GRAFT_TUNE says otherwise ('off' unless changed; the CLI sets 'cache'). */
export function setDefaultTuneMode(mode: TuneMode): void {
  processDefault = checkMode(mode, 'setDefaultTuneMode');
}

const isMode = (m: string): m is TuneMode => (TUNE_MODES as readonly string[]).includes(m);

function checkMode(m: string, where: string): TuneMode {
  if (!isMode(m)) throw new GraftError(`${where}: tuning mode must be one of ${TUNE_MODES.join(', ')}, got '${m}'`);
  return m;
}

interface State {
  mode?: TuneMode;
  path?: string;
  /** This adapter's entries from the file (loaded on first lookup), by family then class. */
  loaded: AdapterEntries | null;
  /** Classes that missed in 'on' mode, with the first shape seen (family -> class -> shape). */
  pending: Map<TuneFamily, Map<string, TuneShape>>;
}

const states = new WeakMap<Runtime, State>();

function state(rt: Runtime): State {
  let s = states.get(rt);
  if (!s) states.set(rt, (s = { loaded: null, pending: new Map() }));
  return s;
}

/** Per-runtime mode and/or cache path (both optional; undefined restores the env/default). Drops loaded entries. */
export function configureTuning(rt: Runtime, o: { mode?: TuneMode; path?: string }): void {
  const s = state(rt);
  if ('mode' in o) s.mode = o.mode === undefined ? undefined : checkMode(o.mode, 'configureTuning');
  if ('path' in o) s.path = o.path === undefined ? undefined : resolve(o.path);
  s.loaded = null;
  s.pending.clear();
}

/** configureTuning's mode, else $GRAFT_TUNE, else the process default. */
export function tuneMode(rt: Runtime): TuneMode {
  const s = states.get(rt);
  if (s?.mode) return s.mode;
  const env = process.env.GRAFT_TUNE;
  if (env) return checkMode(env.trim().toLowerCase(), '$GRAFT_TUNE');
  return processDefault;
}

/** configureTuning's path, else $GRAFT_TUNE_CACHE, else <cacheDir()>/tuning.json. */
export function tuneCachePath(rt: Runtime): string {
  const p = states.get(rt)?.path;
  if (p) return p;
  const env = process.env.GRAFT_TUNE_CACHE;
  return env ? resolve(env) : join(cacheDir(), 'tuning.json');
}

const warned = new Set<string>();

function warnOnce(path: string, why: string): void {
  if (warned.has(path)) return;
  warned.add(path);
  console.warn(`graft: ignoring tuning cache ${path} (${why}); kernels use their default variants until it is re-tuned`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function isEntry(v: unknown): v is TuneEntry {
  return isObj(v) && typeof v.variant === 'string' && isObj(v.ms) && isObj(v.shape) && typeof v.shape.kind === 'string';
}

/** Parse file text; null (after one warning per path) when it is not a tuning file of this format. */
export function parseTuneFile(text: string, path: string): TuneFile | null {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    warnOnce(path, `not valid JSON: ${(e as Error).message}`);
    return null;
  }
  if (!isObj(j) || j.format !== TUNE_FORMAT || j.version !== 1 || !isObj(j.adapters)) {
    warnOnce(path, `not a ${TUNE_FORMAT} version 1 file`);
    return null;
  }
  // keep only well-formed entries; a bad entry is dropped, not fatal
  const adapters: Record<string, AdapterEntries> = {};
  for (const [key, fams] of Object.entries(j.adapters)) {
    if (!isObj(fams)) continue;
    const out: AdapterEntries = {};
    for (const fam of ['matmul', 'conv2d'] as const) {
      const classes = fams[fam];
      if (!isObj(classes)) continue;
      const ok: Record<string, TuneEntry> = {};
      for (const [cls, e] of Object.entries(classes)) if (isEntry(e)) ok[cls] = e;
      out[fam] = ok;
    }
    adapters[key] = out;
  }
  return { format: TUNE_FORMAT, version: 1, adapters };
}

/** Read the file at `path`: an empty tuning file when it is missing, corrupt or foreign (never throws). */
export function readTuneFile(path: string): TuneFile {
  const empty: TuneFile = { format: TUNE_FORMAT, version: 1, adapters: {} };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warnOnce(path, `unreadable: ${(e as Error).message}`);
    return empty;
  }
  return parseTuneFile(text, path) ?? empty;
}

function loaded(rt: Runtime): AdapterEntries {
  const s = state(rt);
  if (!s.loaded) s.loaded = readTuneFile(tuneCachePath(rt)).adapters[rt.adapterKey()] ?? {};
  return s.loaded;
}

/**
 * The tuned variant for `cls`, or undefined (then the kernel uses its deterministic default). Reads nothing in
 * 'off' mode; in 'on' mode a miss is remembered with `shape` for tunePending. `usable` rejects a cached name
 * this runtime cannot run (unknown name, missing feature, shape outside the variant): that counts as a miss.
 */
export function tunedVariant(rt: Runtime, family: TuneFamily, cls: string, shape: () => TuneShape, usable: (name: string) => boolean): string | undefined {
  const mode = tuneMode(rt);
  if (mode === 'off') return undefined;
  const name = loaded(rt)[family]?.[cls]?.variant;
  if (name !== undefined && usable(name)) return name;
  if (mode === 'on') {
    const p = state(rt).pending;
    let m = p.get(family);
    if (!m) p.set(family, (m = new Map()));
    if (!m.has(cls)) m.set(cls, shape());
  }
  return undefined;
}

/** This runtime's cached entries of `family` (loading the file if needed; empty in 'off' mode). */
export function cachedEntries(rt: Runtime, family: TuneFamily): Record<string, TuneEntry> {
  if (tuneMode(rt) === 'off') return {};
  return { ...(loaded(rt)[family] ?? {}) };
}

/** Classes that missed in 'on' mode since the last tunePending, with the first shape seen. */
export function pendingShapes(rt: Runtime): { family: TuneFamily; cls: string; shape: TuneShape }[] {
  const out: { family: TuneFamily; cls: string; shape: TuneShape }[] = [];
  for (const [family, m] of state(rt).pending) for (const [cls, shape] of m) out.push({ family, cls, shape });
  return out;
}

/** Forget pending classes (after they were measured). */
export function clearPending(rt: Runtime, family: TuneFamily, classes: readonly string[]): void {
  const m = state(rt).pending.get(family);
  for (const c of classes) m?.delete(c);
}

/**
 * Merge `entries` (class -> entry) of `family` for this adapter into the file (re-read just before writing, so
 * other adapters' and other classes' entries are kept) and into this runtime's loaded entries. Returns the path.
 */
export async function saveTuned(rt: Runtime, family: TuneFamily, entries: Record<string, TuneEntry>): Promise<string> {
  const path = tuneCachePath(rt);
  const file = readTuneFile(path);
  const key = rt.adapterKey();
  const mine = (file.adapters[key] ??= {});
  mine[family] = { ...(mine[family] ?? {}), ...entries };
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, JSON.stringify(file, null, 1) + '\n');
  } catch (e) {
    throw new GraftError(`cannot write the tuning cache ${path}: ${(e as Error).message}`);
  }
  state(rt).loaded = mine;
  return path;
}
