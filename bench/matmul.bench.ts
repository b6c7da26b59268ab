// Matmul benchmark: graft vs tfjs GFLOP/s on square and BERT-base shapes (`node scripts/bench.mjs matmul [--quick] [--json]`).
import { matmulCase } from '../src/bench/matmul-case.js';
import { matmulHostData, matmulLabel, type MatmulShape } from '../src/bench/shapes.js';
import { tfjsMatmulCase } from '../src/bench/tfjs.js';
import { main, type CaseSpec } from './harness.js';

/** C [m, n] = A [m, k] · B [k, n], labelled as the product of the two operand shapes. */
function matmulSpec(name: string, m: number, k: number, n: number, batch = 1): CaseSpec {
  const shape: MatmulShape = { m, n, k, batch };
  let data: ReturnType<typeof matmulHostData> | undefined;
  const get = () => (data ??= matmulHostData(shape));
  return {
    name,
    label: matmulLabel(shape),
    shape,
    graft: (rt) => matmulCase(rt, shape, { data: get() }),
    peer: (p) => tfjsMatmulCase(p, shape, get()),
  };
}

function cases(quick: boolean): CaseSpec[] {
  if (quick) {
    return [
      matmulSpec('square-32', 32, 32, 32),
      matmulSpec('awkward', 33, 17, 65),
      matmulSpec('batched', 24, 16, 40, 3),
    ];
  }
  return [
    ...[256, 512, 1024, 2048].map((s) => matmulSpec(`square-${s}`, s, s, s)),
    // BERT-base feed-forward at sequence length 128: [128, 768]·[768, 3072] and [128, 3072]·[3072, 768].
    matmulSpec('bert-ffn-up', 128, 768, 3072),
    matmulSpec('bert-ffn-down', 128, 3072, 768),
  ];
}

await main('matmul', cases);
