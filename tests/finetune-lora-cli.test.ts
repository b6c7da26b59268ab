// graft finetune --strategy lora: one-line errors for bad --lora-* flags; PEFT adapter saved under --out/adapter reloads and reproduces the logits; graft eval and --resume on a LoRA run.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { Tensor } from '../src/tensor.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/data/rng.js';
import { registerFinetuneCommands, finetuneCommand, type FinetuneOptions } from '../src/cli/finetune.js';
import { evalCommand } from '../src/cli/eval.js';
import { buildModel, loadData, preprocessFor } from '../src/train/setup.js';
import { readCheckpoint, resolveCheckpointDir, restoreModel } from '../src/train/checkpoint.js';
import { ResNet } from '../src/models/resnet.js';
import { applyLora, loadLoraAdapter, loraConfigOf } from '../src/peft/index.js';
import { imagePipeline } from '../src/data/image-transforms.js';
import { toBatch } from '../src/data/image-batch.js';

function program(): Command {
  const p = new Command().name('graft').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerFinetuneCommands(p);
  return p;
}
const run = (args: string[]) => program().parseAsync(['node', 'graft', ...args]);
const ft = ['finetune', '--model', 'resnet18', '--data', 'fashion-mnist', '--train-limit', '8', '--test-limit', '8', '--res', '16'];

const base = (o: Partial<FinetuneOptions>): FinetuneOptions => ({
  model: 'resnet18', data: 'fashion-mnist', strategy: 'lora', epochs: 1, batch: 8, res: 32, trainLimit: 16, testLimit: 16, seed: 1, monitor: 'accuracy',
  backboneLrDiv: 10, cacheFeatures: true, accumulate: 1, logEvery: 1, augment: false, json: true, loraR: 4, loraAlpha: 8, lr: 3e-3, ...o,
});

describe('graft finetune --strategy lora', () => {
  const gpu = useRuntime();
  afterEach(() => vi.restoreAllMocks());

  it('bad --lora-* values and --lora-* without --strategy lora: one-line errors', async () => {
    const cases: [string[], RegExp][] = [
      [[...ft, '--strategy', 'lora', '--lora-r', '0'], /--lora-r must be a positive integer, got '0'/],
      [[...ft, '--strategy', 'lora', '--lora-r', '2.5'], /--lora-r must be a positive integer/],
      [[...ft, '--strategy', 'lora', '--lora-alpha', 'abc'], /--lora-alpha must be a positive number, got 'abc'/],
      [[...ft, '--strategy', 'lora', '--lora-dropout', '1'], /--lora-dropout must be a number in \[0, 1\), got '1'/],
      [[...ft, '--strategy', 'lora', '--lora-targets', 'layer4.(conv'], /--lora-targets 'layer4.\(conv' is not a valid regular expression/],
      [[...ft, '--strategy', 'lora', '--lora-targets', 'conv1,,conv2'], /--lora-targets 'conv1,,conv2': empty name in the list/],
      [[...ft, '--strategy', 'full', '--lora-r', '4'], /--lora-r needs --strategy lora/],
      [[...ft, '--strategy', 'linear-probe', '--rslora'], /--rslora needs --strategy lora/],
      [[...ft, '--strategy', 'lora', '--lora-targets', 'nothing_here'], /applyLora: targetModules \/nothing_here\/ \(whole-name match\) match no module of the model/],
      [[...ft, '--strategy', 'lora', '--lora-targets', 'layer4'], /target 'layer4' is a Sequential; LoRA supports Linear and Conv2d/],
    ];
    for (const [args, re] of cases) {
      const e = await run(args).then(
        () => null,
        (err: unknown) => err as Error,
      );
      expect(e, args.join(' ')).not.toBeNull();
      expect(e!.message).toMatch(re);
      expect(e!.message.includes('\n'), e!.message).toBe(false);
    }
  }, 60_000);

  it('end to end: adapter files in PEFT format; the adapter and graft eval reproduce the run; --resume continues, with other LoRA settings refused', async () => {
    const rt = gpu();
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void lines.push(s));
    const out = await mkdtemp(join(tmpdir(), 'graft-lora-'));
    const s = await finetuneCommand(base({ out }));
    expect(s.strategy).toBe('lora');
    expect(s.steps).toBe(2);
    expect(s.cacheSeconds).toBeGreaterThan(0);
    expect(s.adapter).toBe(join(out, 'adapter'));
    const summary = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
    expect(summary).toMatchObject({ type: 'summary', strategy: 'lora', adapter: s.adapter });
    expect(existsSync(join(out, 'adapter', 'adapter_model.safetensors'))).toBe(true);
    const cfg = JSON.parse(await readFile(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0, use_rslora: false, modules_to_save: ['fc'], base_model_name_or_path: 'resnet18' });
    expect(cfg.target_modules).toBe('layer4\\.\\d+\\.(conv\\d|downsample\\.0)');

    // graft eval on the checkpoint: the same test metrics
    lines.length = 0;
    const e = await evalCommand({ checkpoint: out, json: true });
    expect(e.examples).toBe(16);
    expect(e.accuracy).toBeCloseTo(s.testAccuracy, 10);
    expect(Math.abs(e.loss - s.testLoss)).toBeLessThan(1e-4);

    // the PEFT adapter on a fresh base model gives the checkpoint's logits
    const data = await loadData('fashion-mnist', { trainLimit: 1, testLimit: 16, seed: 1 });
    const tf = imagePipeline(preprocessFor('torchvision', data.channels, 32));
    const ex = Array.from({ length: 8 }, (_, i) => tf(data.test.get(i), new Rng(0)));
    const b = toBatch(ex);
    const logitsOf = async (m: ResNet): Promise<Float32Array> => {
      m.eval();
      const y = noGrad(() => m.forward(Tensor.from(rt, b.x, b.shape)));
      const v = await y.read();
      y.dispose();
      return v;
    };
    const fresh = async (): Promise<ResNet> => {
      const built = await buildModel(rt, 'resnet18', { seed: 1 });
      if (!(built.model instanceof ResNet)) throw new Error('expected a torchvision ResNet');
      built.model.resetClassifier(10);
      return built.model;
    };
    const viaAdapter = await fresh();
    const loaded = await loadLoraAdapter(viaAdapter, join(out, 'adapter'));
    expect(loaded.applied).toBe(true);
    const viaCkpt = await fresh();
    const ck = await readCheckpoint(await resolveCheckpointDir(out));
    applyLora(viaCkpt, { ...loraConfigOf(viaAdapter)!, targetModules: loraConfigOf(viaAdapter)!.targetModules });
    restoreModel(rt, viaCkpt, ck);
    const a = await logitsOf(viaAdapter);
    const c = await logitsOf(viaCkpt);
    expectClose(a, c, { atol: 1e-5, rtol: 1e-5 }, 'adapter vs checkpoint logits');
    const untrained = await fresh();
    const u = await logitsOf(untrained);
    expect(a.some((v, i) => Math.abs(v - u[i]!) > 1e-4)).toBe(true);
    for (const m of [viaAdapter, viaCkpt, untrained]) m.dispose();

    await expect(finetuneCommand(base({ resume: out, out, epochs: 2, loraR: 8 }))).rejects.toThrow(/different LoRA settings \(\{"r":4/);
    lines.length = 0;
    const s2 = await finetuneCommand(base({ resume: out, out, epochs: 2 }));
    expect(s2.steps).toBe(4);
    expect(lines.map((l) => JSON.parse(l) as { type: string; step: number }).filter((r) => r.type === 'train').map((r) => r.step)).toEqual([3, 4]);
  }, 600_000);
});
