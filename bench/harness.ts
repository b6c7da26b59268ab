// Benchmark.js (deferred) harness: times graft and a peer on the same op in one run, prints a table or JSON.
import Benchmark from 'benchmark';
import { Runtime } from '../src/runtime/runtime.js';
import { scope } from '../src/tensor.js';
import { gflops, median } from '../src/bench/measure.js';
import { adapterName } from '../src/bench/run.js';
import { diffStats } from '../src/bench/shapes.js';
import type { GraftCase } from '../src/bench/cases.js';
import type { PeerCase, TfjsPeer } from '../src/bench/tfjs.js';
import { startProgress } from '../src/cli/progress.js';

export interface HarnessArgs {
  quick: boolean;
  json: boolean;
  /** Skip the tfjs peer. */
  noPeer: boolean;
  /** Benchmark.js maxTime per side, seconds. */
  maxTime: number;
  /** Benchmark.js minSamples per side. */
  minSamples: number;
  /** Only cases whose name contains this. */
  filter: string | null;
}

export function parseArgs(argv: readonly string[]): HarnessArgs {
  const a: HarnessArgs = { quick: false, json: false, noPeer: false, maxTime: 3, minSamples: 5, filter: null };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number, got '${v ?? ''}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--quick') a.quick = true;
    else if (f === '--json') a.json = true;
    else if (f === '--no-peer') a.noPeer = true;
    else if (f === '--max-time') a.maxTime = num(f, argv[++i]);
    else if (f === '--min-samples') a.minSamples = Math.max(1, Math.round(num(f, argv[++i])));
    else if (f === '--filter') a.filter = argv[++i] ?? null;
    else throw new Error(`unknown flag '${f}' (known: --quick --json --no-peer --max-time S --min-samples N --filter TEXT)`);
  }
  if (a.quick) {
    a.maxTime = Math.min(a.maxTime, 0.3);
    a.minSamples = Math.min(a.minSamples, 2);
  }
  return a;
}

/** One benchmark case: how to build graft's op and (if it has one) the peer's op on the same data. */
export interface CaseSpec {
  name: string;
  label: string;
  shape: object;
  graft(rt: Runtime): GraftCase;
  /** The peer's op, or a string saying why the peer cannot run it. */
  peer(p: TfjsPeer): PeerCase | string;
}

export interface SideResult {
  gflops: number;
  medianMs: number;
  /** Benchmark.js relative margin of error, percent. */
  rme: number;
  samples: number;
}

export interface RowResult {
  name: string;
  label: string;
  shape: object;
  flops: number;
  graft: SideResult | null;
  tfjs: SideResult | null;
  /** graft / tfjs GFLOP/s (both by wall clock, same run). */
  ratio: number | null;
  /** max |graft - tfjs| / max |tfjs| over the output. */
  relDiff: number | null;
  note?: string;
  error?: string;
}

/** Untimed runs before Benchmark.js starts (pipeline compiles, pool and tfjs program caches). */
const WARMUP_RUNS = 2;

/** Time `run` (resolves when its GPU work is done) with Benchmark.js in deferred mode, after warm-up runs. */
export async function benchAsync(
  name: string,
  run: () => Promise<void>,
  args: HarnessArgs,
): Promise<{ medianMs: number; rme: number; samples: number }> {
  for (let i = 0; i < WARMUP_RUNS; i++) await run();
  return new Promise((resolve, reject) => {
    let failure: unknown = null;
    const b: Benchmark = new Benchmark(name, {
      defer: true,
      maxTime: args.maxTime,
      minSamples: args.minSamples,
      initCount: 1,
      fn: (d: Benchmark.Deferred) => {
        if (failure !== null) return d.resolve();
        run().then(
          () => d.resolve(),
          (e: unknown) => {
            failure = e;
            d.resolve();
          },
        );
      },
      onComplete: () => {
        if (failure !== null) return reject(failure instanceof Error ? failure : new Error(String(failure)));
        const secs = b.stats.sample.filter((v): v is number => typeof v === 'number');
        if (!secs.length) return reject(new Error(`${name}: Benchmark.js took no samples`));
        resolve({ medianMs: median(secs) * 1000, rme: b.stats.rme, samples: secs.length });
      },
      onError: () => reject(b.error),
    });
    b.run();
  });
}

