// Sharded safetensors checkpoints: model.safetensors.index.json maps each tensor to its shard file.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CheckpointError } from '../runtime/errors.js';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';
import type { StDType } from './dtypes.js';

/** Read-only view over one file or a set of shards, opened lazily, tensor by tensor. */
export class CheckpointReader {
  private constructor(
    private readonly files: Map<string, SafetensorsFile>,
    private readonly where: Map<string, string>,
  ) {}

  /** Open `model.safetensors` or `model.safetensors.index.json` (shards in the same folder). */
  static async open(path: string): Promise<CheckpointReader> {
    if (!path.endsWith('.index.json')) {
      const f = await SafetensorsFile.open(path);
      return new CheckpointReader(new Map([[path, f]]), new Map(f.names.map((n) => [n, path])));
    }
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await readFile(path, 'utf8')) as typeof index;
    } catch (e) {
      throw new CheckpointError(`${path}: cannot read shard index (${(e as Error).message})`);
    }
    if (!index.weight_map || typeof index.weight_map !== 'object') throw new CheckpointError(`${path}: no weight_map in shard index`);
    const files = new Map<string, SafetensorsFile>();
    const where = new Map<string, string>();
    try {
      for (const [name, shard] of Object.entries(index.weight_map)) {
        const p = join(dirname(path), shard);
        if (!files.has(p)) files.set(p, await SafetensorsFile.open(p));
        if (!files.get(p)!.header.tensors.has(name)) throw new CheckpointError(`${path}: index puts '${name}' in ${shard}, which does not contain it`);
        where.set(name, p);
      }
    } catch (e) {
      for (const f of files.values()) await f.close();
      throw e;
    }
    return new CheckpointReader(files, where);
  }

  get names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  async read(name: string): Promise<{ shape: number[]; dtype: StDType; data: Float32Array }> {
    return this.file(name).read(name);
  }

  private file(name: string): SafetensorsFile {
    const p = this.where.get(name);
    if (!p) throw new CheckpointError(`checkpoint has no tensor named '${name}'`);
    return this.files.get(p)!;
  }

  async close(): Promise<void> {
    for (const f of this.files.values()) await f.close();
  }
}
