// The `graft` command line: parses arguments (commander) and dispatches to subcommands.
import { Command, CommanderError } from 'commander';
import { infoCommand } from './info.js';
import { fetchCommand } from './fetch.js';
import { registerModelCommands } from './predict.js';
import { registerEmbedCommand } from './embed.js';
import { registerFinetuneCommands } from './finetune.js';
import { registerTextCommands } from './finetune-text.js';
import { registerBench } from './bench.js';
import { registerTuneCommand } from './tune.js';
import { setDefaultTuneMode } from '../kernels/tune-cache.js';
import { reportAndExit } from './errors.js';
import { FUSION_NAMES, parseFusionList, setFusion, type FusionName } from '../runtime/fusion.js';

// The CLI uses tuned kernel variants from the cache when present ($GRAFT_TUNE=off|cache|on overrides).
setDefaultTuneMode('cache');

const program = new Command();
program
  .name('graft')
  .description('WebGPU compute engine for transfer learning')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .option('--fuse <list>', `force kernel fusions on/off, e.g. attention=0,lora=1 (${FUSION_NAMES.join(', ')}; also GRAFT_FUSE_<NAME>=0|1)`)
  .hook('preAction', () => {
    const list = program.opts<{ fuse?: string }>().fuse;
    if (list) for (const [k, v] of Object.entries(parseFusionList(list))) setFusion(k as FusionName, v);
  });

program
  .command('info')
  .description('print adapter, driver, features and limits')
  .option('--json', 'print one JSON object')
  .action(infoCommand);

program
  .command('fetch')
  .description('download a known pretrained model into the cache (e.g. resnet50-imagenet)')
  .argument('<name>', 'model name')
  .option('--cache-dir <dir>', 'cache folder (default: $GRAFT_CACHE_DIR or ~/.cache/graft)')
  .option('--json', 'print one JSON object')
  .action(fetchCommand);

registerModelCommands(program);
registerEmbedCommand(program);
registerFinetuneCommands(program);
registerTextCommands(program);
registerBench(program);
registerTuneCommand(program);

try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  reportAndExit(e);
}
