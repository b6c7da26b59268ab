// The built `graft` CLI (dist/cli.js) run as a child process: info --json, bench --json, and one-line flag errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MATMUL_VARIANTS } from '../src/kernels/matmul.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// GRAFT_TEST_CLI points the tests at another bundle (e.g. a development build); default dist/cli.js.
const cli = process.env.GRAFT_TEST_CLI ?? join(root, 'dist', 'cli.js');
const exec = promisify(execFile);

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

function cliMtime(): number {
  try {
    return statSync(cli).mtimeMs;
  } catch {
    return 0;
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function graft(...args: string[]): Promise<Run> {
  try {
    const r = await exec(process.execPath, [cli, ...args], { cwd: root, timeout: 100_000, maxBuffer: 1 << 24 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/** stderr without dawn's adapter warnings ('Warning: ... artificially reduced ...'). */
const ownStderr = (s: string): string[] => s.split('\n').filter((l) => l.trim() && !l.startsWith('Warning:'));

/** stdout must be exactly one JSON object. */
function oneJson(r: Run): Record<string, unknown> {
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines, r.stdout).toHaveLength(1);
  const v: unknown = JSON.parse(lines[0]!);
  expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
  return v as Record<string, unknown>;
}

// `npm test` builds first; a direct `vitest run` rebuilds the bundle here when sources are newer.
beforeAll(() => {
  const src = Math.max(newestMtime(join(root, 'src')), newestMtime(join(root, 'shaders')));
  if (!process.env.GRAFT_TEST_CLI && cliMtime() < src) execFileSync(process.execPath, ['scripts/build.mjs', '--no-types'], { cwd: root, stdio: 'inherit' });
}, 120_000);

describe('graft CLI', () => {
  it('info --json prints the adapter', async () => {
    const r = await graft('info', '--json');
    // info pretty-prints; the whole of stdout must parse as one object
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout) as { vendor: unknown; description: unknown; enabledFeatures: unknown };
    const limits = (JSON.parse(r.stdout) as { limits: Record<string, number> }).limits;
    expect(typeof v.vendor).toBe('string');
    expect(typeof v.description).toBe('string');
    expect(Array.isArray(v.enabledFeatures)).toBe(true);
    expect(limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('bench matmul --json prints one JSON object', async () => {
    const v = oneJson(await graft('bench', 'matmul', '--m', '64', '--n', '48', '--k', '80', '--repeats', '3', '--warmup', '1', '--json'));
    expect(v.op).toBe('matmul');
    expect(v.shape).toEqual({ m: 64, n: 48, k: 80, batch: 1 });
    expect(typeof v.gflops === 'number' && Number.isFinite(v.gflops) && v.gflops > 0).toBe(true);
    expect(['gpu-timestamp', 'wall-clock']).toContain(v.timer);
    expect(typeof v.medianMs === 'number' && v.medianMs > 0).toBe(true);
    expect(v.variant).toBe('auto');
    expect(MATMUL_VARIANTS).toContain(v.chosen);
    expect(typeof v.adapter === 'string' && v.adapter.length > 0).toBe(true);
    expect(v.flops).toBe(2 * 64 * 48 * 80);
  });

  it('bench matmul --peer tfjs --json adds the peer and the ratio', async () => {
    const args = ['--m', '32', '--n', '32', '--k', '32', '--batch', '2', '--repeats', '2', '--peer', 'tfjs', '--json'];
    const v = oneJson(await graft('bench', 'matmul', ...args));
    const p = v.peer as { name: string; gflops: number; graftGflops: number; maxAbsDiff: number; maxAbsRef: number };
    expect(p.name).toBe('tfjs');
    expect(p.gflops).toBeGreaterThan(0);
    expect(v.ratio).toBeCloseTo(p.graftGflops / p.gflops, 10);
    expect(p.maxAbsDiff).toBeLessThanOrEqual(1e-4 * p.maxAbsRef + 1e-5);
  });

  it('bench conv2d --json prints one JSON object', async () => {
    const shape = ['--n', '2', '--c', '3', '--h', '10', '--w', '9', '--k', '8', '--r', '3', '--stride', '2', '--pad', '1'];
    const v = oneJson(await graft('bench', 'conv2d', ...shape, '--repeats', '2', '--json'));
    expect(v.op).toBe('conv2d');
    expect(v.shape).toMatchObject({ n: 2, c: 3, h: 10, w: 9, k: 8, r: 3, s: 3, stride: [2, 2], pad: [1, 1], groups: 1 });
    expect(typeof v.gflops === 'number' && v.gflops > 0).toBe(true);
    expect(['gpu-timestamp', 'wall-clock']).toContain(v.timer);
  });

  it('bench matmul prints GFLOP/s and the timer', async () => {
    const r = await graft('bench', 'matmul', '--m', '16', '--n', '16', '--k', '16', '--repeats', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\d GFLOP\/s/);
    expect(r.stdout).toMatch(/timer: (gpu-timestamp|wall-clock \()/);
  });

  const bad: [string[], RegExp][] = [
    [['bench', 'matmul', '--m', '0'], /^graft: --m must be a positive integer, got '0'$/],
    [['bench', 'matmul', '--m', 'abc'], /^graft: --m must be a positive integer, got 'abc'$/],
    [['bench', 'matmul', '--warmup', '-1'], /^graft: --warmup must be a non-negative integer/],
    [['bench', 'matmul', '--variant', 'no-such-variant'], /^graft: unknown matmul variant 'no-such-variant' \(known: /],
    [['bench', 'matmul', '--timer', 'sundial'], /^graft: --timer must be/],
    [['bench', 'conv2d', '--peer', 'torch'], /^graft: --peer must be tfjs/],
    [['bench', 'conv2d', '--c', '6', '--groups', '4'], /^graft: --c \(6\) must be divisible by --groups \(4\)$/],
    [['bench', 'conv2d', '--h', '2', '--r', '5'], /^graft: the 5×5 kernel does not fit/],
    [['bench', 'conv2d', '--stride', '0'], /^graft: --stride must be an integer >= 1/],
  ];
  for (const [args, msg] of bad) {
    it(`${args.join(' ')} fails with one line`, async () => {
      const r = await graft(...args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      const lines = ownStderr(r.stderr);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
