// Reads a Keras ResNet v1 (ResNet50/101/152, Caffe-style) architecture out of a TF.js layers topology by walking its graph.
//
// The walk starts at the InputLayer and follows each layer's consumers: stem [ZeroPadding2D] → Conv2D → BN →
// ReLU → [ZeroPadding2D] → MaxPooling2D; then residual blocks, each a main chain Conv2D → BN (→ ReLU → Conv2D
// → BN)* and either a Conv2D → BN projection or the block input, meeting at an Add followed by a ReLU; then
// GlobalAveragePooling2D → Dense. Layer names (`res2a_branch2a`, `bn2a_branch2a`, `fc1000`, ...) come from the
// file and become graft's parameter names; hyper-parameters (filters, kernel, strides, padding, epsilon) come
// from each layer's config. Anything else is a CheckpointError naming the layer.
import { CheckpointError } from '../runtime/errors.js';
import type { KerasLayer } from '../io/tfjs-layers.js';

export interface KerasConvSpec {
  name: string;
  inChannels: number;
  filters: number;
  kernel: [number, number];
  stride: [number, number];
  /** Symmetric zero padding [h, w] ('same' at stride 1 and any ZeroPadding2D in front folded in). */
  padding: [number, number];
  useBias: boolean;
}

export interface KerasBnSpec {
  name: string;
  channels: number;
  eps: number;
}

export interface KerasConvBnSpec {
  conv: KerasConvSpec;
  bn: KerasBnSpec;
}

export interface KerasBlockSpec {
  /** Conv-BN pairs of the main path (ReLU after all but the last). */
  main: KerasConvBnSpec[];
  /** Projection shortcut, or null for the identity. */
  shortcut: KerasConvBnSpec | null;
}

export interface KerasResNetSpec {
  name: string;
  inputChannels: number;
  stem: KerasConvBnSpec;
  pool: { kernel: [number, number]; stride: [number, number]; padding: [number, number] };
  blocks: KerasBlockSpec[];
  dense: { name: string; inFeatures: number; units: number; useBias: boolean; activation: 'softmax' | 'linear' };
}

type Cfg = Record<string, unknown>;

class Graph {
  readonly byName = new Map<string, KerasLayer>();
  readonly consumers = new Map<string, KerasLayer[]>();

  constructor(
    layers: readonly KerasLayer[],
    readonly where: string,
  ) {
    for (const l of layers) {
      if (this.byName.has(l.name)) throw this.err(l, 'appears twice in the topology');
      this.byName.set(l.name, l);
      this.consumers.set(l.name, []);
    }
    for (const l of layers) {
      for (const src of this.inputs(l)) {
        const list = this.consumers.get(src);
        if (!list) throw this.err(l, `takes input from unknown layer '${src}'`);
        list.push(l);
      }
    }
  }

  err(l: KerasLayer | string, msg: string): CheckpointError {
    const name = typeof l === 'string' ? l : `${l.class_name} '${l.name}'`;
    return new CheckpointError(`${this.where}: ${name} ${msg}`);
  }

  /** Names of the layers feeding `l` (its single inbound node). */
  inputs(l: KerasLayer): string[] {
    const nodes = l.inbound_nodes;
    if (!Array.isArray(nodes) || nodes.length === 0) return [];
    if (nodes.length > 1) throw this.err(l, 'is called more than once (shared layers are not supported)');
    const node = nodes[0];
    if (!Array.isArray(node)) throw this.err(l, 'has a malformed inbound node');
    return node.map((e) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string') throw this.err(l, 'has a malformed inbound node');
      return e[0];
    });
  }

  /** The one layer consuming `name`, optionally of class `cls`. */
  next(name: string, cls?: string): KerasLayer {
    const c = this.consumers.get(name) ?? [];
    if (c.length !== 1) throw this.err(name, `feeds ${c.length} layers (${c.map((l) => l.name).join(', ') || 'none'}), expected exactly 1`);
    const l = c[0]!;
    if (cls && l.class_name !== cls) throw this.err(l, `follows '${name}' where a ${cls} was expected`);
    return l;
  }
}

const isPair = (v: unknown): v is [number, number] =>
  Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && (x as number) >= 0);

function pairOf(g: Graph, l: KerasLayer, key: string, dflt?: [number, number]): [number, number] {
  const v = (l.config as Cfg)[key] ?? dflt;
  if (typeof v === 'number' && Number.isInteger(v)) return [v, v];
  if (!isPair(v)) throw g.err(l, `has an unsupported ${key} ${JSON.stringify(v)}`);
  return [v[0], v[1]];
}

function channelsLast(g: Graph, l: KerasLayer): void {
  const df = (l.config as Cfg).data_format;
  if (df !== undefined && df !== 'channels_last') throw g.err(l, `uses data_format ${JSON.stringify(df)}; only channels_last is supported`);
}

