// safetensors read/write, validated like the reference implementation; reads tensor by tensor from disk.
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../runtime/errors.js';
import { toHalfBits } from '../runtime/half.js';
import { decodeToF32, encodeF32, isStDType, ST_DTYPE_BYTES, type StDType } from './dtypes.js';

/** Header cap of the reference implementation (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: StDType;
  shape: number[];
  /** Byte range within the data section (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file: 8 + header length. */
  dataStart: number;
}

const where = (file: string) => (file ? `${file}: ` : '');

/**
 * Validate a header JSON against the data-section length: known dtypes, non-negative integer
 * shapes, byte length = numel × dtype size, offsets contiguous from 0 with no gaps or overlaps,
 * the last ending exactly at the end of the file.
 */
export function parseHeader(json: string, headerLen: number, dataBytes: number, file = ''): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new CheckpointError(`${where(file)}safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(`${where(file)}safetensors header is not a JSON object`);
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Object.values(v).some((x) => typeof x !== 'string')) {
        throw new CheckpointError(`${where(file)}__metadata__ must map strings to strings`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info?.dtype !== 'string' || !isStDType(info.dtype)) {
      throw new CheckpointError(`${where(file)}tensor '${name}': unknown dtype ${JSON.stringify(info?.dtype)}`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(`${where(file)}tensor '${name}': invalid shape ${JSON.stringify(shape)}`);
    }
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0]) {
      throw new CheckpointError(`${where(file)}tensor '${name}': invalid data_offsets ${JSON.stringify(off)}`);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = numel * ST_DTYPE_BYTES[info.dtype];
    if (off[1] - off[0] !== expected) {
      throw new CheckpointError(
        `${where(file)}tensor '${name}': ${off[1] - off[0]} bytes stored but shape [${(shape as number[]).join(', ')}] of ${info.dtype} needs ${expected}`,
      );
    }
    tensors.set(name, { name, dtype: info.dtype, shape: shape as number[], begin: off[0] as number, end: off[1] as number });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of sorted) {
    if (t.begin !== cursor) {
      throw new CheckpointError(
        `${where(file)}tensor '${t.name}': data starts at byte ${t.begin} but the previous tensor ends at ${cursor} (${t.begin < cursor ? 'overlap' : 'gap'})`,
      );
    }
    cursor = t.end;
  }
  if (cursor !== dataBytes) {
    throw new CheckpointError(
      `${where(file)}data section is ${dataBytes} bytes but the tensors cover ${cursor}${dataBytes < cursor ? ' (file truncated?)' : ''}`,
    );
  }
  return { tensors, metadata, dataStart: 8 + headerLen };
}

/** An open safetensors file; tensors are read one at a time (peak memory ≈ the largest tensor). */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private fh: FileHandle,
    readonly header: SafetensorsHeader,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new CheckpointError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      const size = (await fh.stat()).size;
      if (size < 8) throw new CheckpointError(`${path}: file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = Buffer.alloc(8);
      await fh.read(lenBuf, 0, 8, 0);
      const len = lenBuf.readBigUInt64LE(0);
      if (len > BigInt(MAX_HEADER_BYTES)) throw new CheckpointError(`${path}: header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte cap`);
      const n = Number(len);
      if (8 + n > size) throw new CheckpointError(`${path}: header length ${n} runs past the end of the ${size}-byte file (truncated?)`);
      const hb = Buffer.alloc(n);
      await fh.read(hb, 0, n, 8);
      if (hb[0] !== 0x7b) throw new CheckpointError(`${path}: header does not start with '{'`);
      let json: string;
      try {
        json = new TextDecoder('utf-8', { fatal: true }).decode(hb);
      } catch {
        throw new CheckpointError(`${path}: header is not valid UTF-8`);
      }
      return new SafetensorsFile(path, fh, parseHeader(json, n, size - 8 - n, path));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new CheckpointError(`${this.path}: no tensor named '${name}'`);
    return t;
  }

  /** Raw little-endian bytes of one tensor. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    const buf = new Uint8Array(t.end - t.begin);
    const { bytesRead } = await this.fh.read(buf, 0, buf.byteLength, this.header.dataStart + t.begin);
    if (bytesRead !== buf.byteLength) throw new CheckpointError(`${this.path}: tensor '${name}' is truncated`);
    return buf;
  }

  /** One tensor as float32 (F16/BF16/ints converted). */
  async read(name: string): Promise<{ shape: number[]; dtype: StDType; data: Float32Array }> {
    const t = this.info(name);
    return { shape: t.shape, dtype: t.dtype, data: decodeToF32(await this.readBytes(name), t.dtype) };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array;
  /** Stored dtype (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
}

/**
 * Write tensors (in the given order) atomically: to `path.tmp-<pid>`, fsync, then rename, so a
 * crash never leaves a half-written file under `path`. Header padded with spaces to 8 bytes.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, TensorToWrite]>,
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const entries = [...tensors];
  let offset = 0;
  for (const [name, t] of entries) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new CheckpointError(`writing '${name}': shape [${t.shape.join(', ')}] needs ${numel} values, got ${t.data.length}`);
    const dtype = t.dtype ?? 'F32';
    const bytes = numel * ST_DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(hb.byteLength));
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(lenBuf);
    await fh.write(hb);
    for (const [, t] of entries) await fh.write(encodeF32(t.data, t.dtype ?? 'F32', toHalfBits));
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
