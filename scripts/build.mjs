// Bundles the library, CLI and benchmarks with esbuild (WGSL inlined as text) and emits .d.ts types.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'neutral',
  format: 'esm',
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  external: ['webgpu', 'node:*', 'commander', 'cli-progress', 'benchmark', '@tensorflow/*', 'tar', 'pngjs', 'jpeg-js', 'mnist', '@stdlib/*'],
  sourcemap: true,
  logLevel: 'warning',
};

await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.js' });
await build({
  ...common,
  platform: 'node',
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli.js',
  banner: { js: '#!/usr/bin/env node' },
});
chmodSync('dist/cli.js', 0o755);
if (!process.argv.includes('--no-types')) {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
