// Reading the PyTorch training fixtures (tests/fixtures/train-*.json from scripts/fixtures/train_parity.py): base64 float32 tensors, state dicts, batches.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';

/** One tensor as the script writes it: shape + base64 little-endian float32. */
export interface FixtureTensor {
  shape: number[];
  data: string;
}

export type FixtureState = Record<string, FixtureTensor>;

export interface CnnBatch {
  /** base64 float32 [B, 3, 16, 16]. */
  x: string;
  xShape: number[];
  y: number[];
}

export interface TextBatch {
  /** Token ids [B, T] flattened (0 = padding). */
  ids: number[];
  /** [B, T] flattened: 1 token, 0 padding. */
  mask: number[];
  shape: number[];
  y: number[];
}

export interface TrainFixture<B> {
  steps: number;
  lr: number;
  weightDecay: number;
  warmup: number;
  clip: number;
  initial: FixtureState;
  final: FixtureState;
  /** Loss of each step (before its update). */
  losses: number[];
  /** clip_grad_norm_'s return value (the norm before clipping) of each step. */
  gradNorms: number[];
  batches: B[];
  torch: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNums = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

function isTensor(v: unknown): v is FixtureTensor {
  return isObj(v) && isNums(v.shape) && typeof v.data === 'string';
}

function isState(v: unknown): v is FixtureState {
  return isObj(v) && Object.values(v).every(isTensor);
}

export function isCnnBatch(v: unknown): v is CnnBatch {
  return isObj(v) && typeof v.x === 'string' && isNums(v.xShape) && isNums(v.y);
}

export function isTextBatch(v: unknown): v is TextBatch {
  return isObj(v) && isNums(v.ids) && isNums(v.mask) && isNums(v.shape) && isNums(v.y);
}

/** Parse tests/fixtures/<file> and check its layout (throws naming the first field that is wrong). */
export function loadTrainFixture<B>(file: string, isBatch: (v: unknown) => v is B): TrainFixture<B> {
  const path = fileURLToPath(new URL(`../fixtures/${file}`, import.meta.url));
  const raw: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!isObj(raw)) throw new Error(`${file}: not a JSON object`);
  const num = (k: string): number => {
    const v = raw[k];
    if (typeof v !== 'number') throw new Error(`${file}: '${k}' is not a number`);
    return v;
  };
  const state = (k: string): FixtureState => {
    const v = raw[k];
    if (!isState(v)) throw new Error(`${file}: '${k}' is not a state dict of {shape, data}`);
    return v;
  };
  const nums = (k: string): number[] => {
    const v = raw[k];
    if (!isNums(v)) throw new Error(`${file}: '${k}' is not a number list`);
    return v;
  };
  const batches = raw.batches;
  if (!Array.isArray(batches) || !batches.every(isBatch)) throw new Error(`${file}: 'batches' has an unexpected layout`);
  return {
    steps: num('steps'),
    lr: num('lr'),
    weightDecay: num('weightDecay'),
    warmup: num('warmup'),
    clip: num('clip'),
    initial: state('initial'),
    final: state('final'),
    losses: nums('losses'),
    gradNorms: nums('gradNorms'),
    batches,
    torch: String(raw.torch),
  };
}

/** Decode base64 little-endian float32 (copied into an aligned buffer). */
export function f32FromBase64(s: string): Float32Array {
  const bytes = Buffer.from(s, 'base64');
  if (bytes.length % 4) throw new Error(`base64 float32 data of ${bytes.length} bytes is not a multiple of 4`);
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** A fixture tensor's values, checked against its shape. */
export function fixtureValues(t: FixtureTensor, what = 'tensor'): Float32Array {
  const v = f32FromBase64(t.data);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (v.length !== n) throw new Error(`${what}: ${v.length} values for shape [${t.shape.join(', ')}]`);
  return v;
}

/** Upload a fixture state dict as GPU tensors by key (dispose them after loadStateDict). */
export function stateTensors(rt: Runtime, state: FixtureState): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, t] of Object.entries(state)) out.set(k, Tensor.from(rt, fixtureValues(t, k), t.shape));
  return out;
}
