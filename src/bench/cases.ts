// Ready-to-time graft ops for benchmarks: inputs uploaded once, a record() that enqueues one op.
import type { Tensor } from '../tensor.js';

/** One op on fixed inputs. record() enqueues it (no submit) and returns its output. */
export interface GraftCase {
  /** Floating-point operations one record() performs. */
  flops: number;
  record(): Tensor;
  /** Record once, read the output back (as laid out by graft: row-major / NCHW). */
  output(): Promise<Float32Array>;
  dispose(): void;
}

/** A GraftCase over `inputs` (disposed by dispose()) whose op is `record`. */
export function makeCase(flops: number, inputs: Tensor[], record: () => Tensor): GraftCase {
  return {
    flops,
    record,
    async output() {
      const out = record();
      try {
        return await out.read();
      } finally {
        out.dispose();
      }
    },
    dispose() {
      for (const t of inputs) t.dispose();
    },
  };
}
