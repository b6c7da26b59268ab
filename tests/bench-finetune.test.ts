// Smoke tests of `graft bench finetune` (graft's side) at tiny sizes: result structure, one submit per step, LoRA vs full, FLOP model, CLI flags. Not timed.
import { describe, expect, it } from 'vitest';
import { useRuntime } from './helpers/gpu.js';
import { finetuneSpec, type FinetuneBenchSpec } from '../src/bench/finetune-spec.js';
import { runFinetuneBench, formatFinetune, comparePeers, type FinetuneBenchResult } from '../src/bench/finetune.js';
import { makeFinetuneSetup, loraLayerCount } from '../src/bench/finetune-setup.js';
import { stepFlops, resnetConvShapes } from '../src/bench/finetune-flops.js';
import { aggregateKernels } from '../src/bench/finetune-kernels.js';
import { benchFinetuneCommand, parsePeerList, specFromFlags, type FinetuneFlags } from '../src/cli/bench-finetune.js';
import { GraftError } from '../src/runtime/errors.js';

const rt = useRuntime();

const bertTiny = (strategy: FinetuneBenchSpec['strategy']) => finetuneSpec({ model: 'bert-tiny', strategy, batch: 2, seq: 16, steps: 2, warmup: 0 });

function checkResult(r: FinetuneBenchResult, spec: FinetuneBenchSpec): void {
  expect(r.spec).toEqual(spec);
  expect(r.stepMs).toHaveLength(spec.steps);
  expect(r.losses).toHaveLength(spec.warmup + spec.steps);
  for (const l of r.losses) expect(Number.isFinite(l)).toBe(true);
  expect(r.submitsPerStep).toBe(1);
  expect(r.dispatchesPerStep).toBeGreaterThan(0);
  expect(r.medianStepMs).toBeGreaterThan(0);
  expect(r.encodeMs).toBeGreaterThan(0);
  expect(r.encodeMs).toBeLessThanOrEqual(Math.max(...r.stepMs));
  expect(r.samplesPerSec).toBeCloseTo((spec.batch * 1000) / r.medianStepMs, 6);
  expect(r.memory.peakPoolBytes).toBeGreaterThan(0);
  expect(r.memory.peakBytes).toBe(r.memory.peakPoolBytes + r.memory.trainableArenaBytes);
  expect(r.memory.peakPoolBytes).toBeGreaterThanOrEqual(r.memory.basePoolBytes);
  expect(r.trainableParams).toBeGreaterThan(0);
  expect(r.trainableParams).toBeLessThanOrEqual(r.totalParams);
  expect(r.flops.total).toBe(r.flops.forward + r.flops.backward);
  expect(r.gflopsPerSec).toBeGreaterThan(0);
  if (rt().features.timestamps) {
    expect(r.kernels).not.toBeNull();
    expect(r.kernels!.dispatches).toBe(r.dispatchesPerStep);
    expect(r.kernels!.top.length).toBeGreaterThan(0);
    expect(r.kernels!.top.length).toBeLessThanOrEqual(12);
    const shares = r.kernels!.all.reduce((s, k) => s + k.share, 0);
    expect(shares).toBeCloseTo(1, 6);
  } else expect(r.kernelsNote).toMatch(/no timestamp-query/);
  expect(JSON.parse(JSON.stringify(r)).spec).toEqual(spec);
  expect(formatFinetune(r).join('\n')).toContain('samples/s');
}

