// `graft bench fusion`: fused vs unfused time of every fusion switch on this adapter, as a table or one JSON object.
import type { Command } from 'commander';
import { Runtime } from '../runtime/runtime.js';
import type { FusionName } from '../runtime/fusion.js';
import { printJson } from '../bench/report.js';
import { formatFusionBench, parseFusionNames, runFusionBench } from '../bench/fusion.js';
import { nonNegInt, posInt } from './errors.js';
import { parseTimer, type TimerFlag } from './bench-flags.js';

interface FusionFlags {
  only?: FusionName[];
  quick?: boolean;
  repeats?: number;
  warmup?: number;
  timer: TimerFlag;
  json?: boolean;
}

export function registerFusionBench(bench: Command): Command {
  return bench
    .command('fusion')
    .description('time each kernel fusion on and off (GRAFT_FUSE_<NAME> switches) on a training-sized workload')
    .option('--only <names>', 'comma-separated fusions to time (default: all)', parseFusionNames)
    .option('--quick', 'tiny shapes, 1 warm-up, 2 runs (smoke test; not a measurement)')
    .option('--repeats <R>', 'timed runs per side; the median is reported (default: about 12 s per case, 5 to 31; --quick 2)', posInt('--repeats'))
    .option('--warmup <W>', 'untimed runs first (default 2, --quick 1)', nonNegInt('--warmup'))
    .option('--timer <kind>', 'auto (GPU timestamps when the adapter has them) | gpu-timestamp | wall-clock', parseTimer, 'auto')
    .option('--json', 'print one JSON object on stdout')
    .action(async (f: FusionFlags) => {
      const rt = await Runtime.create();
      try {
        const onCase = f.json ? undefined : (label: string) => process.stderr.write(`  timing ${label}\n`);
        const r = await runFusionBench(rt, { only: f.only, quick: f.quick, repeats: f.repeats, warmup: f.warmup, timer: f.timer, onCase });
        if (f.json) printJson(r);
        else for (const l of formatFusionBench(r)) console.log(l);
      } finally {
        rt.destroy();
      }
    });
}
