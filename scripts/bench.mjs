// Builds bench/<name>.bench.ts with esbuild (WGSL as text) and runs it: node scripts/bench.mjs <matmul|conv2d|all> [flags].
// Flags go to the benchmark: --quick (tiny sizes), --json (one JSON object per benchmark on stdout), --no-peer,
// --max-time S, --min-samples N, --filter TEXT.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const known = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

const [which, ...rest] = process.argv.slice(2);
if (!which || which.startsWith('-') || (which !== 'all' && !known.includes(which))) {
  const flags = '[--quick] [--json] [--no-peer] [--max-time S] [--min-samples N] [--filter TEXT]';
  console.error(`usage: node scripts/bench.mjs <${[...known, 'all'].join('|')}> ${flags}`);
  process.exit(2);
}

let status = 0;
for (const name of which === 'all' ? known : [which]) {
  const outfile = join(root, 'dist', 'bench', `${name}.js`);
  try {
    await build({
      absWorkingDir: root,
      entryPoints: [join(root, 'bench', `${name}.bench.ts`)],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'es2022',
      loader: { '.wgsl': 'text' },
      external: ['webgpu', 'node:*', 'commander', 'cli-progress', 'benchmark', '@tensorflow/*'],
      sourcemap: true,
      logLevel: 'warning',
    });
  } catch {
    process.exit(1); // esbuild has printed the errors
  }
  const r = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...rest], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
