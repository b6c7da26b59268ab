// IDX files (the MNIST family's format), raw or gzipped: header validation, big-endian data, prefix reads.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { GraftError } from '../runtime/errors.js';

export type IdxDType = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  /** Dimensions as stored (dims[0] is the item count; after a limited read, the items actually read). */
  dims: number[];
  /** Row-major, host endianness. */
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDType; size: number }> = {
  0x08: { dtype: 'u8', size: 1 },
  0x09: { dtype: 'i8', size: 1 },
  0x0b: { dtype: 'i16', size: 2 },
  0x0c: { dtype: 'i32', size: 4 },
  0x0d: { dtype: 'f32', size: 4 },
  0x0e: { dtype: 'f64', size: 8 },
};

interface Header {
  dtype: IdxDType;
  size: number;
  dims: number[];
  headerBytes: number;
}

/** Parse the header (magic 00 00 <type> <ndim>, then ndim big-endian u32 sizes); null when more bytes are needed. */
function parseHeader(b: Uint8Array, name: string): Header | null {
  if (b.length < 4) return null;
  if (b[0] !== 0 || b[1] !== 0) {
    throw new GraftError(`${name}: not an IDX file (magic starts ${hex(b[0]!)} ${hex(b[1]!)}, expected 00 00)`);
  }
  const t = TYPES[b[2]!];
  if (!t) throw new GraftError(`${name}: unknown IDX data type ${hex(b[2]!)} (known: 08 09 0b 0c 0d 0e)`);
  const ndim = b[3]!;
  if (ndim < 1) throw new GraftError(`${name}: IDX header has 0 dimensions`);
  const headerBytes = 4 + 4 * ndim;
  if (b.length < headerBytes) return null;
  const v = new DataView(b.buffer, b.byteOffset, headerBytes);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(v.getUint32(4 + 4 * d, false));
  return { dtype: t.dtype, size: t.size, dims, headerBytes };
}

function hex(x: number): string {
  return x.toString(16).padStart(2, '0');
}

function itemCount(h: Header, limit: number | undefined, name: string): number {
  if (limit === undefined) return h.dims[0]!;
  if (!Number.isInteger(limit) || limit < 0) throw new GraftError(`${name}: limit must be a non-negative integer, got ${limit}`);
  return Math.min(limit, h.dims[0]!);
}

function itemBytes(h: Header): number {
  return h.dims.slice(1).reduce((a, d) => a * d, 1) * h.size;
}

/** Big-endian payload -> typed array of `dtype`. */
function decodeData(b: Uint8Array, h: Header, count: number): IdxData {
  const n = count * (itemBytes(h) / h.size);
  const start = h.headerBytes;
  if (h.dtype === 'u8') return b.slice(start, start + n);
  if (h.dtype === 'i8') return new Int8Array(b.slice(start, start + n).buffer);
  const v = new DataView(b.buffer, b.byteOffset + start, n * h.size);
  switch (h.dtype) {
    case 'i16': {
      const o = new Int16Array(n);
      for (let i = 0; i < n; i++) o[i] = v.getInt16(2 * i, false);
      return o;
    }
    case 'i32': {
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) o[i] = v.getInt32(4 * i, false);
      return o;
    }
    case 'f32': {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = v.getFloat32(4 * i, false);
      return o;
    }
    case 'f64': {
      const o = new Float64Array(n);
      for (let i = 0; i < n; i++) o[i] = v.getFloat64(8 * i, false);
      return o;
    }
  }
}

/**
 * Parse IDX bytes (already decompressed). Without `limit` the payload must match the header exactly;
 * with `limit` only the first `limit` items are read (and must be present). `name` labels errors.
 */
export function parseIdx(bytes: Uint8Array, name = 'IDX data', limit?: number): IdxArray {
  const h = parseHeader(bytes, name);
  if (!h) throw new GraftError(`${name}: truncated IDX header (${bytes.length} bytes)`);
  const count = itemCount(h, limit, name);
  const need = h.headerBytes + count * itemBytes(h);
  const have = bytes.length;
  if (have < need) {
    throw new GraftError(
      `${name}: truncated IDX file: header [${h.dims.join(', ')}] ${h.dtype} needs ${need} bytes${limit !== undefined ? ` for ${count} items` : ''}, found ${have}`,
    );
  }
  if (limit === undefined && have > need) throw new GraftError(`${name}: ${have - need} unexpected bytes after the IDX data [${h.dims.join(', ')}] ${h.dtype}`);
  return { dtype: h.dtype, dims: [count, ...h.dims.slice(1)], data: decodeData(bytes, h, count) };
}

/**
 * Read an IDX file (gzip detected by its magic bytes). With `limit`, decompression stops once the header and
 * the first `limit` items are in, so a few items of a large file load fast.
 */
export async function readIdx(path: string, opts: { limit?: number } = {}): Promise<IdxArray> {
  let gz: boolean;
  try {
    const fh = await open(path, 'r');
    const magic = new Uint8Array(2);
    await fh.read(magic, 0, 2, 0);
    await fh.close();
    gz = magic[0] === 0x1f && magic[1] === 0x8b;
  } catch (e) {
    throw new GraftError(`${path}: cannot read IDX file (${errCode(e)})`);
  }
  const bytes = await readPrefix(path, gz, opts.limit);
  return parseIdx(bytes, path, opts.limit);
}

function errCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message;
}

/** The (decompressed) bytes of the file, or only as many as the header + `limit` items need. */
function readPrefix(path: string, gz: boolean, limit: number | undefined): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let need = Infinity;
    let done = false;
    const src = createReadStream(path);
    const stream = gz ? src.pipe(createGunzip()) : src;
    const finish = (): void => {
      if (done) return;
      done = true;
      src.destroy();
      if (stream !== src) stream.destroy();
      resolve(concat(chunks, total));
    };
    const fail = (what: string) => (e: Error) => {
      if (done) return;
      done = true;
      src.destroy();
      reject(new GraftError(`${path}: ${what} (${errCode(e)})`));
    };
    src.on('error', fail('cannot read IDX file'));
    if (stream !== src) stream.on('error', fail('corrupt or truncated gzip data'));
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      total += c.length;
      if (limit !== undefined && need === Infinity) {
        try {
          const h = parseHeader(concat(chunks, total), path);
          if (h) need = h.headerBytes + itemCount(h, limit, path) * itemBytes(h);
        } catch (e) {
          done = true;
          src.destroy();
          reject(e);
          return;
        }
      }
      if (total >= need) finish();
    });
    stream.on('end', finish);
  });
}

function concat(chunks: Buffer[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
