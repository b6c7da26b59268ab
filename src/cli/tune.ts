// `graft tune`: measure matmul / conv2d tile variants for a model's training-step shape classes and cache the choices.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { tuneShapes, type TuneRow } from '../kernels/autotune.js';
import { configureTuning, tuneCachePath, type TuneShape } from '../kernels/tune-cache.js';
import { TUNE_MODELS, modelTuneShapes, standardMatmulShapes, type TuneModel } from '../kernels/tune-shapes.js';
import { posInt } from './errors.js';
import { startProgress } from './progress.js';

interface TuneFlags {
  matmul?: boolean;
  conv2d?: boolean;
  model?: string[];
  batch: number;
  res: number;
  seq: number;
  classes: number;
  reps: number;
  force?: boolean;
  cache?: string;
  json?: boolean;
}

/** Parse `--model a,b` (repeatable) into known model names. */
function models(v: string, prev: string[] = []): string[] {
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(TUNE_MODELS as readonly string[]).includes(n)) throw new GraftError(`--model: unknown model '${n}' (known: ${TUNE_MODELS.join(', ')})`);
  }
  return [...prev, ...names];
}

const isModel = (n: string): n is TuneModel => (TUNE_MODELS as readonly string[]).includes(n);

export function registerTuneCommand(program: Command): Command {
  return program
    .command('tune')
    .description(
      "measure the matmul and conv2d tile variants on this adapter for a model's training-step shape classes and save the fastest to the tuning cache",
    )
    .option('--matmul', 'tune matmul variants (default: both families)')
    .option('--conv2d', 'tune conv2d variants (default: both families)')
    .option('--model <names>', `model(s) whose training-step shapes to tune, comma-separated or repeated: ${TUNE_MODELS.join(', ')} (default: a standard matmul list + resnet50)`, models)
    .option('--batch <B>', 'examples per step', posInt('--batch'), 8)
    .option('--res <R>', 'ResNet input side in pixels', posInt('--res'), 64)
    .option('--seq <S>', 'BERT tokens per sequence', posInt('--seq'), 128)
    .option('--classes <C>', 'classes of the head', posInt('--classes'), 10)
    .option('--reps <N>', 'timed runs per candidate (best is kept)', posInt('--reps'), 3)
    .option('--force', 'measure again classes that are already cached')
    .option('--cache <file>', 'tuning cache file (default: $GRAFT_TUNE_CACHE, else <cache dir>/tuning.json)')
    .option('--json', 'print one JSON object')
    .action(async (f: TuneFlags) => {
      await tune(f);
    });
}

function shapesFor(f: TuneFlags): TuneShape[] {
  const spec = { batch: f.batch, res: f.res, seq: f.seq, classes: f.classes };
  const both = !f.matmul && !f.conv2d;
  const want = (s: TuneShape): boolean => both || (s.kind === 'matmul' ? !!f.matmul : !!f.conv2d);
  const list = f.model?.length
    ? f.model.filter(isModel).flatMap((m) => modelTuneShapes(m, spec))
    : [...standardMatmulShapes(), ...modelTuneShapes('resnet50', spec).filter((s) => s.kind === 'conv2d')];
  const out = list.filter(want);
  if (!out.length) throw new GraftError(`nothing to tune: the chosen model(s) have no ${f.matmul ? 'matmul' : 'conv2d'} shapes`);
  return out;
}

const fmt = (ms: number | null): string => (ms === null || !Number.isFinite(ms) ? '-' : ms < 10 ? ms.toFixed(3) : ms.toFixed(1));

/** The table printed by `graft tune`. */
export function formatTuneTable(rows: readonly TuneRow[]): string[] {
  const head = ['family', 'shape class', 'variant', 'ms', 'runner-up', 'ms', 'default', 'ms', 'speed-up', ''];
  const body = rows.map((r) => [
    r.family,
    r.cls,
    r.variant,
    fmt(r.ms),
    r.runnerUp ?? '-',
    fmt(r.runnerUpMs),
    r.defaultVariant,
    fmt(r.defaultMs),
    r.defaultMs === null ? '-' : `${(r.defaultMs / r.ms).toFixed(2)}×`,
    r.cached ? '(cached)' : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

async function tune(f: TuneFlags): Promise<void> {
  const shapes = shapesFor(f);
  const rt = await Runtime.create();
  try {
    if (f.cache) configureTuning(rt, { path: f.cache });
    const bar = startProgress('tune', { total: 1, unit: 'classes', json: f.json });
    let rows: TuneRow[];
    try {
      rows = await tuneShapes(rt, shapes, {
        force: f.force,
        reps: f.reps,
        onClass: (family, cls, i, total) => {
          bar.label(`${family} ${cls}`);
          bar.update(i, total);
        },
      });
    } finally {
      bar.stop();
    }
    const path = tuneCachePath(rt);
    if (f.json) {
      console.log(JSON.stringify({ adapter: rt.adapterKey(), cache: path, rows }, null, 1));
      return;
    }
    console.log(`adapter   ${rt.adapterKey()}`);
    console.log(`cache     ${path}`);
    for (const l of formatTuneTable(rows)) console.log(l);
  } finally {
    rt.destroy();
  }
}
