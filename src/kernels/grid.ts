// Dispatch-size helpers: split large 1-D launches over x/y to respect the per-dimension limit.

/** Workgroups for `n` threads in groups of `wg`, as [x, y]; shaders use index = gid.x + gid.y * nwg.x * wg. */
export function grid1d(n: number, wg = 256, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
