// Embedding lookup and dropout primitives (their extra inputs, ids and seeds, are not differentiable).
import { embedding } from '../../kernels/embedding.js';
import { embeddingBackward } from '../../kernels/embedding-backward.js';
import { dropout, dropoutBackward } from '../../kernels/dropout.js';
import type { Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';

export type MiscPrims = {
  /** table [V, D] gathered by ids (i32, any shape) -> [...ids, D]. */
  embedding: { params: { ids: Tensor; paddingIdx: number | undefined }; saved: { ids: Tensor; vocab: number } };
  /** x · keep / (1 - p), the mask a pure function of (seed, offset + i): nothing saved. */
  dropout: { params: { p: number; seed: number; offset: number }; saved: null };
};

export const miscRules: Rules<MiscPrims> = {
  embedding: {
    forward: (ctx, [table], p) => ({ out: [embedding(p.ids, table!)], saved: { ids: ctx.save(p.ids), vocab: table!.shape[0]! } }),
    backward: (_ctx, [gy], s, p) => [embeddingBackward(s.ids, gy!, s.vocab, p.paddingIdx)],
  },
  dropout: {
    forward: (_ctx, [x], p) => ({ out: [dropout(x!, p.p, p.seed, p.offset)], saved: null }),
    backward: (_ctx, [gy], _s, p) => [dropoutBackward(gy!, p.p, p.seed, p.offset)],
  },
};
