// Checkpoints: resume equals an uninterrupted run (weights bit-for-bit, same losses), corrupt/mismatched checkpoints rejected with the previous one untouched, atomic replacement.
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, truncate, writeFile, mkdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useRuntime } from './helpers/gpu.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { CheckpointError } from '../src/runtime/errors.js';
import { Tensor } from '../src/tensor.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import type { Dataset, ImageExample } from '../src/data/dataset.js';
import { Trainer, type TrainResult } from '../src/train/trainer.js';
import { prepareImageTraining, type Strategy } from '../src/train/strategies.js';
import {
  MODEL_FILE,
  TRAINER_FILE,
  readCheckpoint,
  readPointer,
  resolveCheckpointDir,
  restoreModel,
  saveCheckpoint,
} from '../src/train/checkpoint.js';
import { TinyNet, SMALL_PREPROCESS } from './train-loop-helpers.js';

async function weights(m: TinyNet): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of m.stateDict()) out.set(k, await t.read());
  return out;
}

interface Run {
  model: TinyNet;
  trainer: { fit(): Promise<TrainResult>; resume(path: string): Promise<unknown>; readonly step: number };
  losses: number[];
  dispose(): void;
}

async function setup(rt: Runtime, data: Dataset<ImageExample>, strategy: Strategy, modelSeed: number, out?: string, maxSteps?: number): Promise<Run> {
  const model = new TinyNet(rt, 10, modelSeed);
  const prep = await prepareImageTraining(rt, model, data, null, {
    strategy, numClasses: 10, lr: 0.01, batchSize: 8, epochs: 2, seed: 11, preprocess: SMALL_PREPROCESS, augment: true, resetHead: false,
  });
  const losses: number[] = [];
  const trainer = new Trainer({
    rt, epochs: 2, logEvery: 1, accumulate: 2, clipNorm: 1, outDir: out, maxSteps, ...prep.trainer,
    onLog: (r) => {
      if (r.type === 'train') losses.push(r.loss);
    },
  });
  return { model, trainer, losses, dispose: () => (prep.dispose(), model.dispose()) };
}

