// Deterministic embedding backward (shaders/embedding_bwd_*.wgsl): a GPU counting sort of token positions
// by id (integer atomics for counts only), each bucket sorted ascending, then every table row sums its
// positions in index order. No float atomics: the same bits on every run.
import countSrc from '../../shaders/embedding_bwd_count.wgsl';
import scanSrc from '../../shaders/embedding_bwd_scan.wgsl';
import fillSrc from '../../shaders/embedding_bwd_fill.wgsl';
import sortSrc from '../../shaders/embedding_bwd_sort.wgsl';
import gatherSrc from '../../shaders/embedding_bwd_gather.wgsl';
import { GraftError, ShapeError } from '../runtime/errors.js';
import { i32 } from '../runtime/params.js';
import { Tensor } from '../tensor.js';
import { grid1d } from './grid.js';

const K_COUNT = { name: 'embedding_bwd_count', code: countSrc };
const K_SCAN = { name: 'embedding_bwd_scan', code: scanSrc };
const K_FILL = { name: 'embedding_bwd_fill', code: fillSrc };
const K_SORT = { name: 'embedding_bwd_sort', code: sortSrc };
const K_GATHER = { name: 'embedding_bwd_gather', code: gatherSrc };

const fmt = (t: Tensor) => `[${t.shape.join(', ')}]`;

/**
 * dTable [V, D] = Σ over positions i with ids[i] = v of dy[i, :]. ids i32 [T...], dy f32 [T..., D].
 * Positions whose id equals `paddingIdx`, or lies outside [0, V), contribute nothing (torch's
 * padding_idx semantics: that row's gradient is zero). A table clear plus five small dispatches whose
 * work scales with N (not V); deterministic.
 */
export function embeddingBackward(ids: Tensor, dy: Tensor, vocabSize: number, paddingIdx?: number): Tensor {
  const op = 'embeddingBackward';
  if (ids.dtype !== 'i32') throw new ShapeError(`${op}: ids must be i32, got ${ids.dtype} ids ${fmt(ids)} (dy ${fmt(dy)})`);
  if (dy.dtype !== 'f32' || dy.rank !== ids.rank + 1 || ids.shape.some((d, i) => d !== dy.shape[i])) {
    throw new ShapeError(`${op}: dy must be f32 [${ids.shape.join(', ')}, D] for ids ${fmt(ids)}, got ${dy.dtype} ${fmt(dy)}`);
  }
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new GraftError(`${op}: vocabSize must be a positive integer, got ${vocabSize}`);
  if (paddingIdx !== undefined && !Number.isInteger(paddingIdx)) throw new GraftError(`${op}: paddingIdx must be an integer, got ${paddingIdx}`);
  const rt = ids.rt;
  const V = vocabSize;
  const D = dy.shape[dy.rank - 1]!;
  const N = ids.size;
  const pad = paddingIdx === undefined || paddingIdx < -(2 ** 31) || paddingIdx >= 2 ** 31 ? -1 : paddingIdx;
  const maxWg = rt.limits.maxComputeWorkgroupsPerDimension;
  if (V * D >= 2 ** 32) throw new ShapeError(`${op}: table [${V}, ${D}] has 2^32 or more elements`);
  const dTable = Tensor.zeros(rt, [V, D], 'f32'); // rows of ids that never occur stay zero
  if (D === 0 || N === 0) return dTable;

  const counts = Tensor.zeros(rt, [V], 'i32');
  const start = Tensor.empty(rt, [V + 1], 'i32');
  const list = Tensor.empty(rt, [N], 'i32');
  const posGrid = grid1d(N, 256, maxWg);
  rt.dispatch(K_COUNT, { buffers: [ids, counts], params: [N, V, i32(pad)], constants: { WG: 256 }, workgroups: posGrid });
  rt.dispatch(K_SCAN, { buffers: [counts, start], params: [V], workgroups: [1] });
  rt.dispatch(K_FILL, { buffers: [ids, start, counts, list], params: [N, V, i32(pad)], constants: { WG: 256 }, workgroups: posGrid });
  rt.dispatch(K_SORT, { buffers: [start, list], params: [V], constants: { WG: 64 }, workgroups: grid1d(V, 64, maxWg) });
  const slotsY = Math.min(N, maxWg);
  rt.dispatch(K_GATHER, {
    buffers: [ids, start, list, dy, dTable],
    params: [N, V, D],
    constants: { WG: 64 },
    workgroups: [Math.ceil(D / 64), slotsY, Math.ceil(N / slotsY)],
  });
  counts.dispose();
  start.dispose();
  list.dispose();
  return dTable;
}
