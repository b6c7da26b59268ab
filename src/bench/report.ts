// Human-readable lines for a benchmark result (the CLI prints these; --json prints the record instead).
import type { OpBenchResult } from './run.js';

const fmtG = (g: number): string => (g >= 100 ? g.toFixed(0) : g >= 10 ? g.toFixed(1) : g.toFixed(2));
const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

/** Lines describing one result: adapter, op, graft GFLOP/s and timer, and the peer comparison. */
export function formatOpBench(r: OpBenchResult): string[] {
  const lines = [
    `adapter   ${r.adapter}`,
    `${r.op.padEnd(9)} ${r.label}   variant ${r.variant}`,
    `graft     ${fmtG(r.gflops)} GFLOP/s   median ${fmtMs(r.medianMs)} ms, min ${fmtMs(r.minMs)} ms ` +
      `over ${r.repeats} runs after ${r.warmup} warm-up   timer: ${r.timerNote}`,
  ];
  const p = r.peer;
  if (p && r.ratio !== undefined) {
    lines.push(
      `same run, both by wall clock (each run waits for its GPU queue):`,
      `  graft   ${fmtG(p.graftGflops)} GFLOP/s   median ${fmtMs(p.graftMedianMs)} ms`,
      `  ${p.name.padEnd(7)} ${fmtG(p.gflops)} GFLOP/s   median ${fmtMs(p.medianMs)} ms   (${p.name} ${p.version})`,
      `  ratio   ${r.ratio.toFixed(2)}× (graft / ${p.name})   max |graft - ${p.name}| ${p.maxAbsDiff.toExponential(2)} ` +
        `(outputs up to ${p.maxAbsRef.toPrecision(3)})`,
    );
  }
  return lines;
}

/** Print exactly one JSON object on stdout (one line, so it is also the last line). */
export function printJson(v: object): void {
  process.stdout.write(JSON.stringify(v) + '\n');
}
