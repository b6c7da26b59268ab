// Timing for the variant tuners: best of a few runs (GPU timestamps when the device has them, else wall clock).
import type { Runtime } from '../runtime/runtime.js';

/** Which clock timeBest uses on this runtime. */
export const tuneTimer = (rt: Runtime): 'timestamps' | 'wall' => (rt.features.timestamps ? 'timestamps' : 'wall');

/**
 * Best time in ms of `reps` runs of fn (which records GPU work) after one warm-up run (pipeline compile, buffer
 * pool). With timestamps the warm-up is timed too and, when it is already slower than `giveUpMs`, the candidate
 * is not run again (it cannot win); wall-clock warm-ups include compilation and are never counted.
 */
export async function timeBest(rt: Runtime, fn: () => void, reps: number, giveUpMs = Infinity): Promise<number> {
  const once = async (): Promise<[number, boolean]> => {
    const t0 = performance.now();
    const t = await rt.timeGpu(fn);
    return t ? [t.totalMs, true] : [performance.now() - t0, false];
  };
  const [warm, gpu] = await once();
  let best = gpu ? warm : Infinity;
  if (best > 1.5 * giveUpMs) return best;
  for (let i = 0; i < reps; i++) {
    best = Math.min(best, (await once())[0]);
    if (best > giveUpMs) break;
  }
  return best;
}
