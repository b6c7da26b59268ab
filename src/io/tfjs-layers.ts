// TensorFlow.js layers format (model.json + binary shards): topology and weights, read tensor by tensor.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CheckpointError } from '../runtime/errors.js';
import { fromHalfBits } from '../runtime/half.js';

/** One Keras layer from modelTopology (name, class and config as Keras wrote them). */
export interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

interface ModelJson {
  format?: string;
  modelTopology?: { model_config?: { class_name?: string; config?: { layers?: KerasLayer[] } }; config?: { layers?: KerasLayer[] } };
  weightsManifest?: { paths: string[]; weights: ManifestWeight[] }[];
}

const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2, bool: 1 };

export interface WeightEntry {
  name: string;
  shape: number[];
  /** Group index and byte offset of the weight in its group's concatenated shards. */
  group: number;
  offset: number;
  bytes: number;
  spec: ManifestWeight;
}

/** A TF.js layers model on disk; `read(name)` loads one weight as float32. */
export class TfjsLayersModel {
  private constructor(
    readonly dir: string,
    readonly layers: KerasLayer[],
    readonly weights: Map<string, WeightEntry>,
    private readonly groups: { paths: string[]; sizes: number[] }[],
  ) {}

  static async open(modelJsonPath: string): Promise<TfjsLayersModel> {
    let m: ModelJson;
    try {
      m = JSON.parse(await readFile(modelJsonPath, 'utf8')) as ModelJson;
    } catch (e) {
      throw new CheckpointError(`${modelJsonPath}: cannot read TF.js model.json (${(e as Error).message})`);
    }
    const layers = m.modelTopology?.model_config?.config?.layers ?? m.modelTopology?.config?.layers;
    if (!layers || !m.weightsManifest) throw new CheckpointError(`${modelJsonPath}: not a TF.js layers model (no layers or weightsManifest)`);
    const dir = dirname(modelJsonPath);
    const weights = new Map<string, WeightEntry>();
    const groups: { paths: string[]; sizes: number[] }[] = [];
    for (const [g, grp] of m.weightsManifest.entries()) {
      const sizes: number[] = [];
      for (const p of grp.paths) {
        const s = await stat(join(dir, p)).catch(() => null);
        if (!s) throw new CheckpointError(`${modelJsonPath}: weight shard ${p} is missing`);
        sizes.push(s.size);
      }
      groups.push({ paths: grp.paths, sizes });
      let offset = 0;
      for (const w of grp.weights) {
        const stored = w.quantization?.dtype ?? w.dtype;
        const per = STORED_BYTES[stored];
        if (per === undefined) throw new CheckpointError(`${modelJsonPath}: weight '${w.name}' has unsupported dtype ${stored}`);
        const bytes = w.shape.reduce((a, b) => a * b, 1) * per;
        weights.set(w.name, { name: w.name, shape: w.shape, group: g, offset, bytes, spec: w });
        offset += bytes;
      }
      const total = sizes.reduce((a, b) => a + b, 0);
      if (total !== offset) {
        throw new CheckpointError(
          `${modelJsonPath}: weight group ${g} shards hold ${total} bytes but the manifest's weights need ${offset}${total < offset ? ' (truncated shard?)' : ''}`,
        );
      }
    }
    return new TfjsLayersModel(dir, layers, weights, groups);
  }

  /** One weight as float32, reading only the shard bytes it spans. */
  async read(name: string): Promise<{ shape: number[]; data: Float32Array }> {
    const w = this.weights.get(name);
    if (!w) throw new CheckpointError(`TF.js model has no weight named '${name}'`);
    const raw = await this.readRange(w.group, w.offset, w.bytes);
    return { shape: w.shape, data: decode(raw, w.spec) };
  }

  private async readRange(group: number, offset: number, bytes: number): Promise<Uint8Array> {
    const g = this.groups[group]!;
    const out = new Uint8Array(bytes);
    let pos = 0;
    let shardStart = 0;
    for (let i = 0; i < g.paths.length && pos < bytes; i++) {
      const size = g.sizes[i]!;
      const shardEnd = shardStart + size;
      const want = offset + pos;
      if (want < shardEnd) {
        const n = Math.min(bytes - pos, shardEnd - want);
        const fh: FileHandle = await open(join(this.dir, g.paths[i]!), 'r');
        try {
          const { bytesRead } = await fh.read(out, pos, n, want - shardStart);
          if (bytesRead !== n) throw new CheckpointError(`${g.paths[i]}: short read`);
        } finally {
          await fh.close();
        }
        pos += n;
      }
      shardStart = shardEnd;
    }
    return out;
  }
}

function decode(raw: Uint8Array, w: ManifestWeight): Float32Array {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const q = w.quantization;
  if (q) {
    const n = raw.byteLength / STORED_BYTES[q.dtype]!;
    const out = new Float32Array(n);
    if (q.dtype === 'float16') for (let i = 0; i < n; i++) out[i] = fromHalfBits(dv.getUint16(2 * i, true));
    else {
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      for (let i = 0; i < n; i++) out[i] = (q.dtype === 'uint8' ? dv.getUint8(i) : dv.getUint16(2 * i, true)) * scale + min;
    }
    return out;
  }
  if (w.dtype === 'float32') return new Float32Array(raw.slice().buffer);
  if (w.dtype === 'int32') return Float32Array.from(new Int32Array(raw.slice().buffer));
  return Float32Array.from(raw);
}
