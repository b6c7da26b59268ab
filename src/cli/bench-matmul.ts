// `graft bench matmul`: median GFLOP/s of one matmul shape on this adapter, optionally against tfjs in the same run.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { MATMUL_VARIANTS, chooseVariant, matmulDims, tuneMatmul } from '../kernels/matmul.js';
import { matmulCase } from '../bench/matmul-case.js';
import { matmulHostData, matmulLabel, type MatmulShape } from '../bench/shapes.js';
import { formatOpBench, printJson } from '../bench/report.js';
import { runOpBench, type OpBenchSpec } from '../bench/run.js';
import { posInt } from './errors.js';
import { addBenchFlags, withProgress, type CommonBenchFlags } from './bench-flags.js';

interface MatmulFlags extends CommonBenchFlags {
  m: number;
  n: number;
  k: number;
  batch: number;
  tune?: boolean;
}

export function registerMatmulBench(bench: Command): Command {
  const cmd = bench
    .command('matmul')
    .description('time C = A·B (A [batch, M, K], B [batch, K, N], f32) and print the median GFLOP/s')
    .option('--m <M>', 'rows of A and C', posInt('--m'), 1024)
    .option('--n <N>', 'columns of B and C', posInt('--n'), 1024)
    .option('--k <K>', 'inner dimension', posInt('--k'), 1024)
    .option('--batch <B>', 'batch of independent products', posInt('--batch'), 1)
    .option('--tune', 'autotune the kernel variant for this shape first (cached per adapter)');
  return addBenchFlags(cmd).action(async (flags: MatmulFlags) => {
    await benchMatmul(flags);
  });
}

async function benchMatmul(f: MatmulFlags): Promise<void> {
  if (f.variant !== undefined && !MATMUL_VARIANTS.includes(f.variant)) {
    throw new GraftError(`unknown matmul variant '${f.variant}' (known: ${MATMUL_VARIANTS.join(', ')})`);
  }
  const shape: MatmulShape = { m: f.m, n: f.n, k: f.k, batch: f.batch };
  const rt = await Runtime.create();
  try {
    let tuned: Record<string, string> | undefined;
    if (f.tune) tuned = await tuneMatmul(rt, [[f.m, f.n, f.k]]);
    const data = matmulHostData(shape);
    const graft = matmulCase(rt, shape, { variant: f.variant, data });
    const spec: OpBenchSpec = {
      op: 'matmul',
      shape,
      label: `${matmulLabel(shape)}   (M=${f.m} N=${f.n} K=${f.k}${f.batch > 1 ? ` batch ${f.batch}` : ''}, f32)`,
      variant: f.variant ?? 'auto',
      graft,
    };
    if (f.peer === 'tfjs') {
      spec.peer = async () => {
        const { loadTfjs, tfjsMatmulCase } = await import('../bench/tfjs.js');
        const p = await loadTfjs();
        return { name: 'tfjs', version: p.version, case: tfjsMatmulCase(p, shape, data) };
      };
    }
    const counts = { warmup: f.warmup, repeats: f.repeats, timer: f.timer };
    const r = await withProgress(`matmul ${matmulLabel(shape)}`, f.json, (hooks) => runOpBench(rt, spec, { ...counts, ...hooks }));
    graft.dispose();
    // the variant that actually ran (after tuning / the adapter default), next to the requested one
    const chosen = chooseVariant(rt, matmulDims([f.m, f.k], [f.k, f.n], false, false), f.variant).name;
    const out = { ...r, chosen, ...(tuned ? { tuned } : {}) };
    if (f.json) printJson(out);
    else {
      for (const l of formatOpBench({ ...r, variant: f.variant ?? `auto (${chosen})` })) console.log(l);
      if (tuned) console.log(`tuned     ${Object.entries(tuned).map(([k, v]) => `${k} → ${v}`).join(', ')}`);
    }
  } finally {
    rt.destroy();
  }
}