describe('runFinetuneBench', () => {
  it('bert-tiny full and LoRA: one submit per step, LoRA trains fewer params and holds less memory', async () => {
    const full = await runFinetuneBench(rt(), bertTiny('full'));
    checkResult(full, bertTiny('full'));
    expect(full.trainableParams).toBe(full.totalParams);
    expect(full.loraTargets).toBe(0);
    const lora = await runFinetuneBench(rt(), bertTiny('lora'));
    checkResult(lora, bertTiny('lora'));
    expect(lora.loraTargets).toBe(4); // query + value of 2 layers
    expect(lora.trainableParams).toBeLessThan(full.trainableParams / 100);
    expect(lora.memory.peakBytes).toBeLessThan(full.memory.peakBytes);
    expect(lora.flops.backward).toBeLessThan(full.flops.backward);
  });

  it('resnet18 linear probe at res 32: finite loss, head-only training', async () => {
    const spec = finetuneSpec({ model: 'resnet18', strategy: 'linear-probe', batch: 2, res: 32, steps: 2, warmup: 0 });
    const r = await runFinetuneBench(rt(), spec);
    checkResult(r, spec);
    expect(r.trainableParams).toBe(512 * 10 + 10);
    expect(r.flops.backward).toBe(2 * 2 * 512 * 10); // fc's weight gradient only
  });

  it('resnet18 LoRA wraps the 5 convs of layer4 and trains fewer params than full (setup only)', () => {
    const lora = makeFinetuneSetup(rt(), finetuneSpec({ model: 'resnet18', strategy: 'lora', batch: 2, res: 32 }));
    const full = makeFinetuneSetup(rt(), finetuneSpec({ model: 'resnet18', strategy: 'full', batch: 2, res: 32 }));
    try {
      expect(loraLayerCount(lora)).toBe(5);
      expect(lora.totalParams).toBeGreaterThan(full.totalParams); // the adapters add parameters
      expect(lora.trainableParams).toBeLessThan(full.trainableParams / 10);
      expect(full.trainableParams).toBe(full.totalParams);
    } finally {
      lora.dispose();
      full.dispose();
    }
  });

  it('capture: resnet18 linear probe and bert-tiny full (dropout 0.1) give the uncaptured losses step for step, one submit per replay', async () => {
    for (const spec of [
      finetuneSpec({ model: 'resnet18', strategy: 'linear-probe', batch: 2, res: 32, steps: 2, warmup: 1 }),
      finetuneSpec({ model: 'bert-tiny', strategy: 'full', batch: 2, seq: 16, steps: 2, warmup: 1 }),
    ]) {
      const seen: number[] = [];
      const r = await runFinetuneBench(rt(), spec, { capture: true, kernels: false, onProgress: (d, t) => seen.push(d / t) });
      const c = r.capture!;
      expect(c, spec.model).toBeDefined();
      expect(seen[seen.length - 1]).toBe(1);
      expect(seen).toHaveLength(6);
      expect({ captures: c.captures, replays: c.replays }).toEqual({ captures: 1, replays: 2 });
      expect(c.losses).toHaveLength(3);
      expect(new Set(r.losses).size, `${spec.model}: the losses move`).toBe(3);
      for (let i = 0; i < 3; i++) expect(Math.abs(c.losses[i]! - r.losses[i]!), `${spec.model} loss ${i}`).toBeLessThanOrEqual(1e-6);
      expect(c.maxLossDiff).toBeLessThanOrEqual(1e-6);
      expect(c.submitsPerStep).toBe(1);
      expect(c.dispatchesPerStep).toBe(r.dispatchesPerStep);
      expect(c.stepMs).toHaveLength(2);
      expect(c.encodeSpeedup).toBeCloseTo(r.encodeMs / c.encodeMs, 9);
      expect(c.stepSpeedup).toBeCloseTo(r.medianStepMs / c.medianStepMs, 9);
      expect(formatFinetune(r).join('\n')).toMatch(/captured .* encode .*× vs uncaptured/);
      expect(rt().pool.stats.pinned, 'the capture was disposed').toBe(0);
    }
  });

  it('capture without a warm-up step is refused before anything runs', async () => {
    const spec = finetuneSpec({ model: 'resnet18', strategy: 'linear-probe', batch: 2, res: 32, steps: 1, warmup: 0 });
    await expect(runFinetuneBench(rt(), spec, { capture: true })).rejects.toThrow(/at least 1 warm-up step/);
  });

  it('rejects bad specs with a GraftError', () => {
    expect(() => makeFinetuneSetup(rt(), finetuneSpec({ model: 'resnet18', strategy: 'full', res: 16 }))).toThrow(GraftError);
    expect(() => makeFinetuneSetup(rt(), finetuneSpec({ model: 'bert-tiny', strategy: 'lora', seq: 600 }))).toThrow(GraftError);
    expect(() => makeFinetuneSetup(rt(), finetuneSpec({ model: 'bert-tiny', strategy: 'full', batch: 0 }))).toThrow(GraftError);
  });
});

describe('step FLOP model', () => {
  it('full BERT = 3× forward; LoRA and linear probe count less backward work', () => {
    const base = { model: 'bert-mini' as const, batch: 4, seq: 32 };
    const full = stepFlops(finetuneSpec({ ...base, strategy: 'full' }));
    const lora = stepFlops(finetuneSpec({ ...base, strategy: 'lora' }));
    const probe = stepFlops(finetuneSpec({ ...base, strategy: 'linear-probe' }));
    expect(full.total).toBe(3 * full.forward);
    expect(probe.forward).toBe(full.forward);
    expect(lora.forward).toBeGreaterThan(full.forward); // the adapter branches
    expect(lora.backward).toBeLessThan(full.backward);
    expect(lora.backward).toBeGreaterThan(probe.backward);
    expect(probe.backward).toBe(2 * 4 * 256 * 10); // classifier dW only
  });

  it('ResNet conv shapes follow torchvision (resnet50 at 224: 7×7 final map, 53 convs)', () => {
    const convs = resnetConvShapes(50, 224);
    expect(convs).toHaveLength(53);
    expect(convs[convs.length - 1]!.hout).toBe(7);
    expect(resnetConvShapes(18, 224)).toHaveLength(20);
    const full = stepFlops(finetuneSpec({ model: 'resnet50', strategy: 'full', batch: 1, res: 224 }));
    // ResNet-50 forward at 224 is about 4.1 G multiply-adds
    expect(full.forward / 2 / 1e9).toBeGreaterThan(4.0);
    expect(full.forward / 2 / 1e9).toBeLessThan(4.2);
    const stem = convs[0]!;
    const stemFwd = 2 * stem.hout * stem.hout * stem.cout * stem.cin * 49;
    expect(full.total).toBe(3 * full.forward - stemFwd); // no input gradient for the image
  });

  it('aggregates per-dispatch times by kernel, largest first', () => {
    const a = aggregateKernels(
      [
        { label: 'a', ms: 1 },
        { label: 'b', ms: 3 },
        { label: 'a', ms: 2 },
        { label: 'c', ms: 4 },
      ],
      2,
    );
    expect(a.totalMs).toBe(10);
    expect(a.timedDispatches).toBe(4);
    expect(a.top.map((k) => [k.kernel, k.ms, k.count])).toEqual([
      ['c', 4, 1],
      ['a', 3, 2],
    ]);
    expect(a.all).toHaveLength(3);
    expect(a.top[0]!.share).toBeCloseTo(0.4, 9);
  });
});

