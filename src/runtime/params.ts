// Uniform parameters for kernels: plain numbers are u32, wrap floats/ints with f32()/i32().

export class F32 {
  constructor(readonly v: number) {}
}
export class I32 {
  constructor(readonly v: number) {}
}
/** A kernel parameter: number = u32, F32 = f32, I32 = i32. Each takes 4 bytes, in declaration order. */
export type ParamValue = number | F32 | I32;

export const f32 = (v: number): F32 => new F32(v);
export const i32 = (v: number): I32 => new I32(v);

/** Write params as consecutive 4-byte scalars at `offset` (WGSL struct of scalars, no vec3 padding). */
export function writeParams(view: DataView, offset: number, params: readonly ParamValue[]): void {
  params.forEach((p, i) => {
    const o = offset + 4 * i;
    if (typeof p === 'number') {
      if (!Number.isInteger(p) || p < 0 || p > 0xffffffff) throw new RangeError(`u32 param #${i} out of range: ${p}`);
      view.setUint32(o, p, true);
    } else if (p instanceof F32) view.setFloat32(o, p.v, true);
    else view.setInt32(o, p.v, true);
  });
}
