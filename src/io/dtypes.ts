// Checkpoint dtypes (safetensors names) and their conversion to float32.
import { fromHalfBits } from '../runtime/half.js';

export type StDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const ST_DTYPE_BYTES: Record<StDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isStDType(s: string): s is StDType {
  return Object.prototype.hasOwnProperty.call(ST_DTYPE_BYTES, s);
}

/** Decode little-endian raw bytes of `dtype` to float32 values (ints widened; I64 must fit 2^53). */
export function decodeToF32(bytes: Uint8Array, dtype: StDType): Float32Array {
  const n = bytes.byteLength / ST_DTYPE_BYTES[dtype];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = fromHalfBits(dv.getUint16(2 * i, true));
      break;
    case 'BF16': {
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < n; i++) {
        u[0] = dv.getUint16(2 * i, true) << 16;
        out[i] = f[0]!;
      }
      break;
    }
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      break;
  }
  return out;
}

/** Encode float32 values as little-endian bytes of a float dtype (F32, F16 round-to-nearest-even, BF16 round-to-nearest-even). */
export function encodeF32(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16', toHalf: (v: number) => number): Uint8Array {
  const out = new Uint8Array(values.length * ST_DTYPE_BYTES[dtype]);
  const dv = new DataView(out.buffer);
  if (dtype === 'F32') for (let i = 0; i < values.length; i++) dv.setFloat32(4 * i, values[i]!, true);
  else if (dtype === 'F16') for (let i = 0; i < values.length; i++) dv.setUint16(2 * i, toHalf(values[i]!), true);
  else {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < values.length; i++) {
      f[0] = values[i]!;
      const x = u[0]!;
      const isNaN = (x & 0x7fffffff) > 0x7f800000;
      const r = isNaN ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
      dv.setUint16(2 * i, r & 0xffff, true);
    }
  }
  return out;
}
