// `graft bench conv2d`: median GFLOP/s of one conv2d shape (NCHW, f32) on this adapter, optionally against tfjs.
import type { Command } from 'commander';
import { GraftError } from '../runtime/errors.js';
import { Runtime } from '../runtime/runtime.js';
import { CONV2D_VARIANTS } from '../kernels/conv2d.js';
import { conv2dCase } from '../bench/conv2d-case.js';
import { conv2dHostData, convLabel, convOutSize, convShape, type Conv2dShape } from '../bench/shapes.js';
import { formatOpBench, printJson } from '../bench/report.js';
import { runOpBench, type OpBenchSpec } from '../bench/run.js';
import { posInt } from './errors.js';
import { addBenchFlags, withProgress, type CommonBenchFlags } from './bench-flags.js';

interface Conv2dFlags extends CommonBenchFlags {
  n: number;
  c: number;
  h: number;
  w?: number;
  k: number;
  r: number;
  s?: number;
  stride: [number, number];
  pad: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Parse `A` or `A,B` into a pair of integers >= min. */
function intPair(flag: string, min: number) {
  return (v: string): [number, number] => {
    const parts = v.split(',');
    const nums = parts.map((p) => Number(p.trim()));
    if ((parts.length !== 1 && parts.length !== 2) || nums.some((n) => !Number.isInteger(n) || n < min)) {
      throw new GraftError(`${flag} must be an integer >= ${min} or a pair 'A,B' of them, got '${v}'`);
    }
    return [nums[0]!, nums[nums.length - 1]!];
  };
}

export function registerConv2dBench(bench: Command): Command {
  const cmd = bench
    .command('conv2d')
    .description('time y = conv2d(x [N, C, H, W], w [K, C/groups, R, S]) (NCHW, f32) and print the median GFLOP/s')
    .option('--n <N>', 'batch', posInt('--n'), 1)
    .option('--c <C>', 'input channels', posInt('--c'), 64)
    .option('--h <H>', 'input height', posInt('--h'), 56)
    .option('--w <W>', 'input width (default: H)', posInt('--w'))
    .option('--k <K>', 'output channels', posInt('--k'), 64)
    .option('--r <R>', 'kernel height', posInt('--r'), 3)
    .option('--s <S>', 'kernel width (default: R)', posInt('--s'))
    .option('--stride <S>', 'stride, or SH,SW', intPair('--stride', 1), [1, 1])
    .option('--pad <P>', 'zero padding on each side, or PH,PW', intPair('--pad', 0), [0, 0])
    .option('--dilation <D>', 'dilation, or DH,DW', intPair('--dilation', 1), [1, 1])
    .option('--groups <G>', 'channel groups (G = C = K: depthwise)', posInt('--groups'), 1);
  return addBenchFlags(cmd).action(async (flags: Conv2dFlags) => {
    await benchConv2d(flags);
  });
}

function checkShape(s: Conv2dShape): void {
  if (s.c % s.groups !== 0) throw new GraftError(`--c (${s.c}) must be divisible by --groups (${s.groups})`);
  if (s.k % s.groups !== 0) throw new GraftError(`--k (${s.k}) must be divisible by --groups (${s.groups})`);
  const [p, q] = convOutSize(s);
  if (p < 1 || q < 1) {
    throw new GraftError(`the ${s.r}×${s.s} kernel does not fit the padded ${s.h}×${s.w} input (output would be ${p}×${q})`);
  }
}

async function benchConv2d(f: Conv2dFlags): Promise<void> {
  if (f.variant !== undefined && !CONV2D_VARIANTS.includes(f.variant)) {
    throw new GraftError(`unknown conv2d variant '${f.variant}' (known: ${CONV2D_VARIANTS.join(', ')})`);
  }
  const shape = convShape({ ...f, w: f.w ?? f.h, s: f.s ?? f.r });
  checkShape(shape);
  const rt = await Runtime.create();
  try {
    const data = conv2dHostData(shape);
    const graft = conv2dCase(rt, shape, { variant: f.variant, data });
    const spec: OpBenchSpec = {
      op: 'conv2d',
      shape,
      label: `${convLabel(shape)} (NCHW, f32)`,
      variant: f.variant ?? 'auto',
      graft,
    };
    if (f.peer === 'tfjs') {
      const { loadTfjs, tfjsConv2dCase, tfjsConvUnsupported } = await import('../bench/tfjs.js');
      const why = tfjsConvUnsupported(shape);
      if (why) throw new GraftError(`--peer tfjs: ${why}`);
      spec.peer = async () => {
        const p = await loadTfjs();
        return { name: 'tfjs', version: p.version, case: tfjsConv2dCase(p, shape, data) };
      };
    }
    const counts = { warmup: f.warmup, repeats: f.repeats, timer: f.timer };
    const r = await withProgress(`conv2d ${convLabel(shape)}`, f.json, (hooks) => runOpBench(rt, spec, { ...counts, ...hooks }));
    graft.dispose();
    if (f.json) printJson(r);
    else for (const l of formatOpBench(r)) console.log(l);
  } finally {
    rt.destroy();
  }
}
