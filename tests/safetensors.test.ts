// safetensors: round trips per dtype, and every validation rule rejects a crafted bad file with a clear error.
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import { CheckpointReader } from '../src/io/sharded.js';
import { CheckpointError } from '../src/runtime/errors.js';
import { fromHalfBits, toHalfBits } from '../src/runtime/half.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';

const dir = mkdtempSync(join(tmpdir(), 'graft-st-'));

/** Build a safetensors file by hand (independent of the writer under test). */
function craft(header: object, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const hb = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(hb.byteLength));
  return Buffer.concat([len, hb, data]);
}

async function openBytes(name: string, bytes: Uint8Array): Promise<SafetensorsFile> {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return SafetensorsFile.open(p);
}

describe('safetensors', () => {
  it('reads a hand-made F32 file', async () => {
    const vals = new Float32Array([1.5, -2, 3.25, 0, 7, 8]);
    const f = await openBytes('hand.safetensors', craft({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, __metadata__: { format: 'pt' } }, new Uint8Array(vals.buffer)));
    const t = await f.read('w');
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(t.data)).toEqual(Array.from(vals));
    expect(f.header.metadata.format).toBe('pt');
    await f.close();
  });

  it('round-trips F32, F16 and BF16 with metadata, header 8-byte aligned, atomically', async () => {
    const a = randArray(17 * 3, 1);
    const b = randArray(255, 2, -100, 100);
    const c = randArray(1, 3);
    const p = join(dir, 'rt.safetensors');
    await writeSafetensors(p, [['layer.0.weight', { shape: [17, 3], data: a }], ['h', { shape: [255], data: b, dtype: 'F16' }], ['bf', { shape: [1], data: c, dtype: 'BF16' }]], { format: 'pt' });
    expect(readdirSync(dir).some((n) => n.includes('.tmp-'))).toBe(false);
    const raw = readFileSync(p);
    expect(Number(raw.readBigUInt64LE(0)) % 8).toBe(0);
    const f = await SafetensorsFile.open(p);
    expect(f.names).toEqual(['layer.0.weight', 'h', 'bf']);
    expectClose((await f.read('layer.0.weight')).data, a, { atol: 0, rtol: 0 });
    expectClose((await f.read('h')).data, Float32Array.from(b, (v) => fromHalfBits(toHalfBits(v))), { atol: 0, rtol: 0 });
    expectClose((await f.read('bf')).data, c, { atol: 0, rtol: 1 / 128 });
    await f.close();
  });

  const bad: [string, () => Uint8Array, RegExp][] = [
    ['too short', () => new Uint8Array(5), /too short/],
    ['header over the cap', () => craft({}, new Uint8Array(0), 200_000_000n), /exceeds/],
    ['header past end', () => craft({}, new Uint8Array(0), 1000n), /past the end/],
    ['not JSON', () => { const x = craft({ a: 1 }, new Uint8Array(0)); x[10] = 0x7b; x[12] = 0x5d; return x; }, /JSON|'\{'/],
    ['unknown dtype', () => craft({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /'w'.*unknown dtype/],
    ['byte length != numel*size', () => craft({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(12)), /'w'.*12 bytes.*\[2, 2\].*16/],
    ['gap', () => craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12)), /'b'.*gap/],
    ['overlap', () => craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /overlap/],
    ['truncated data', () => craft({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(10)), /truncated/],
    ['trailing bytes', () => craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(9)), /cover 4/],
    ['negative shape', () => craft({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /invalid shape/],
  ];
  for (const [what, make, msg] of bad) {
    it(`rejects ${what}`, async () => {
      const err = await openBytes(`bad-${what.replace(/\W+/g, '_')}.safetensors`, make()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).toMatch(msg);
    });
  }

  it('reads sharded checkpoints through the index and names a missing file', async () => {
    const a = randArray(10, 5);
    const b = randArray(6, 6);
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [['a', { shape: [10], data: a }]]);
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [['b', { shape: [2, 3], data: b }]]);
    const idx = join(dir, 'model.safetensors.index.json');
    writeFileSync(idx, JSON.stringify({ metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    const r = await CheckpointReader.open(idx);
    expect(r.names.sort()).toEqual(['a', 'b']);
    expectClose((await r.read('b')).data, b, { atol: 0, rtol: 0 });
    await r.close();
    const idx2 = join(dir, 'broken.index.json');
    writeFileSync(idx2, JSON.stringify({ weight_map: { a: 'nope.safetensors' } }));
    await expect(CheckpointReader.open(idx2)).rejects.toThrow(/nope\.safetensors/);
    expect(existsSync(join(dir, 'nope.safetensors'))).toBe(false);
  });
});
