// Convolution and pooling primitives (NCHW): conv2d with fused bias/relu, max/avg/global-average pooling.
import { conv2d } from '../../kernels/conv2d.js';
import { conv2dBackwardBias, conv2dBackwardData, conv2dBackwardWeight, type ConvOpts } from '../../kernels/conv2d-backward.js';
import { activationBackward } from '../../kernels/activation-backward.js';
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions } from '../../kernels/pool2d.js';
import { avgPool2dBackward, globalAvgPool2dBackward, maxPool2dBackward } from '../../kernels/pool2d-backward.js';
import type { Shape, Tensor } from '../../tensor.js';
import type { Rules } from '../rule.js';
import { consume } from './util.js';

export interface Conv2dParams extends ConvOpts {
  activation: 'none' | 'relu';
}

export type ConvPrims = {
  /** x [N, C, H, W] ⋆ w [K, C/groups, R, S] (+ b [K]) then optional relu; inputs [x, w] or [x, w, b]. */
  conv2d: { params: Conv2dParams; saved: { x: Tensor | null; w: Tensor | null; y: Tensor | null; xShape: Shape; wShape: Shape } };
  maxPool2d: { params: Pool2dOptions; saved: { x: Tensor } };
  avgPool2d: { params: Pool2dOptions; saved: { xShape: Shape } };
  /** x [N, C, H, W] -> [N, C]. */
  globalAvgPool2d: { params: null; saved: { xShape: Shape } };
};

const geom = (p: Conv2dParams): ConvOpts => ({ stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups });

export const convRules: Rules<ConvPrims> = {
  conv2d: {
    forward: (ctx, [x, w, b], p) => {
      const y = conv2d(x!, w!, { ...geom(p), bias: b, activation: p.activation });
      return {
        out: [y],
        saved: {
          x: ctx.needs[1] ? ctx.save(x!) : null,
          w: ctx.needs[0] ? ctx.save(w!) : null,
          y: p.activation === 'relu' ? ctx.save(y) : null,
          xShape: x!.shape,
          wShape: w!.shape,
        },
      };
    },
    backward: (ctx, [gy], s, p) => {
      const g = p.activation === 'relu' ? activationBackward(s.y!, gy!, 'relu') : gy!.reshape(gy!.shape);
      return consume(g, (g) => [
        ctx.needs[0] ? conv2dBackwardData(g, s.w!, s.xShape, geom(p)) : null,
        ctx.needs[1] ? conv2dBackwardWeight(s.x!, g, s.wShape, geom(p)) : null,
        ctx.needs[2] ? conv2dBackwardBias(g) : null,
      ]);
    },
  },
  maxPool2d: {
    forward: (ctx, [x], p) => ({ out: [maxPool2d(x!, p)], saved: { x: ctx.save(x!) } }),
    backward: (_ctx, [gy], s, p) => [maxPool2dBackward(gy!, s.x, p)],
  },
  avgPool2d: {
    forward: (_ctx, [x], p) => ({ out: [avgPool2d(x!, p)], saved: { xShape: x!.shape } }),
    backward: (_ctx, [gy], s, p) => [avgPool2dBackward(gy!, s.xShape, p)],
  },
  globalAvgPool2d: {
    forward: (_ctx, [x]) => ({ out: [globalAvgPool2d(x!)], saved: { xShape: x!.shape } }),
    backward: (_ctx, [gy], s) => [globalAvgPool2dBackward(gy!, s.xShape)],
  },
};
