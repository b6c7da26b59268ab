// Conv2d geometry: option normalisation, output size, FLOP count and shape validation.
import { ShapeError } from '../runtime/errors.js';

export type Pair = number | [number, number];

/** Everything a conv2d launch needs to know about its shapes (all integers). */
export interface ConvGeom {
  N: number; C: number; H: number; W: number; // input [N, C, H, W]
  K: number; R: number; S: number;             // weights [K, C/groups, R, S]
  P: number; Q: number;                        // output [N, K, P, Q]
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
  groups: number; Cg: number; Kg: number;      // channels per group in / out
}

export interface GeomOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** A Pair as [height, width]. */
export function pair(v: Pair | undefined, dflt: number, what: string): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const min = what === 'padding' ? 0 : 1;
  for (const e of p) {
    if (!Number.isInteger(e) || e < min) throw new ShapeError(`conv2d: ${what} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** Output height/width: floor((h + 2·pad - dil·(r - 1) - 1) / stride) + 1. */
export function outputSize(h: number, w: number, r: number, s: number, o: GeomOptions = {}): [number, number] {
  const [sh, sw] = pair(o.stride, 1, 'stride');
  const [ph, pw] = pair(o.padding, 0, 'padding');
  const [dh, dw] = pair(o.dilation, 1, 'dilation');
  const P = Math.floor((h + 2 * ph - dh * (r - 1) - 1) / sh) + 1;
  const Q = Math.floor((w + 2 * pw - dw * (s - 1) - 1) / sw) + 1;
  return [Math.max(P, 0), Math.max(Q, 0)];
}

/** Validate x [N, C, H, W] against w [K, C/groups, R, S] and build the launch geometry. */
export function convGeom(xs: readonly number[], ws: readonly number[], o: GeomOptions = {}): ConvGeom {
  const both = `x [${xs.join(', ')}], w [${ws.join(', ')}]`;
  if (xs.length !== 4 || ws.length !== 4) throw new ShapeError(`conv2d: expected x [N, C, H, W] and w [K, C/groups, R, S], got ${both}`);
  const [N, C, H, W] = xs as [number, number, number, number];
  const [K, Cw, R, S] = ws as [number, number, number, number];
  const groups = o.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ShapeError(`conv2d: groups must be a positive integer, got ${groups} (${both})`);
  if (C % groups !== 0 || K % groups !== 0) {
    throw new ShapeError(`conv2d: groups ${groups} must divide both input channels ${C} and output channels ${K} (${both})`);
  }
  if (Cw * groups !== C) {
    throw new ShapeError(`conv2d: x has ${C} channels but w expects ${Cw} per group × ${groups} groups = ${Cw * groups} (${both})`);
  }
  if (R < 1 || S < 1) throw new ShapeError(`conv2d: empty kernel (${both})`);
  const [sh, sw] = pair(o.stride, 1, 'stride');
  const [ph, pw] = pair(o.padding, 0, 'padding');
  const [dh, dw] = pair(o.dilation, 1, 'dilation');
  const [P, Q] = outputSize(H, W, R, S, o);
  if (P < 1 || Q < 1) {
    throw new ShapeError(`conv2d: kernel ${R}×${S} (dilation ${dh}×${dw}) does not fit the padded input ${H + 2 * ph}×${W + 2 * pw} (${both})`);
  }
  return { N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups, Cg: C / groups, Kg: K / groups };
}

/** Multiply-adds × 2 of a convolution: 2·N·K·P·Q·(C/groups)·R·S. */
export function flops(n: number, c: number, h: number, w: number, k: number, r: number, s: number, o: GeomOptions = {}): number {
  const [P, Q] = outputSize(h, w, r, s, o);
  return 2 * n * k * P * Q * (c / (o.groups ?? 1)) * r * s;
}
