// Bundles scripts/matmul-perf.ts with esbuild (WGSL as text) into tmp/ and runs it; arguments pass through.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'tmp', 'matmul-perf.js');
await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'scripts', 'matmul-perf.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  external: ['webgpu', 'node:*', '@tensorflow/*'],
  logLevel: 'warning',
});
await import(pathToFileURL(outfile).href);
