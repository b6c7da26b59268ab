// graft finetune / graft eval: one-line errors for bad flags, models and data paths; a tiny end-to-end run with --json logs, checkpoint, resume and eval.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerFinetuneCommands, finetuneCommand, type FinetuneOptions } from '../src/cli/finetune.js';
import { evalCommand } from '../src/cli/eval.js';
import { GraftError } from '../src/runtime/errors.js';

function program(): Command {
  const p = new Command().name('graft').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerFinetuneCommands(p);
  return p;
}
const run = (args: string[]) => program().parseAsync(['node', 'graft', ...args]);

const base = (o: Partial<FinetuneOptions>): FinetuneOptions => ({
  model: 'resnet18', data: 'fashion-mnist', strategy: 'linear-probe', epochs: 1, batch: 8, res: 8, trainLimit: 16, testLimit: 16, seed: 1, monitor: 'accuracy',
  backboneLrDiv: 10, cacheFeatures: true, accumulate: 1, logEvery: 1, augment: false, json: true, ...o,
});

const shared: { out?: string } = {};

describe('graft finetune / eval CLI', () => {
  afterEach(() => vi.restoreAllMocks());

  it('bad flags, unknown models and strategies, bad data paths: one GraftError line each', async () => {
    await expect(run(['finetune', '--model', 'resnet18', '--data', 'fashion-mnist', '--batch', '0'])).rejects.toThrow(/--batch must be a positive integer, got '0'/);
    await expect(run(['finetune', '--model', 'resnet18', '--data', 'fashion-mnist', '--lr', 'abc'])).rejects.toThrow(/--lr must be a positive number/);
    await expect(run(['finetune', '--model', 'vgg16', '--data', 'fashion-mnist'])).rejects.toThrow(/unknown model 'vgg16' \(known: resnet50-imagenet, resnet18/);
    await expect(run(['finetune', '--model', 'resnet18', '--data', 'fashion-mnist', '--strategy', 'magic'])).rejects.toThrow(/--strategy must be one of linear-probe, full, gradual/);
    await expect(run(['finetune', '--model', 'resnet18', '--data', '/nonexistent/images'])).rejects.toThrow(/--data \/nonexistent\/images: not 'fashion-mnist', 'mnist', or an existing image folder/);
    await expect(run(['finetune', '--model', 'resnet18', '--data', '/etc/hostname'])).rejects.toThrow(/not a directory/);
    await expect(run(['finetune', '--model', 'resnet18', '--data', 'fashion-mnist', '--resume', '/nonexistent/ckpt'])).rejects.toThrow(/checkpoint \/nonexistent\/ckpt does not exist/);
    await expect(run(['eval', '--checkpoint', '/nonexistent/ckpt'])).rejects.toThrow(/does not exist/);
    await expect(run(['finetune', '--data', 'fashion-mnist'])).rejects.toThrow(/--model/);
    for (const e of [new GraftError('x')]) expect(e.message.includes('\n')).toBe(false);
  });

  it('tiny end-to-end (linear probe, cached features): --json records, checkpoint, resume with a different flag refused, eval reproduces the accuracy', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void lines.push(s));
    const out = await mkdtemp(join(tmpdir(), 'graft-ft-'));
    const s = await finetuneCommand(base({ out, epochs: 1 }));
    expect(s.steps).toBe(2);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const train = recs.filter((r) => r.type === 'train');
    expect(train.map((r) => r.step)).toEqual([1, 2]);
    for (const r of train) for (const k of ['step', 'epoch', 'loss', 'lr', 'samplesPerSec']) expect(typeof r[k]).toBe('number');
    expect(recs.some((r) => r.type === 'eval')).toBe(true);
    const summary = recs[recs.length - 1]!;
    expect(summary.type).toBe('summary');
    expect(summary.testAccuracy).toBe(s.testAccuracy);
    expect(s.checkpoint).toBe(join(out, 'step-000002'));

    await expect(finetuneCommand(base({ resume: out, epochs: 2, res: 24 }))).rejects.toThrow(/different --res \(8\)/);
    lines.length = 0;
    const e = await evalCommand({ checkpoint: out, json: true });
    expect(e.checkpoint).toBe(join(out, 'step-000002'));
    expect(e.examples).toBe(16);
    expect(e.accuracy).toBeCloseTo(s.testAccuracy, 10);
    expect(JSON.parse(lines[0]!)).toMatchObject({ checkpoint: e.checkpoint, accuracy: e.accuracy });
    shared.out = out;
  }, 120_000);

  it('--resume continues from the last checkpoint to the new epoch budget', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    const out = shared.out ?? (await mkdtemp(join(tmpdir(), 'graft-ft-')));
    if (!shared.out) await finetuneCommand(base({ out, epochs: 1 }));
    lines.length = 0;
    const s2 = await finetuneCommand(base({ resume: out, out, epochs: 2 }));
    expect(s2.steps).toBe(4);
    expect(lines.map((l) => JSON.parse(l) as { type: string; step: number }).filter((r) => r.type === 'train').map((r) => r.step)).toEqual([3, 4]);
    expect(s2.checkpoint).toBe(join(out, 'step-000004'));
  }, 120_000);
});
