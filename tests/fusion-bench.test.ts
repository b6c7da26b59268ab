// `graft bench fusion --quick --json` smoke test (not timed): every fusion gets a row with positive times, the
// switch state restored afterwards; --only filters; bad --only names are GraftErrors.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { GraftError } from '../src/runtime/errors.js';
import { FUSION_NAMES, fusionEnabled, fusionState } from '../src/runtime/fusion.js';
import { registerFusionBench } from '../src/cli/bench-fusion.js';
import { formatFusionBench, runFusionBench, type FusionBenchResult } from '../src/bench/fusion.js';
import { useRuntime } from './helpers/gpu.js';

const getRt = useRuntime();

function program(): Command {
  const p = new Command().exitOverride();
  registerFusionBench(p.command('bench'));
  return p;
}

afterEach(() => vi.restoreAllMocks());

describe('graft bench fusion', () => {
  it('--quick --json prints one object with a row per fusion case', async () => {
    const before = fusionState();
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    await program().parseAsync(['node', 'graft', 'bench', 'fusion', '--quick', '--json']);
    const r = JSON.parse(out.join('')) as FusionBenchResult;
    expect(r.quick).toBe(true);
    expect(new Set(r.rows.map((x) => x.fusion))).toEqual(new Set(FUSION_NAMES));
    for (const row of r.rows) {
      expect(row.fusedMs, row.workload).toBeGreaterThan(0);
      expect(row.unfusedMs, row.workload).toBeGreaterThan(0);
      expect(row.speedup).toBeCloseTo(row.unfusedMs / row.fusedMs, 6);
      expect(row.enabled).toBe(fusionEnabled(row.fusion));
    }
    expect(fusionState()).toEqual(before);
    expect(formatFusionBench(r).some((l) => l.startsWith('attention'))).toBe(true);
  }, 120_000);

  it('--only selects fusions', async () => {
    const r = await runFusionBench(getRt(), { only: ['cross-entropy', 'layernorm-residual'], quick: true, repeats: 1, warmup: 0 });
    expect(r.rows.map((x) => x.fusion).sort()).toEqual(['cross-entropy', 'layernorm-residual']);
  }, 60_000);

  it('an unknown --only name is a GraftError', async () => {
    await expect(program().parseAsync(['node', 'graft', 'bench', 'fusion', '--only', 'attention,warp'])).rejects.toThrow(GraftError);
  });
});