const fmt = (v: number | null, d = 2): string => (v === null || !Number.isFinite(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(d));

/** Run every case: graft, then tfjs on the same inputs, then an output comparison. Returns exit status. */
export async function runSuite(op: string, cases: readonly CaseSpec[], args: HarnessArgs): Promise<number> {
  const selected = cases.filter((c) => args.filter === null || c.name.includes(args.filter) || c.label.includes(args.filter));
  const rt = await Runtime.create();
  let peer: TfjsPeer | null = null;
  if (!args.noPeer) {
    const { loadTfjs } = await import('../src/bench/tfjs.js');
    peer = await loadTfjs();
  }
  const nameW = Math.max(4, ...selected.map((c) => c.name.length));
  const labelW = Math.max(5, ...selected.map((c) => c.label.length));
  const head =
    `${'case'.padEnd(nameW)}  ${'shape'.padEnd(labelW)}  ${'graft GFLOP/s'.padStart(13)}  ` +
    `${'tfjs GFLOP/s'.padStart(12)}  ${'ratio'.padStart(6)}  ${'rel diff'.padStart(8)}`;
  if (!args.json) {
    console.log(`${op} benchmark on ${adapterName(rt)}${peer ? `, peer tfjs ${peer.version} (webgpu backend, same adapter)` : ''}`);
    console.log('GFLOP/s from the median wall-clock time per op (Benchmark.js, deferred: each op waits for its GPU queue).');
    console.log(head);
    console.log('-'.repeat(head.length));
  }
  const bar = startProgress(op, { total: selected.length, unit: 'cases', json: args.json });
  const rows: RowResult[] = [];
  let failed = 0;
  for (const c of selected) {
    bar.label(`${op} ${c.name}`);
    const row = await runCase(rt, peer, c, args);
    if (row.error) failed++;
    rows.push(row);
    bar.increment();
    if (!args.json) {
      const line =
        `${c.name.padEnd(nameW)}  ${c.label.padEnd(labelW)}  ${fmt(row.graft?.gflops ?? null).padStart(13)}  ` +
        `${fmt(row.tfjs?.gflops ?? null).padStart(12)}  ${(row.ratio === null ? '-' : row.ratio.toFixed(2) + '×').padStart(6)}  ` +
        `${(row.relDiff === null ? '-' : row.relDiff.toExponential(1)).padStart(8)}`;
      process.stderr.write(bar.enabled ? '\r\x1b[K' : '');
      console.log(line + (row.error ? `  ERROR ${row.error}` : row.note ? `  (${row.note})` : ''));
    }
  }
  bar.stop();
  if (args.json) {
    const peerInfo = peer ? { name: 'tfjs', version: peer.version } : null;
    process.stdout.write(JSON.stringify({ op, adapter: adapterName(rt), peer: peerInfo, quick: args.quick, rows }) + '\n');
  }
  rt.destroy();
  return failed ? 1 : 0;
}

async function runCase(rt: Runtime, peer: TfjsPeer | null, c: CaseSpec, args: HarnessArgs): Promise<RowResult> {
  const row: RowResult = {
    name: c.name,
    label: c.label,
    shape: c.shape,
    flops: 0,
    graft: null,
    tfjs: null,
    ratio: null,
    relDiff: null,
  };
  let g: GraftCase | null = null;
  let p: PeerCase | string | null = null;
  try {
    g = c.graft(rt);
    row.flops = g.flops;
    const gc = g;
    const gt = await benchAsync(`graft ${c.name}`, async () => {
      scope(rt, () => {
        gc.record();
      });
      await rt.sync();
    }, args);
    row.graft = { gflops: gflops(gc.flops, gt.medianMs), ...gt };
    if (peer) {
      p = c.peer(peer);
      if (typeof p === 'string') row.note = `tfjs: ${p}`;
      else {
        const pc = p;
        const pt = await benchAsync(`tfjs ${c.name}`, () => pc.run(), args);
        row.tfjs = { gflops: gflops(pc.flops, pt.medianMs), ...pt };
        row.ratio = row.graft.gflops / row.tfjs.gflops;
        const d = diffStats(await gc.output(), await pc.output());
        row.relDiff = d.maxAbsDiff / Math.max(d.maxAbsRef, 1e-30);
      }
    }
  } catch (e) {
    row.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
  } finally {
    g?.dispose();
    if (p !== null && typeof p !== 'string') p.dispose();
  }
  return row;
}

/** Entry point for a bench script: parse argv, run, exit with the suite's status. */
export async function main(op: string, cases: (quick: boolean) => CaseSpec[]): Promise<void> {
  let code = 1;
  try {
    const args = parseArgs(process.argv.slice(2));
    code = await runSuite(op, cases(args.quick), args);
  } catch (e) {
    console.error(`bench ${op}: ${e instanceof Error ? e.message : String(e)}`);
  }
  process.exit(code);
}