/** ZeroPadding2D [[top, bottom], [left, right]] (or [h, w] / n) as symmetric [h, w]. */
function zeroPad(g: Graph, l: KerasLayer): [number, number] {
  channelsLast(g, l);
  const p = (l.config as Cfg).padding;
  let hw: [[number, number], [number, number]];
  if (typeof p === 'number') hw = [[p, p], [p, p]];
  else if (isPair(p)) hw = [[p[0], p[0]], [p[1], p[1]]];
  else if (Array.isArray(p) && p.length === 2 && p.every(isPair)) hw = p as [[number, number], [number, number]];
  else throw g.err(l, `has an unsupported padding ${JSON.stringify(p)}`);
  if (hw[0][0] !== hw[0][1] || hw[1][0] !== hw[1][1]) throw g.err(l, `pads asymmetrically ${JSON.stringify(p)}; not supported`);
  return [hw[0][0], hw[1][0]];
}

function convSpec(g: Graph, l: KerasLayer, inChannels: number, extraPad: [number, number]): KerasConvSpec {
  const c = l.config as Cfg;
  channelsLast(g, l);
  const kernel = pairOf(g, l, 'kernel_size');
  const stride = pairOf(g, l, 'strides', [1, 1]);
  const dil = pairOf(g, l, 'dilation_rate', [1, 1]);
  if (dil[0] !== 1 || dil[1] !== 1) throw g.err(l, `has dilation ${JSON.stringify(dil)}; not supported`);
  if (c.groups !== undefined && c.groups !== 1) throw g.err(l, `has groups ${String(c.groups)}; not supported`);
  if (c.activation !== undefined && c.activation !== 'linear') throw g.err(l, `has a fused activation '${String(c.activation)}'; not supported`);
  const filters = c.filters;
  if (!Number.isInteger(filters) || (filters as number) < 1) throw g.err(l, `has invalid filters ${JSON.stringify(filters)}`);
  let padding: [number, number] = [0, 0];
  if (c.padding === 'same') {
    // TF's 'same' is symmetric only at stride 1 with an odd kernel.
    if (stride[0] !== 1 || stride[1] !== 1 || kernel[0] % 2 === 0 || kernel[1] % 2 === 0) {
      throw g.err(l, `uses padding 'same' with stride ${JSON.stringify(stride)} and kernel ${JSON.stringify(kernel)} (asymmetric); not supported`);
    }
    padding = [(kernel[0] - 1) / 2, (kernel[1] - 1) / 2];
  } else if (c.padding !== undefined && c.padding !== 'valid') throw g.err(l, `has unsupported padding ${JSON.stringify(c.padding)}`);
  return {
    name: l.name,
    inChannels,
    filters: filters as number,
    kernel,
    stride,
    padding: [padding[0] + extraPad[0], padding[1] + extraPad[1]],
    useBias: c.use_bias !== false,
  };
}

function bnSpec(g: Graph, l: KerasLayer, channels: number): KerasBnSpec {
  const c = l.config as Cfg;
  const axis = Array.isArray(c.axis) ? c.axis : [c.axis ?? -1];
  if (axis.length !== 1 || (axis[0] !== 3 && axis[0] !== -1)) throw g.err(l, `normalises axis ${JSON.stringify(c.axis)}; only the channel axis (3) is supported`);
  if (c.center === false || c.scale === false) throw g.err(l, 'has center/scale disabled; not supported');
  const eps = c.epsilon ?? 1e-3;
  if (typeof eps !== 'number' || !(eps >= 0)) throw g.err(l, `has invalid epsilon ${JSON.stringify(eps)}`);
  return { name: l.name, channels, eps };
}

function expectRelu(g: Graph, l: KerasLayer): void {
  if (l.class_name === 'ReLU') return;
  if (l.class_name !== 'Activation' || (l.config as Cfg).activation !== 'relu') throw g.err(l, "is not a ReLU where one was expected");
}

/** conv → BN (→ ReLU → conv → BN)* → Add; returns the pairs and the Add. */
function chain(g: Graph, first: KerasLayer, inChannels: number): { pairs: KerasConvBnSpec[]; add: KerasLayer } {
  const pairs: KerasConvBnSpec[] = [];
  let conv = first;
  let ch = inChannels;
  for (;;) {
    const cs = convSpec(g, conv, ch, [0, 0]);
    const bn = g.next(conv.name, 'BatchNormalization');
    pairs.push({ conv: cs, bn: bnSpec(g, bn, cs.filters) });
    ch = cs.filters;
    const after = g.next(bn.name);
    if (after.class_name === 'Add') return { pairs, add: after };
    expectRelu(g, after);
    conv = g.next(after.name, 'Conv2D');
  }
}