describe('graft bench finetune (CLI)', () => {
  const flags = (p: Partial<FinetuneFlags>): FinetuneFlags => ({
    model: 'bert-tiny',
    strategy: 'linear-probe',
    batch: 2,
    res: 64,
    seq: 16,
    steps: 2,
    warmup: 0,
    classes: 3,
    loraRank: 4,
    loraAlpha: 8,
    seed: 1,
    peer: [],
    kernels: false,
    json: true,
    ...p,
  });

  it('--json prints exactly one JSON object; peers get a ratio', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    let r: FinetuneBenchResult;
    try {
      r = await benchFinetuneCommand(flags({ peer: ['tfjs', 'torch'] }), rt(), async (_rt, spec, peers) =>
        peers.map((peer, i) => ({ peer, description: 'fake', samplesPerSec: i === 0 ? 2 : NaN, medianStepMs: 1, steps: spec.steps, skipped: i === 0 ? undefined : 'not installed' })),
      );
    } finally {
      process.stdout.write = write;
    }
    const text = out.join('');
    expect(text.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(text);
    expect(j.spec.numClasses).toBe(3);
    expect(j.spec.loraRank).toBe(4);
    expect(j.kernels).toBeNull();
    expect(j.kernelsNote).toBe('off');
    expect(j.submitsPerStep).toBe(1);
    expect(r.peers).toHaveLength(2);
    expect(r.peers![0]!.ratio).toBeCloseTo(r.samplesPerSec / 2, 9);
    expect(Number.isNaN(r.peers![1]!.ratio)).toBe(true);
    expect(j.peers[1].ratio).toBeNull();
  });

  it('--capture --json reports both runs; --capture with --warmup 0 is a GraftError', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    try {
      await benchFinetuneCommand(flags({ capture: true, warmup: 1, steps: 1 }), rt());
    } finally {
      process.stdout.write = write;
    }
    const j = JSON.parse(out.join(''));
    expect(j.encodeMs).toBeGreaterThan(0);
    expect(j.capture.encodeMs).toBeGreaterThan(0);
    expect(j.capture.medianStepMs).toBeGreaterThan(0);
    expect(j.capture.replays).toBe(1);
    expect(j.capture.losses).toHaveLength(2);
    await expect(benchFinetuneCommand(flags({ capture: true, warmup: 0 }), rt())).rejects.toThrow(GraftError);
  });

  it('parses the peer list and builds the spec from flags', () => {
    expect(parsePeerList('tfjs,torch')).toEqual(['tfjs', 'torch']);
    expect(parsePeerList('torch')).toEqual(['torch']);
    expect(parsePeerList('none')).toEqual([]);
    expect(() => parsePeerList('jax')).toThrow(GraftError);
    expect(() => parsePeerList('none,tfjs')).toThrow(GraftError);
    expect(specFromFlags(flags({ model: 'resnet50', strategy: 'lora', res: 96 }))).toMatchObject({ model: 'resnet50', strategy: 'lora', res: 96, numClasses: 3, loraRank: 4, loraAlpha: 8, seed: 1 });
  });

  it('comparePeers: NaN ratio for skipped peers', () => {
    const c = comparePeers({ samplesPerSec: 10 }, [
      { peer: 'a', description: '', samplesPerSec: 5, medianStepMs: 1, steps: 1 },
      { peer: 'b', description: '', samplesPerSec: NaN, medianStepMs: NaN, steps: 0, skipped: 'x' },
    ]);
    expect(c[0]!.ratio).toBe(2);
    expect(Number.isNaN(c[1]!.ratio)).toBe(true);
  });
});
