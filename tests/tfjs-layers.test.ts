// TF.js layers reader: weights spanning shard boundaries, quantised weights, truncated shards, and the cache fetch marker.
import { mkdtempSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TfjsLayersModel } from '../src/io/tfjs-layers.js';
import { CheckpointError } from '../src/runtime/errors.js';
import { toHalfBits } from '../src/runtime/half.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

function makeModel(dir: string): { a: Float32Array; b: Float32Array; h: Float32Array } {
  const a = randArray(6, 1); // 24 bytes
  const b = randArray(10, 2); // 40 bytes
  const h = Float32Array.from([0.5, -2, 1024]);
  const halves = new Uint16Array(Array.from(h, toHalfBits));
  const all = Buffer.concat([Buffer.from(a.buffer), Buffer.from(b.buffer), Buffer.from(halves.buffer)]);
  // shards of 30 bytes: 'b' spans shard 1 and 2
  const paths: string[] = [];
  for (let i = 0; i * 30 < all.length; i++) {
    const p = `group1-shard${i + 1}.bin`;
    writeFileSync(join(dir, p), all.subarray(i * 30, (i + 1) * 30));
    paths.push(p);
  }
  const model = {
    format: 'layers-model',
    modelTopology: { model_config: { class_name: 'Model', config: { layers: [{ name: 'dense', class_name: 'Dense', config: { units: 2 }, inbound_nodes: [] }] } } },
    weightsManifest: [
      {
        paths,
        weights: [
          { name: 'dense/kernel', shape: [3, 2], dtype: 'float32' },
          { name: 'dense/bias', shape: [10], dtype: 'float32' },
          { name: 'q/half', shape: [3], dtype: 'float32', quantization: { dtype: 'float16' } },
        ],
      },
    ],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(model));
  return { a, b, h };
}

describe('TF.js layers format', () => {
  it('reads weights across shard boundaries and dequantises float16', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'graft-tfjs-'));
    const { a, b, h } = makeModel(dir);
    const m = await TfjsLayersModel.open(join(dir, 'model.json'));
    expect(m.layers.map((l) => l.name)).toEqual(['dense']);
    const ka = await m.read('dense/kernel');
    expect(ka.shape).toEqual([3, 2]);
    expectClose(ka.data, a, { atol: 0, rtol: 0 });
    expectClose((await m.read('dense/bias')).data, b, { atol: 0, rtol: 0 });
    expectClose((await m.read('q/half')).data, h, { atol: 0, rtol: 0 });
    await expect(m.read('nope')).rejects.toThrow(/no weight named 'nope'/);
  });

  it('rejects a truncated shard and a missing shard with the file named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'graft-tfjs-'));
    makeModel(dir);
    truncateSync(join(dir, 'group1-shard3.bin'), 3);
    await expect(TfjsLayersModel.open(join(dir, 'model.json'))).rejects.toThrow(CheckpointError);
    await expect(TfjsLayersModel.open(join(dir, 'model.json'))).rejects.toThrow(/truncated/);
    const dir2 = mkdtempSync(join(tmpdir(), 'graft-tfjs-'));
    makeModel(dir2);
    writeFileSync(join(dir2, 'model.json'), JSON.stringify({ weightsManifest: [{ paths: ['gone.bin'], weights: [] }], modelTopology: { config: { layers: [] } } }));
    await expect(TfjsLayersModel.open(join(dir2, 'model.json'))).rejects.toThrow(/gone\.bin is missing/);
  });
});
