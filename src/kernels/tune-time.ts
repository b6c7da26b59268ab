// Timing for the variant tuners: candidates timed round-robin (GPU timestamps when the device has them, else wall clock).
import type { Runtime } from '../runtime/runtime.js';

/** Which clock the tuners use on this runtime. */
export const tuneTimer = (rt: Runtime): 'timestamps' | 'wall' => (rt.features.timestamps ? 'timestamps' : 'wall');

/** A timed region shorter than this repeats the call inside it (timestamp ticks are coarse: ~0.066 ms on lavapipe). */
const MIN_TIMED_MS = 2;
const MAX_INNER = 32;
/** From the second round on, candidates slower than this many times the best are dropped (one sample may be a spike). */
const PRUNE = 3;
/** Candidates whose single probe run is this many times the best probe are not timed further. */
const HOPELESS = 10;

/** ms per call of fn, timing `inner` calls in one region. */
async function timed(rt: Runtime, fn: () => void, inner: number): Promise<number> {
  const body = () => {
    for (let i = 0; i < inner; i++) fn();
  };
  const t0 = performance.now();
  const t = await rt.timeGpu(body);
  return (t ? t.totalMs : performance.now() - t0) / inner;
}

/**
 * Best ms per call of each candidate (fn records GPU work). Each first runs once untimed (pipeline compilation,
 * which a CPU driver may do inside the first pass, and buffer-pool growth; a candidate that throws there is left
 * out), then once timed to size its timed region (short work repeats up to 32 times, about MIN_TIMED_MS), then
 * the candidates (less those whose probe took over HOPELESS× the best probe) are timed round-robin `reps` times, so load from other processes hits all of them alike; from
 * the second round on, those over PRUNE× the best are not timed again.
 */
export async function timeVariants(rt: Runtime, candidates: readonly { name: string; fn: () => void }[], reps: number): Promise<Record<string, number>> {
  const alive: { name: string; fn: () => void; inner: number; best: number; probe: number }[] = [];
  for (const c of candidates) {
    try {
      c.fn();
      await rt.sync();
    } catch {
      // a variant that cannot run this shape here (e.g. its grid exceeds the adapter limits) is not a candidate
      await rt.sync().catch(() => {});
      continue;
    }
    const probe = await timed(rt, c.fn, 1);
    const inner = Math.min(MAX_INNER, Math.max(1, Math.ceil(MIN_TIMED_MS / Math.max(probe, 0.01))));
    // a long run is already a sample; a short one only sized the region
    alive.push({ ...c, inner, best: inner === 1 ? probe : Infinity, probe });
  }
  // a probe over HOPELESS× the best probe is a clear loser even on a loaded machine: its probe is its time
  const bestProbe = Math.min(...alive.map((c) => c.probe));
  for (const c of alive) if (c.probe > HOPELESS * bestProbe) c.best = Math.min(c.best, c.probe);
  let round = alive.filter((c) => c.probe <= HOPELESS * bestProbe);
  for (let r = 0; r < reps; r++) {
    for (const c of round) c.best = Math.min(c.best, await timed(rt, c.fn, c.inner));
    const best = Math.min(...alive.map((c) => c.best));
    if (r >= 1) round = alive.filter((c) => c.best <= PRUNE * best);
  }
  return Object.fromEntries(alive.map((c) => [c.name, c.best]));
}
