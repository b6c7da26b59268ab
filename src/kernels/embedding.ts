// Embedding lookup: gather rows of a [V, D] table by i32 ids (shaders/embedding.wgsl).
import src from '../../shaders/embedding.wgsl';
import { ShapeError } from '../runtime/errors.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';

const K = { name: 'embedding', code: src };

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * ids i32 [...], table f32 [V, D] -> [..., D], row t = table[ids[t]].
 * Out-of-range ids (negative or >= V) give a zero row instead of an error: the ids live on the
 * GPU, so this wrapper cannot see them without a readback. Check ids on the CPU before upload
 * if a bad id must be an error (PyTorch raises an IndexError).
 */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new ShapeError(`embedding: ids must be i32, got ${ids.dtype} ${fmt(ids)} (table ${fmt(table)})`);
  if (table.rank !== 2) throw new ShapeError(`embedding: table must be [V, D], got shape ${fmt(table)} (ids ${fmt(ids)})`);
  if (table.dtype !== 'f32') throw new ShapeError(`embedding: table must be f32, got ${table.dtype} ${fmt(table)}`);
  const [v, d] = table.shape as [number, number];
  const rt = ids.rt;
  const out = Tensor.empty(rt, [...ids.shape, d], 'f32');
  if (out.size === 0) return out;
  rt.dispatch(K, {
    buffers: [ids, table, out],
    params: [out.size, v, d],
    constants: { WG: 256 },
    workgroups: grid1d(out.size, 256, rt.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}