describe('checkpoints', () => {
  const gpu = useRuntime();

  for (const [strategy, cut] of [['full', 3], ['gradual', 5]] as const) {
    it(`${strategy}: N/2 steps + save + fresh objects + resume equals N steps straight (bit-for-bit)`, async () => {
      const rt = gpu();
      const data = await loadFashionMnist({ split: 'train', limit: 64 });
      // 64 examples / batch 8 / accumulate 2 = 4 steps per epoch, 2 epochs = 8 steps.
      const straight = await setup(rt, data, strategy, 21);
      const r0 = await straight.trainer.fit();
      expect(r0.steps).toBe(8);
      const want = await weights(straight.model);

      const out = await mkdtemp(join(tmpdir(), 'graft-resume-'));
      const first = await setup(rt, data, strategy, 21, out, cut);
      expect((await first.trainer.fit()).steps).toBe(cut);
      first.dispose();
      // A "new process": new model (different init), optimizer, scheduler and loader, then resume.
      const second = await setup(rt, data, strategy, 999, undefined);
      await second.trainer.resume(out);
      expect(second.trainer.step).toBe(cut);
      const r1 = await second.trainer.fit();
      expect(r1.steps).toBe(8);
      expect([...first.losses, ...second.losses]).toEqual(straight.losses);
      const got = await weights(second.model);
      for (const [k, w] of want) expect(got.get(k), k).toEqual(w);
      straight.dispose();
      second.dispose();
    }, 60_000);
  }

  it('corrupt or mismatched checkpoints are rejected with a clear error; the model and the previous checkpoint are untouched', async () => {
    const rt = gpu();
    const data = await loadFashionMnist({ split: 'train', limit: 64 });
    const out = await mkdtemp(join(tmpdir(), 'graft-corrupt-'));
    const run = await setup(rt, data, 'full', 5, out, 2);
    await run.trainer.fit();
    const good = (await readPointer(out, 'last'))!;
    expect(good).toBe(join(out, 'step-000002'));
    const goodBytes = await readFile(join(good, MODEL_FILE));

    // A later checkpoint whose model file got truncated.
    const bad = join(out, 'step-000004');
    await saveCheckpoint(bad, { model: run.model, optimizer: null, trainer: (await readCheckpoint(good)).trainer });
    const size = (await stat(join(bad, MODEL_FILE))).size;
    await truncate(join(bad, MODEL_FILE), size - 100);
    await expect(readCheckpoint(bad)).rejects.toThrow(CheckpointError);
    await expect(readCheckpoint(bad)).rejects.toThrow(/model\.safetensors/);

    // Bad trainer.json.
    await writeFile(join(bad, TRAINER_FILE), '{"format": "graft-checkpoint-1", "step": ');
    await expect(readCheckpoint(bad)).rejects.toThrow(/trainer\.json: not valid JSON/);
    await writeFile(join(bad, TRAINER_FILE), JSON.stringify({ format: 'graft-checkpoint-1', step: -1 }));
    await expect(readCheckpoint(bad)).rejects.toThrow(/'step' must be/);

    // Resume from the corrupt folder fails before touching the model; then resume from the good one works.
    const fresh = await setup(rt, data, 'full', 77);
    const before = await weights(fresh.model);
    await expect(fresh.trainer.resume(bad)).rejects.toThrow(CheckpointError);
    expect(await weights(fresh.model)).toEqual(before);
    await fresh.trainer.resume(out);
    expect(fresh.trainer.step).toBe(2);

    // Shape mismatch: the error names the file, the tensor and both shapes; nothing is written.
    const other = new TinyNet(rt, 3, 1);
    const otherBefore = await weights(other);
    const ck = await readCheckpoint(good);
    expect(() => restoreModel(rt, other, ck)).toThrow(/model\.safetensors: tensor 'fc\.weight' has shape \[10, 32\], model has \[3, 32\]/);
    expect(await weights(other)).toEqual(otherBefore);

    // The previous checkpoint is byte-identical.
    expect(await readFile(join(good, MODEL_FILE))).toEqual(goodBytes);
    other.dispose();
    fresh.dispose();
    run.dispose();
  }, 60_000);

  it('a save that fails midway leaves no folder under the final name and the old checkpoint intact; leftovers are ignored', async () => {
    const rt = gpu();
    const out = await mkdtemp(join(tmpdir(), 'graft-atomic-'));
    const m = new TinyNet(rt, 10, 3);
    const trainerState = { step: 1, epoch: 0, loader: { epoch: 0, index: 8, seed: 1 }, scheduler: null, best: null, evalsSinceBest: 0, config: { a: 1 } };
    const dir = join(out, 'step-000001');
    await saveCheckpoint(dir, { model: m, optimizer: null, trainer: trainerState });
    const bytes = await readFile(join(dir, MODEL_FILE));
    // A model whose tensors cannot be read (disposed) makes the save throw after the temp folder was started.
    const broken = new TinyNet(rt, 10, 4);
    broken.dispose();
    await expect(saveCheckpoint(dir, { model: broken, optimizer: null, trainer: { ...trainerState, step: 2 } })).rejects.toThrow();
    expect(await readFile(join(dir, MODEL_FILE))).toEqual(bytes);
    expect((await readCheckpoint(dir)).trainer.step).toBe(1);
    expect(existsSync(`${dir}.tmp-${process.pid}`)).toBe(false);
    // An interrupted save from another process leaves a .tmp folder: it is not a checkpoint.
    await mkdir(join(out, 'step-000002.tmp-12345'));
    await writeFile(join(out, 'last.json'), JSON.stringify({ dir: 'step-000001' }));
    expect(await resolveCheckpointDir(out)).toBe(dir);
    await expect(resolveCheckpointDir(join(out, 'step-000002.tmp-12345'))).rejects.toThrow(/neither trainer\.json nor/);
    await expect(resolveCheckpointDir(join(out, 'nope'))).rejects.toThrow(/does not exist/);
    // Replacing an existing checkpoint folder swaps it whole.
    const t = Tensor.from(rt, new Float32Array(10).fill(0.5), [10]);
    m.fc.bias!.dispose();
    m.fc.bias = t;
    await saveCheckpoint(dir, { model: m, optimizer: null, trainer: { ...trainerState, step: 3 } });
    const ck = await readCheckpoint(dir);
    expect(ck.trainer.step).toBe(3);
    expect([...ck.model.get('fc.bias')!.data]).toEqual(new Array(10).fill(0.5));
    m.dispose();
  }, 60_000);
});
