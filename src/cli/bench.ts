// `graft bench <op>`: registers the benchmark subcommands (one module per op family).
import type { Command } from 'commander';

export function registerBench(program: Command): Command {
  const bench = program.command('bench').description('measure kernel and training throughput on this adapter');
  return bench;
}
