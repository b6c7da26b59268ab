// TensorFlow.js (webgpu backend) as a benchmark peer on graft's own dawn GPU object, timed by wall clock.
import type * as TF from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { GraftError } from '../runtime/errors.js';
import { getGPU } from '../runtime/gpu.js';
import { gpuAwait } from '../runtime/keepalive.js';
import { measureAsync, type MeasureOptions, type Measurement } from './measure.js';
import {
  conv2dHostData,
  convOutSize,
  matmulHostData,
  kcrsToRsck,
  nchwToNhwc,
  nhwcToNchw,
  type Conv2dShape,
  type MatmulShape,
} from './shapes.js';

export interface TfjsPeer {
  tf: typeof TF;
  backend: WebGPUBackend;
  /** tfjs-core version. */
  version: string;
}

/** One tfjs op on fixed inputs; run() executes it and waits until the GPU queue is idle. */
export interface PeerCase {
  flops: number;
  run(): Promise<void>;
  /** Run once and read the output back in graft's layout (row-major / NCHW). */
  output(): Promise<Float32Array>;
  dispose(): void;
}

let loading: Promise<TfjsPeer> | null = null;

/**
 * Load tfjs-core + tfjs-backend-webgpu on the GPU object graft uses (so both libraries run on the
 * same dawn instance and adapter). navigator.gpu must exist before the backend module is imported:
 * it registers 'webgpu' only if it sees one. The GPU object stays referenced by graft's runtime for
 * the life of the process (dawn crashes if it is collected while a device lives).
 */
export function loadTfjs(): Promise<TfjsPeer> {
  loading ??= load();
  return loading;
}

async function load(): Promise<TfjsPeer> {
  const gpu = await getGPU();
  if (!('navigator' in globalThis) || globalThis.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
  } else if (!globalThis.navigator.gpu) {
    Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true });
  }
  let tf: typeof TF;
  let wg: typeof import('@tensorflow/tfjs-backend-webgpu');
  try {
    tf = await import('@tensorflow/tfjs-core');
    wg = await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new GraftError(
      `peer tfjs needs @tensorflow/tfjs-core and @tensorflow/tfjs-backend-webgpu installed: ${(e as Error).message}`,
    );
  }
  if (!(await tf.setBackend('webgpu'))) throw new GraftError('tfjs could not start its webgpu backend on this adapter');
  await tf.ready();
  const backend = tf.backend();
  if (!(backend instanceof wg.WebGPUBackend)) throw new GraftError(`tfjs backend is '${tf.getBackend()}', not webgpu`);
  return { tf, backend, version: tf.version_core };
}

/** Wait until every command tfjs has recorded or submitted has finished on the GPU. */
async function drain(p: TfjsPeer): Promise<void> {
  p.backend.ensureCommandEncoderReady();
  p.backend.endComputePassEncoder();
  p.backend.submitQueue();
  await gpuAwait(p.backend.queue.onSubmittedWorkDone());
}

function makeCase(
  p: TfjsPeer,
  flops: number,
  inputs: TF.Tensor[],
  op: () => TF.Tensor,
  toGraft: (v: Float32Array) => Float32Array,
): PeerCase {
  return {
    flops,
    async run() {
      const out = op();
      await drain(p);
      out.dispose();
    },
    async output() {
      const out = op();
      try {
        return toGraft(Float32Array.from(await out.data()));
      } finally {
        out.dispose();
      }
    },
    dispose() {
      for (const t of inputs) t.dispose();
    },
  };
}

/** tf.matMul on [batch, m, k] · [batch, k, n] (rank 2 when batch is 1), same data as graft's case. */
export function tfjsMatmulCase(p: TfjsPeer, s: MatmulShape, data = matmulHostData(s)): PeerCase {
  const { tf } = p;
  const lead = s.batch > 1 ? [s.batch] : [];
  const a = tf.tensor(data.a, [...lead, s.m, s.k]);
  const b = tf.tensor(data.b, [...lead, s.k, s.n]);
  return makeCase(p, 2 * s.batch * s.m * s.n * s.k, [a, b], () => tf.matMul(a, b), (v) => v);
}

