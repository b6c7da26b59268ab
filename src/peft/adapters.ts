// Houlsby bottleneck adapters for BERT: h + up(act(down(h))) after the attention and FFN output projections of every layer.
import type { Runtime } from '../runtime/runtime.js';
import { GraftError } from '../runtime/errors.js';
import type { Tensor } from '../tensor.js';
import * as F from '../autograd/functional.js';
import { Rng, toRng } from '../autograd/random.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import type { BertModel } from '../models/bert.js';

export interface AdapterOptions {
  /** Bottleneck width m (default 64). */
  size?: number;
  /** Activation in the bottleneck (default 'gelu'). */
  activation?: 'gelu' | 'relu';
  /** std of the down projection's normal init (default 0.02); the up projection starts at exactly zero. */
  initStd?: number;
  rng?: Rng | number;
}

/**
 * One bottleneck: h [..., H] -> h + up(act(down(h))), down [m, H], up [H, m] (torch Linear layout).
 * up starts at zero, so a fresh adapter is the identity and training starts from the pretrained function.
 * Keys down.{weight,bias}, up.{weight,bias}.
 */
export class BottleneckAdapter extends Module {
  down: Linear;
  up: Linear;

  constructor(rt: Runtime, hidden: number, readonly size: number, readonly activation: 'gelu' | 'relu' = 'gelu', initStd = 0.02, rng?: Rng | number) {
    super();
    if (!Number.isInteger(size) || size < 1) throw new GraftError(`BottleneckAdapter: size must be a positive integer, got ${size}`);
    const r = toRng(rng);
    this.down = new Linear(rt, hidden, size, { rng: r });
    this.up = new Linear(rt, size, hidden, { rng: r });
    const d = new Float32Array(size * hidden);
    for (let i = 0; i < d.length; i++) d[i] = r.normal(0, initStd);
    this.down.weight.write(d);
    this.down.bias!.write(new Float32Array(size));
    this.up.weight.write(new Float32Array(hidden * size));
    this.up.bias!.write(new Float32Array(hidden));
  }

  forward(h: Tensor): Tensor {
    const a = this.activation === 'relu' ? this.down.forwardRelu(h) : this.down.forward(h);
    const g = this.activation === 'relu' ? a : F.gelu(a);
    if (g !== a) a.dispose();
    const u = this.up.forward(g);
    g.dispose();
    const y = F.add(h, u);
    u.dispose();
    return y;
  }
}

/**
 * Insert adapters into every encoder layer of `bert`: encoder.layer.N.attention.output.adapter and
 * encoder.layer.N.output.adapter (applied to dropout(dense(x)), before the residual add and LayerNorm).
 * Existing adapters are replaced (and freed). Returns the adapters in layer order.
 */
export function addAdapters(bert: BertModel, opts: AdapterOptions = {}): BottleneckAdapter[] {
  const rt = bert.embeddings.word_embeddings.weight.rt;
  const H = bert.config.hiddenSize;
  const rng = opts.rng instanceof Rng ? opts.rng : new Rng(opts.rng ?? 0);
  const out: BottleneckAdapter[] = [];
  for (const layer of bert.encoder.layer) {
    for (const site of [layer.attention.output, layer.output]) {
      site.adapter?.dispose();
      const a = new BottleneckAdapter(rt, H, opts.size ?? 64, opts.activation ?? 'gelu', opts.initStd ?? 0.02, rng);
      site.adapter = a;
      out.push(a);
    }
  }
  return out;
}

/** Remove (and free) every adapter of `bert`. */
export function removeAdapters(bert: BertModel): void {
  for (const layer of bert.encoder.layer) {
    for (const site of [layer.attention.output, layer.output]) {
      site.adapter?.dispose();
      site.adapter = null;
    }
  }
}

/**
 * Freeze everything under `root` but the adapters; `layerNorms` (default true, as Houlsby) also trains
 * every LayerNorm; `also` lists more trainable patterns (e.g. 'classifier', 'bert.pooler').
 * Returns the names of the trainable parameters.
 */
export function trainAdaptersOnly(root: Module, opts: { layerNorms?: boolean; also?: readonly string[] } = {}): string[] {
  const names = root.namedParameters().map(([n]) => n);
  if (!names.some((n) => n.includes('.adapter.'))) throw new GraftError('trainAdaptersOnly: the model has no adapters (call addAdapters first)');
  for (const [, t] of root.namedParameters()) t.requiresGrad = false;
  root.unfreeze(/\.adapter\./);
  if (opts.layerNorms ?? true) root.unfreeze(/\.LayerNorm\./);
  for (const p of opts.also ?? []) root.unfreeze(p);
  return root.namedParameters().filter(([, t]) => t.requiresGrad).map(([n]) => n);
}
