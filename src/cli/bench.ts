// `graft bench <op>`: registers the benchmark subcommands (one module per op family).
import type { Command } from 'commander';
import { registerMatmulBench } from './bench-matmul.js';
import { registerConv2dBench } from './bench-conv2d.js';
import { registerTrainStepBench } from './bench-train-step.js';
import { registerFusionBench } from './bench-fusion.js';
import { registerFinetuneBench } from './bench-finetune.js';

export function registerBench(program: Command): Command {
  const bench = program.command('bench').description('measure kernel and training throughput on this adapter');
  registerMatmulBench(bench);
  registerConv2dBench(bench);
  registerTrainStepBench(bench);
  registerFusionBench(bench);
  registerFinetuneBench(bench);
  return bench;
}
