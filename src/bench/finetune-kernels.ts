// Per-kernel GPU time of one recorded step: timeGpu's per-dispatch timestamps summed by kernel name, largest first.
import type { Runtime } from '../runtime/runtime.js';

/** One kernel's share of a step. */
export interface KernelTime {
  kernel: string;
  ms: number;
  /** Dispatches of this kernel in the step. */
  count: number;
  /** ms / the timed total. */
  share: number;
}

export interface KernelBreakdown {
  /** Sum of every timed dispatch (each in its own pass, so pass overhead is included). */
  totalMs: number;
  /** Dispatches timed / recorded in the step (timestamp slots are limited). */
  timedDispatches: number;
  dispatches: number;
  /** The `top` largest kernels. */
  top: KernelTime[];
  /** Every kernel, largest first. */
  all: KernelTime[];
}

/** Timestamp-query slots per timed step (2 queries each; WebGPU allows 4096 queries per set). */
export const MAX_TIMED_DISPATCHES = 2048;

/** Aggregate per-dispatch entries by label, largest total first. */
export function aggregateKernels(entries: readonly { label: string; ms: number }[], top = 12): Omit<KernelBreakdown, 'dispatches'> {
  const by = new Map<string, { ms: number; count: number }>();
  let totalMs = 0;
  for (const e of entries) {
    const k = by.get(e.label) ?? { ms: 0, count: 0 };
    k.ms += e.ms;
    k.count++;
    by.set(e.label, k);
    totalMs += e.ms;
  }
  const all = [...by].map(([kernel, v]) => ({ kernel, ms: v.ms, count: v.count, share: totalMs > 0 ? v.ms / totalMs : 0 })).sort((a, b) => b.ms - a.ms);
  return { totalMs, timedDispatches: entries.length, top: all.slice(0, top), all };
}

/**
 * Time one step recorded by `record` (which must not submit) with a timestamp pair around every dispatch.
 * Returns null when the device has no timestamp-query (the step still runs). `dispatches` sizes the query set.
 */
export async function kernelBreakdown<T>(rt: Runtime, record: () => T, dispatches: number, top = 12): Promise<{ breakdown: KernelBreakdown | null; result: T }> {
  let result: T | undefined;
  const d0 = rt.stats.dispatches;
  const capacity = Math.max(1, Math.min(MAX_TIMED_DISPATCHES, dispatches + 16));
  const t = await rt.timeGpu(
    () => {
      result = record();
    },
    { perDispatch: true, capacity },
  );
  const n = rt.stats.dispatches - d0;
  if (!t) return { breakdown: null, result: result as T };
  return { breakdown: { ...aggregateKernels(t.entries, top), dispatches: n }, result: result as T };
}
