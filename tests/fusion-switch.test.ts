// Fusion switch registry: defaults, env GRAFT_FUSE_<NAME>, setFusion / withFusion precedence and restore,
// --fuse list parsing, GraftError on unknown names and bad values; LoRA's fused default follows the switch.
import { afterEach, describe, expect, it } from 'vitest';
import { GraftError } from '../src/runtime/errors.js';
import {
  FUSION_DEFAULTS,
  FUSION_NAMES,
  fusionEnabled,
  fusionEnvVar,
  fusionState,
  parseFusionList,
  setFusion,
  withFusion,
  type FusionName,
} from '../src/runtime/fusion.js';
import { fusedByDefault } from '../src/peft/config.js';
import { autoRepeats, parseFusionNames } from '../src/bench/fusion.js';

const touched: string[] = [];
function setEnv(name: FusionName, v: string | undefined): void {
  const k = fusionEnvVar(name);
  touched.push(k);
  if (v === undefined) delete process.env[k];
  else process.env[k] = v;
}

afterEach(() => {
  for (const k of touched.splice(0)) delete process.env[k];
  for (const n of FUSION_NAMES) setFusion(n, undefined);
});

describe('fusion registry', () => {
  it('env var names', () => {
    expect(fusionEnvVar('layernorm-residual')).toBe('GRAFT_FUSE_LAYERNORM_RESIDUAL');
    expect(fusionEnvVar('lora')).toBe('GRAFT_FUSE_LORA');
  });

  it('defaults apply when nothing else is set', () => {
    for (const n of FUSION_NAMES) {
      setEnv(n, undefined);
      expect(fusionEnabled(n), n).toBe(FUSION_DEFAULTS[n]);
    }
    expect(Object.keys(fusionState()).sort()).toEqual([...FUSION_NAMES].sort());
  });

  it('env overrides the default, both ways', () => {
    for (const n of FUSION_NAMES) {
      setEnv(n, '0');
      expect(fusionEnabled(n), `${n}=0`).toBe(false);
      setEnv(n, '1');
      expect(fusionEnabled(n), `${n}=1`).toBe(true);
      setEnv(n, '');
      expect(fusionEnabled(n), `${n} empty`).toBe(FUSION_DEFAULTS[n]);
    }
  });

  it('a bad env value is a GraftError naming the variable', () => {
    setEnv('attention', 'maybe');
    expect(() => fusionEnabled('attention')).toThrow(GraftError);
    expect(() => fusionEnabled('attention')).toThrow(/GRAFT_FUSE_ATTENTION/);
  });

  it('setFusion beats env; undefined clears it', () => {
    setEnv('cross-entropy', '1');
    setFusion('cross-entropy', false);
    expect(fusionEnabled('cross-entropy')).toBe(false);
    setFusion('cross-entropy', undefined);
    expect(fusionEnabled('cross-entropy')).toBe(true);
  });

  it('withFusion overrides env inside and restores after return, throw and rejection', async () => {
    setEnv('bn-fold', '1');
    expect(withFusion({ 'bn-fold': false }, () => fusionEnabled('bn-fold'))).toBe(false);
    expect(fusionEnabled('bn-fold')).toBe(true);
    expect(() =>
      withFusion({ 'bn-fold': false }, () => {
        throw new Error('x');
      }),
    ).toThrow('x');
    expect(fusionEnabled('bn-fold')).toBe(true);
    const inside = await withFusion({ 'bn-fold': false }, async () => {
      await Promise.resolve();
      return fusionEnabled('bn-fold');
    });
    expect(inside).toBe(false);
    expect(fusionEnabled('bn-fold')).toBe(true);
    await expect(withFusion({ 'bn-fold': false }, () => Promise.reject(new Error('y')))).rejects.toThrow('y');
    expect(fusionEnabled('bn-fold')).toBe(true);
    // nesting: the inner call restores the outer override
    withFusion({ attention: false }, () => {
      withFusion({ attention: true }, () => expect(fusionEnabled('attention')).toBe(true));
      expect(fusionEnabled('attention')).toBe(false);
    });
  });

  it('unknown names are GraftErrors everywhere', () => {
    expect(() => setFusion('flash' as FusionName, true)).toThrow(GraftError);
    expect(() => withFusion({ ['nope' as FusionName]: true }, () => 0)).toThrow(/unknown fusion 'nope'/);
    expect(() => parseFusionList('attention=0,warp=1')).toThrow(/unknown fusion 'warp'/);
    expect(() => parseFusionNames('lora,zzz')).toThrow(GraftError);
    expect(() => parseFusionNames(' , ')).toThrow(GraftError);
  });

  it('parses --fuse lists', () => {
    expect(parseFusionList('attention=0, lora=1,bn-fold')).toEqual({ attention: false, lora: true, 'bn-fold': true });
    expect(parseFusionList('cross-entropy=off,matmul-epilogue=on')).toEqual({ 'cross-entropy': false, 'matmul-epilogue': true });
    expect(() => parseFusionList('attention=2')).toThrow(GraftError);
    expect(parseFusionNames('lora, attention')).toEqual(['lora', 'attention']);
  });

  it("LoRA's fused default follows the 'lora' switch (env, API)", () => {
    setEnv('lora', '0');
    expect(fusedByDefault()).toBe(false);
    setEnv('lora', '1');
    expect(fusedByDefault()).toBe(true);
    expect(withFusion({ lora: false }, () => fusedByDefault())).toBe(false);
    setEnv('lora', 'x');
    expect(() => fusedByDefault()).toThrow(GraftError);
  });

  it('bench auto repeats: odd, 5..31, more for short workloads', () => {
    expect(autoRepeats(60_000)).toBe(5);
    expect(autoRepeats(1)).toBe(31);
    expect(autoRepeats(0)).toBe(31);
    const mid = autoRepeats(1000);
    expect(mid % 2).toBe(1);
    expect(mid).toBeGreaterThanOrEqual(12);
    expect(mid).toBeLessThanOrEqual(13);
  });
});
