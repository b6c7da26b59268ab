// Matmul perf probe: compile time and GFLOP/s of each variant (wall clock and process CPU time) next to tfjs in the same run.
// Run with: node scripts/matmul-perf.mjs [--shapes 1024x1024x1024,128x3072x768] [--variants sg64,rb] [--reps 5] [--no-tfjs] [--rounds 2]
//   [--trans A|B|AB] (graft only: a stored [K, M] and/or b stored [N, K]; tfjs always runs the plain product)
// Shapes are MxNxK. CPU time (all threads of this process) is reported because shared machines make wall time noisy.
import { Runtime } from '../src/runtime/runtime.js';
import { Tensor } from '../src/tensor.js';
import { MATMUL_VARIANTS, matmul, matmulFlops, chooseVariant, matmulDims } from '../src/kernels/matmul.js';
import { unsupportedReason, VARIANT_TABLE } from '../src/kernels/matmul-variants.js';
import { loadTfjs, tfjsMatmulCase } from '../src/bench/tfjs.js';
import { matmulHostData } from '../src/bench/shapes.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

interface Sample {
  wallMs: number;
  cpuMs: number;
}

async function timeIt(run: () => Promise<void>, reps: number): Promise<Sample> {
  let wallMs = Infinity;
  let cpuMs = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    wallMs = Math.min(wallMs, performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs = Math.min(cpuMs, (c.user + c.system) / 1000);
  }
  return { wallMs, cpuMs };
}

const shapes = arg('shapes', '256x256x256,512x512x512,1024x1024x1024,2048x2048x2048,128x3072x768').split(',').map((s) => s.split('x').map(Number) as [number, number, number]);
const reps = Number(arg('reps', '5'));
const rounds = Number(arg('rounds', '1'));
const withTfjs = !process.argv.includes('--no-tfjs');
const trans = arg('trans', '');
const transA = trans.includes('A');
const transB = trans.includes('B');
const rt = await Runtime.create();
const wanted = arg('variants', 'auto,' + MATMUL_VARIANTS.filter((v) => !v.endsWith('_s')).join(',')).split(',');
const tf = withTfjs ? await loadTfjs() : null;
console.log(`adapter: ${rt.adapter.info.description}; LP_NUM_THREADS=${process.env.LP_NUM_THREADS ?? '(default)'}`);
for (const [M, N, K] of shapes) {
  const s = { m: M, n: N, k: K, batch: 1 };
  const data = matmulHostData(s);
  // same values in the transposed layouts are not needed for timing: only the shapes change
  const a = Tensor.from(rt, data.a, transA ? [K, M] : [M, K]);
  const b = Tensor.from(rt, data.b, transB ? [N, K] : [K, N]);
  const flops = matmulFlops(M, N, K);
  const peer = tf ? tfjsMatmulCase(tf, s, data) : null;
  for (let round = 0; round < rounds; round++) {
    const rows: [string, Sample, number][] = [];
    let tfG = NaN;
    if (peer) {
      await peer.run();
      const t = await timeIt(() => peer.run(), reps);
      tfG = flops / (t.wallMs * 1e6);
      rows.push(['tfjs', t, 0]);
    }
    for (const w of wanted) {
      const name = w === 'auto' ? undefined : w;
      if (name && unsupportedReason(rt, VARIANT_TABLE.get(name)!)) continue;
      const t0 = performance.now();
      matmul(a, b, { variant: name, transA, transB }).dispose();
      await rt.sync();
      const compileMs = performance.now() - t0;
      const t = await timeIt(async () => {
        matmul(a, b, { variant: name, transA, transB }).dispose();
        await rt.sync();
      }, reps);
      rows.push([w === 'auto' ? `auto(${chooseVariant(rt, matmulDims(a.shape, b.shape, transA, transB)).name})` : w, t, compileMs]);
    }
    console.log(`\n${M}x${N}x${K} (MxNxK)${trans ? ` trans ${trans}` : ''}${rounds > 1 ? ` round ${round + 1}` : ''}`);
    for (const [n, t, c] of rows) {
      const g = flops / (t.wallMs * 1e6);
      const gc = flops / (t.cpuMs * 1e6);
      const ratio = Number.isNaN(tfG) || n === 'tfjs' ? '' : ` ${(g / tfG).toFixed(2)}x tfjs`;
      console.log(`  ${n.padEnd(14)} ${t.wallMs.toFixed(1).padStart(9)} ms ${g.toFixed(2).padStart(7)} GFLOP/s ${gc.toFixed(2).padStart(7)} GFLOP/cpu-s${c ? `  first run ${c.toFixed(0)} ms` : ''}${ratio}`);
    }
  }
  peer?.dispose();
  a.dispose();
  b.dispose();
}
rt.destroy();
process.exit(0);
