// expectClose: element-wise |a - ref| <= atol + rtol·|ref|, reporting the first mismatches with indices.
export interface Tol {
  atol?: number;
  rtol?: number;
}

export function compareClose(actual: ArrayLike<number>, ref: ArrayLike<number>, tol: Tol = {}): string | null {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-4;
  if (actual.length !== ref.length) return `length ${actual.length} != reference length ${ref.length}`;
  const bad: string[] = [];
  let count = 0;
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = actual[i]!;
    const r = ref[i]!;
    const err = Math.abs(a - r);
    const ok = err <= atol + rtol * Math.abs(r) || (Number.isNaN(a) && Number.isNaN(r)) || a === r;
    if (!ok) {
      count++;
      if (!(err <= maxErr)) maxErr = err;
      if (bad.length < 8) bad.push(`  [${i}] got ${a}, expected ${r} (|diff| ${err.toExponential(3)})`);
    }
  }
  if (!count) return null;
  return `${count}/${ref.length} elements differ (atol ${atol}, rtol ${rtol}, max |diff| ${maxErr.toExponential(3)}):\n${bad.join('\n')}`;
}

/** Throw with the first mismatches if `actual` is not close to `ref`. */
export function expectClose(actual: ArrayLike<number>, ref: ArrayLike<number>, tol: Tol = {}, what = ''): void {
  const msg = compareClose(actual, ref, tol);
  if (msg) throw new Error(`${what ? what + ': ' : ''}${msg}`);
}

/** Largest absolute element-wise difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
