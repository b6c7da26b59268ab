// Runs the built bundle under Deno (npm package `deno`, built-in WebGPU) to prove it works without dawn.node or the file system.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const denoBin = 'node_modules/.bin/deno';

describe('deno', () => {
  it('runs init + matmul from dist/index.js and matches the CPU', async () => {
    expect(existsSync('dist/index.js'), 'dist/index.js missing: run `npm run build` (npm test does)').toBe(true);
    expect(existsSync(denoBin), 'deno binary missing: npm ci installs the `deno` devDependency').toBe(true);
    const { stdout } = await run(denoBin, ['run', '--unstable-webgpu', '--no-prompt', '-A', 'tests/deno/smoke.ts'], {
      timeout: 120_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const line = stdout.trim().split('\n').pop()!;
    const r = JSON.parse(line) as { maxDiff: number; adapter: string };
    expect(r.maxDiff).toBeLessThan(1e-4);
  });
});
