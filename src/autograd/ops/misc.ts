// Embedding lookup and dropout primitives (their extra inputs, ids and seeds, are not differentiable).
import { embedding } from '../../kernels/embedding.js';
import { embeddingBackward } from '../../kernels/embedding-backward.js';
import { dropout, dropoutBackward, type SeedSource } from '../../kernels/dropout.js';
import { isCapturing, onReplay } from '../../runtime/capture.js';
import { defaultRng } from '../random.js';
import type { Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';

export type MiscPrims = {
  /** table [V, D] gathered by ids (i32, any shape) -> [...ids, D]. */
  embedding: { params: { ids: Tensor; paddingIdx: number | undefined }; saved: { ids: Tensor; vocab: number } };
  /**
   * x · keep / (1 - p), the mask a pure function of (seed, offset + i): nothing saved, except under
   * step capture the seed source that forward and backward share.
   */
  dropout: { params: { p: number; seed: number; offset: number }; saved: SeedSource | undefined };
};

export const miscRules: Rules<MiscPrims> = {
  embedding: {
    forward: (ctx, [table], p) => ({ out: [embedding(p.ids, table!)], saved: { ids: ctx.save(p.ids), vocab: table!.shape[0]! } }),
    backward: (_ctx, [gy], s, p) => [embeddingBackward(s.ids, gy!, s.vocab, p.paddingIdx)],
  },
  dropout: {
    forward: (_ctx, [x], p) => {
      const seedAt = capturedSeed(p.seed);
      return { out: [dropout(x!, p.p, p.seed, p.offset, seedAt)], saved: seedAt };
    },
    backward: (_ctx, [gy], seedAt, p) => [dropoutBackward(gy!, p.p, p.seed, p.offset, seedAt)],
  },
};

/**
 * Under step capture: a seed cell that every replay refills with the next draw from the default
 * generator (the draw F.dropout makes when it runs for real), in recording order, before the
 * dispatches' dynamic params are re-read; forward and backward both read the cell. Undefined
 * when nothing records. A seed passed explicitly to F.dropout is replaced by fresh draws too (the
 * rule cannot tell it from a drawn one).
 */
export function capturedSeed(seed: number): SeedSource | undefined {
  if (!isCapturing()) return undefined;
  const cell = { seed };
  onReplay(() => {
    cell.seed = defaultRng().seed();
  });
  return () => cell.seed;
}