/** Parse the ResNet v1 architecture of a TF.js / Keras layers topology. */
export function parseKerasResNet(layers: readonly KerasLayer[], where = 'model.json', name = 'resnet'): KerasResNetSpec {
  const g = new Graph(layers, where);
  const inputs = layers.filter((l) => l.class_name === 'InputLayer');
  if (inputs.length !== 1) throw new CheckpointError(`${where}: expected one InputLayer, found ${inputs.length}`);
  const input = inputs[0]!;
  const bis = (input.config as Cfg).batch_input_shape;
  const inputChannels = Array.isArray(bis) && bis.length === 4 && Number.isInteger(bis[3]) ? (bis[3] as number) : 3;

  // Stem.
  let l = g.next(input.name);
  let pad: [number, number] = [0, 0];
  if (l.class_name === 'ZeroPadding2D') {
    pad = zeroPad(g, l);
    l = g.next(l.name);
  }
  if (l.class_name !== 'Conv2D') throw g.err(l, 'follows the input where the stem Conv2D was expected');
  const stemConv = convSpec(g, l, inputChannels, pad);
  const stemBnLayer = g.next(l.name, 'BatchNormalization');
  const stem = { conv: stemConv, bn: bnSpec(g, stemBnLayer, stemConv.filters) };
  const stemAct = g.next(stemBnLayer.name);
  expectRelu(g, stemAct);
  l = g.next(stemAct.name);
  let poolPad: [number, number] = [0, 0];
  if (l.class_name === 'ZeroPadding2D') {
    // Zero padding equals max-pool's -inf padding here: the input is a ReLU output (>= 0).
    poolPad = zeroPad(g, l);
    l = g.next(l.name);
  }
  if (l.class_name !== 'MaxPooling2D') throw g.err(l, 'follows the stem where MaxPooling2D was expected');
  channelsLast(g, l);
  if ((l.config as Cfg).padding !== undefined && (l.config as Cfg).padding !== 'valid') throw g.err(l, "must use padding 'valid'");
  const poolKernel = pairOf(g, l, 'pool_size');
  const pool = { kernel: poolKernel, stride: pairOf(g, l, 'strides', poolKernel), padding: poolPad };
  if (poolPad[0] > poolKernel[0] / 2 || poolPad[1] > poolKernel[1] / 2) throw g.err(l, 'is padded by more than half its window; not supported');

  // Residual blocks.
  let cur = l.name;
  let ch = stemConv.filters;
  const blocks: KerasBlockSpec[] = [];
  for (;;) {
    const cons = g.consumers.get(cur) ?? [];
    if (cons.length === 1 && cons[0]!.class_name === 'GlobalAveragePooling2D') break;
    const convs = cons.filter((c) => c.class_name === 'Conv2D');
    const adds = cons.filter((c) => c.class_name === 'Add');
    if (convs.length < 1 || convs.length > 2 || convs.length + adds.length !== cons.length) {
      throw g.err(cur, `feeds ${cons.map((c) => `${c.class_name} '${c.name}'`).join(', ') || 'nothing'}; expected a residual block or GlobalAveragePooling2D`);
    }
    const chains = convs.map((c) => chain(g, c, ch)).sort((a, b) => b.pairs.length - a.pairs.length);
    const main = chains[0]!;
    const sc = chains[1] ?? null;
    const add = main.add;
    if (sc && (sc.pairs.length !== 1 || sc.add !== add)) throw g.err(add, 'does not join a main path and a single conv-BN projection');
    if (!sc && (adds.length !== 1 || adds[0] !== add)) throw g.err(add, `does not join the main path with the block input '${cur}'`);
    const addIn = g.inputs(add);
    if (addIn.length !== 2) throw g.err(add, `has ${addIn.length} inputs, expected 2`);
    const out = main.pairs[main.pairs.length - 1]!.bn.channels;
    const scCh = sc ? sc.pairs[0]!.bn.channels : ch;
    if (out !== scCh) throw g.err(add, `adds ${out} channels to ${scCh}`);
    const act = g.next(add.name);
    expectRelu(g, act);
    blocks.push({ main: main.pairs, shortcut: sc ? sc.pairs[0]! : null });
    cur = act.name;
    ch = out;
  }
  if (!blocks.length) throw new CheckpointError(`${where}: no residual blocks found after the stem`);

  // Head.
  const gap = g.next(cur, 'GlobalAveragePooling2D');
  channelsLast(g, gap);
  const dense = g.next(gap.name, 'Dense');
  const dc = dense.config as Cfg;
  const act = dc.activation ?? 'linear';
  if (act !== 'softmax' && act !== 'linear') throw g.err(dense, `has activation '${String(act)}'; expected softmax or linear`);
  const units = dc.units;
  if (!Number.isInteger(units) || (units as number) < 1) throw g.err(dense, `has invalid units ${JSON.stringify(units)}`);
  if ((g.consumers.get(dense.name) ?? []).length) throw g.err(dense, 'is not the last layer; layers after the classifier are not supported');
  return {
    name,
    inputChannels,
    stem,
    pool,
    blocks,
    dense: { name: dense.name, inFeatures: ch, units: units as number, useBias: dc.use_bias !== false, activation: act },
  };
}

/** Every conv-BN pair of the network, stem first, in topology order. */
export function specPairs(spec: KerasResNetSpec): KerasConvBnSpec[] {
  const out = [spec.stem];
  for (const b of spec.blocks) out.push(...b.main, ...(b.shortcut ? [b.shortcut] : []));
  return out;
}
