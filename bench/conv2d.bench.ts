// Conv2d benchmark: graft vs tfjs GFLOP/s on ResNet-50 convolutions at batch 1 and 8 (`node scripts/bench.mjs conv2d`).
import { conv2dCase } from '../src/bench/conv2d-case.js';
import { conv2dHostData, convLabel, convShape, type Conv2dShape } from '../src/bench/shapes.js';
import { tfjsConv2dCase, tfjsConvUnsupported } from '../src/bench/tfjs.js';
import { main, type CaseSpec } from './harness.js';

function convSpec(name: string, s: Conv2dShape): CaseSpec {
  let data: ReturnType<typeof conv2dHostData> | undefined;
  const get = () => (data ??= conv2dHostData(s));
  return {
    name,
    label: convLabel(s),
    shape: s,
    graft: (rt) => conv2dCase(rt, s, { data: get() }),
    peer: (p) => tfjsConvUnsupported(s) ?? tfjsConv2dCase(p, s, get()),
  };
}

/** ResNet-50 (torchvision v1.5: stride on the 3×3) convolutions, NCHW input [n, c, h, w]. */
function resnet50(n: number): [string, Conv2dShape][] {
  const c = (o: { c: number; h: number; k: number; r: number; stride?: number; pad?: number }) => convShape({ n, ...o });
  return [
    ['stem-7x7/2', c({ c: 3, h: 224, k: 64, r: 7, stride: 2, pad: 3 })],
    ['s2-1x1-reduce', c({ c: 256, h: 56, k: 64, r: 1 })],
    ['s2-3x3', c({ c: 64, h: 56, k: 64, r: 3, pad: 1 })],
    ['s2-1x1-expand', c({ c: 64, h: 56, k: 256, r: 1 })],
    ['s3-3x3/2', c({ c: 128, h: 56, k: 128, r: 3, stride: 2, pad: 1 })],
    ['s3-1x1-reduce', c({ c: 512, h: 28, k: 128, r: 1 })],
    ['s3-3x3', c({ c: 128, h: 28, k: 128, r: 3, pad: 1 })],
    ['s3-down-1x1/2', c({ c: 256, h: 56, k: 512, r: 1, stride: 2 })],
    ['s4-1x1-reduce', c({ c: 1024, h: 14, k: 256, r: 1 })],
    ['s4-3x3', c({ c: 256, h: 14, k: 256, r: 3, pad: 1 })],
    ['s4-down-1x1/2', c({ c: 512, h: 28, k: 1024, r: 1, stride: 2 })],
    ['s5-1x1-reduce', c({ c: 2048, h: 7, k: 512, r: 1 })],
    ['s5-3x3', c({ c: 512, h: 7, k: 512, r: 3, pad: 1 })],
    ['s5-1x1-expand', c({ c: 512, h: 7, k: 2048, r: 1 })],
  ];
}

function cases(quick: boolean): CaseSpec[] {
  if (quick) {
    return [
      convSpec('stem-7x7/2', convShape({ n: 1, c: 3, h: 16, k: 8, r: 7, stride: 2, pad: 3 })),
      convSpec('3x3', convShape({ n: 2, c: 8, h: 9, k: 8, r: 3, pad: 1 })),
      convSpec('down-1x1/2', convShape({ n: 1, c: 8, h: 8, k: 16, r: 1, stride: 2 })),
    ];
  }
  return [1, 8].flatMap((n) => resnet50(n).map(([name, s]) => convSpec(`b${n}-${name}`, s)));
}

await main('conv2d', cases);
