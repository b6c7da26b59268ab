// Matmul kernel variants: shader composition (body + common + io), launch grids, adapter checks, and the default choice.
import common from '../../shaders/matmul_common.wgsl';
import ioVec4 from '../../shaders/matmul_io_vec4.wgsl';
import ioScalar from '../../shaders/matmul_io_scalar.wgsl';
import sgBody from '../../shaders/matmul_sg.wgsl';
import rbBody from '../../shaders/matmul_rb.wgsl';
import skinnyBody from '../../shaders/matmul_skinny.wgsl';
import tiledBody from '../../shaders/matmul_tiled.wgsl';
import type { Runtime } from '../runtime/runtime.js';
import type { KernelDef } from '../runtime/pipelines.js';
import { ceilDiv, grid1d } from './grid.js';

/** The four kernel families (see the header of each shaders/matmul_<algo>.wgsl). */
export type MatmulAlgo = 'sg' | 'rb' | 'skinny' | 'tiled';

/** A named variant: algorithm, rows per invocation for 'sg', and whether scalar loads are forced. */
export interface MatmulVariant {
  name: string;
  algo: MatmulAlgo;
  /** 'sg' only: 8-row groups per invocation (rows per invocation = 8·G). */
  groups: number;
  /** Force scalar loads/stores (otherwise vec4 whenever the shapes allow it). */
  scalar: boolean;
}

const BASE: readonly Omit<MatmulVariant, 'name' | 'scalar'>[] = [
  { algo: 'tiled', groups: 0 },
  { algo: 'rb', groups: 0 },
  { algo: 'skinny', groups: 0 },
  { algo: 'sg', groups: 1 },
  { algo: 'sg', groups: 2 },
  { algo: 'sg', groups: 4 },
  { algo: 'sg', groups: 8 },
];

const baseName = (v: Omit<MatmulVariant, 'name' | 'scalar'>): string => (v.algo === 'sg' ? `sg${8 * v.groups}` : v.algo);

/** Every variant by name. `<name>_s` forces scalar loads; `<name>` uses vec4 loads when alignment allows, else scalar. */
export const VARIANT_TABLE: ReadonlyMap<string, MatmulVariant> = new Map(
  [false, true].flatMap((scalar) =>
    BASE.map((v): [string, MatmulVariant] => {
      const name = baseName(v) + (scalar ? '_s' : '');
      return [name, { ...v, name, scalar }];
    }),
  ),
);

const BODIES: Record<MatmulAlgo, string> = { sg: sgBody, rb: rbBody, skinny: skinnyBody, tiled: tiledBody };
const kernels = new Map<string, KernelDef>();

/** The composed kernel: variant body, then the shared part, then the io layer (vec4 or scalar). */
export function matmulKernel(algo: MatmulAlgo, vec4: boolean): KernelDef {
  const name = `matmul_${algo}_${vec4 ? 'vec4' : 'scalar'}`;
  let k = kernels.get(name);
  if (!k) {
    k = { name, code: `${BODIES[algo]}\n${common}\n${vec4 ? ioVec4 : ioScalar}` };
    kernels.set(name, k);
  }
  return k;
}

/** Invocations per workgroup along x for the 'sg' kernel (two groups of 8 lanes). */
const SG_WG = 16;

/** Workgroup grid [x, y] for one batch slice of C [M, N]. */
export function matmulGrid(v: MatmulVariant, M: number, N: number, maxPerDim: number): [number, number] {
  const groups4 = ceilDiv(N, 4);
  switch (v.algo) {
    case 'sg':
      return [ceilDiv(groups4, SG_WG), ceilDiv(M, 8 * v.groups)];
    case 'rb':
      return [ceilDiv(groups4, 16), ceilDiv(M, 64)];
    case 'skinny':
      return grid1d(M * groups4, 64, maxPerDim);
    case 'tiled':
      return [ceilDiv(N, 64), ceilDiv(M, 64)];
  }
}

/** Override constants specific to the variant (the caller adds the transposes). */
export function variantConstants(v: MatmulVariant): Record<string, number> {
  return v.algo === 'sg' ? { G: v.groups, WG: SG_WG } : {};
}

/** A software (CPU) adapter such as llvmpipe or SwiftShader: there, register blocking beats workgroup memory. */
export function isCpuAdapter(rt: Runtime): boolean {
  const i = rt.adapter.info;
  if (i.isFallbackAdapter) return true;
  return /llvmpipe|lavapipe|swiftshader|software|\bcpu\b/i.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`);
}

/** The 'sg' kernels shuffle within groups of 8 lanes: they need subgroups whose size is always at least 8. */
export function sgSupported(rt: Runtime): boolean {
  return rt.features.subgroups && (rt.adapter.info.subgroupMinSize ?? 0) >= 8;
}

/** Why variant `v` cannot run on this runtime, or null if it can. */
export function unsupportedReason(rt: Runtime, v: MatmulVariant): string | null {
  if (v.algo === 'sg' && !sgSupported(rt)) {
    return `needs the subgroups feature with a minimum subgroup size of 8 (this device: subgroups ${rt.features.subgroups ? 'on' : 'off'}, min size ${rt.adapter.info.subgroupMinSize ?? 'unknown'})`;
  }
  return null;
}

/** The smallest 'sg' variant whose rows per invocation cover M (up to 64). */
function sgFor(M: number): string {
  if (M <= 8) return 'sg8';
  if (M <= 16) return 'sg16';
  if (M <= 32) return 'sg32';
  return 'sg64';
}

/**
 * The untuned choice (deterministic):
 * - M ≤ 4 or N ≤ 4: 'skinny' (one invocation per 1×4 strip of C, nothing wasted on the tiny side), except on CPU
 *   adapters with subgroups when 2 ≤ M ≤ 4 and N > 32: 'sg8' (lanes along N, the few rows shared by broadcasts;
 *   measured on lavapipe: [4, 2048] × [2048, 512] 6–8 ms vs 25 ms, [2, 768] × [768, 3072] 10 vs 19 ms);
 * - CPU adapters: 'sgN' with N the smallest of 8/16/32/64 rows covering M when subgroups (≥ 8 lanes) exist, else 'rb';
 * - other adapters (GPUs): 'tiled' (workgroup memory).
 */
export function defaultVariant(rt: Runtime, M: number, N: number): string {
  const cpu = isCpuAdapter(rt);
  const sg = cpu && sgSupported(rt);
  if (N <= 4 || (M <= 4 && !(sg && M >= 2 && N > 32))) return 'skinny';
  if (cpu) return sg ? sgFor(M) : 'rb';
  return 'tiled';
}

/** The tuning class of a shape: M bucket, N bucket, and whether vec4 loads apply. */
export function shapeClass(M: number, N: number, vec4: boolean): string {
  const m = M <= 4 ? 'm4' : M <= 8 ? 'm8' : M <= 16 ? 'm16' : M <= 32 ? 'm32' : 'mL';
  const n = N <= 4 ? 'n4' : 'nL';
  return `${m}.${n}.${vec4 ? 'v4' : 's'}`;
}