/** Why tfjs cannot run this conv2d shape, or null if it can. */
export function tfjsConvUnsupported(s: Conv2dShape): string | null {
  const strided = s.stride[0] !== 1 || s.stride[1] !== 1;
  const dilated = s.dilation[0] !== 1 || s.dilation[1] !== 1;
  if (strided && dilated) return 'tfjs conv2d needs stride 1 or dilation 1';
  if (s.groups !== 1 && !(s.groups === s.c && s.k % s.c === 0)) {
    return `tfjs has no grouped conv2d (groups ${s.groups}); only groups 1 or depthwise (groups = C)`;
  }
  return null;
}

/**
 * The same conv2d in tfjs: input NHWC [n, h, w, c], filter HWIO [r, s, c, k] (depthwise:
 * [r, s, c, k/c] via tf.depthwiseConv2d), explicit symmetric padding. Output converted back to NCHW
 * by output().
 */
export function tfjsConv2dCase(p: TfjsPeer, s: Conv2dShape, data = conv2dHostData(s)): PeerCase {
  const why = tfjsConvUnsupported(s);
  if (why) throw new GraftError(why);
  const { tf } = p;
  const cg = s.c / s.groups;
  const x = tf.tensor4d(nchwToNhwc(data.x, s.n, s.c, s.h, s.w), [s.n, s.h, s.w, s.c]);
  const wt = kcrsToRsck(data.w, s.k, cg, s.r, s.s);
  const depthwise = s.groups !== 1;
  const w = depthwise ? tf.tensor4d(wt, [s.r, s.s, s.c, s.k / s.c]) : tf.tensor4d(wt, [s.r, s.s, cg, s.k]);
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [s.pad[0], s.pad[0]],
    [s.pad[1], s.pad[1]],
    [0, 0],
  ];
  const [P, Q] = convOutSize(s);
  const flops = 2 * s.n * s.k * P * Q * cg * s.r * s.s;
  const op = depthwise
    ? () => tf.depthwiseConv2d(x, w, s.stride, pad, 'NHWC', s.dilation)
    : () => tf.conv2d(x, w, s.stride, pad, 'NHWC', s.dilation);
  return makeCase(p, flops, [x, w], op, (v) => nhwcToNchw(v, s.n, s.k, P, Q));
}

/** Time a peer case by wall clock (each run waits for the GPU queue). */
export function timePeer(c: PeerCase, opts: Omit<MeasureOptions, 'timer'> = {}): Promise<Measurement> {
  return measureAsync(() => c.run(), opts);
}

/** Median wall-clock time of tf.matMul for one shape (loads tfjs on first use). */
export async function tfjsMatmul(
  m: number,
  n: number,
  k: number,
  opts: Omit<MeasureOptions, 'timer'> & { batch?: number } = {},
): Promise<Measurement & { gflops: number }> {
  const p = await loadTfjs();
  const c = tfjsMatmulCase(p, { m, n, k, batch: opts.batch ?? 1 });
  try {
    const r = await timePeer(c, opts);
    return { ...r, gflops: c.flops / (r.medianMs * 1e6) };
  } finally {
    c.dispose();
  }
}

/** Median wall-clock time of the equivalent tfjs conv2d for one NCHW/KCRS shape. */
export async function tfjsConv2d(s: Conv2dShape, opts: Omit<MeasureOptions, 'timer'> = {}): Promise<Measurement & { gflops: number }> {
  const p = await loadTfjs();
  const c = tfjsConv2dCase(p, s);
  try {
    const r = await timePeer(c, opts);
    return { ...r, gflops: c.flops / (r.medianMs * 1e6) };
  } finally {
    c.dispose();
  }
}
