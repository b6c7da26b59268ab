// LoRA with PEFT semantics: injection by module pattern, frozen base, merge/unmerge, rsLoRA, conv LoRA, PEFT adapter
// files (round trip, independent re-read, validation errors) and parity with the PyTorch fixture (scripts/fixtures/lora_peft.py).
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, scope } from '../src/tensor.js';
import type { Runtime } from '../src/runtime/runtime.js';
import { CheckpointError, GraftError, ShapeError } from '../src/runtime/errors.js';
import { backward } from '../src/autograd/engine.js';
import * as F from '../src/autograd/functional.js';
import { noGrad } from '../src/autograd/grad-mode.js';
import { Rng } from '../src/autograd/random.js';
import { Module } from '../src/nn/module.js';
import { Conv2d, Linear } from '../src/nn/layers.js';
import { ReLU, Sequential } from '../src/nn/simple.js';
import { BertModel } from '../src/models/bert.js';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import {
  LoraConv2d,
  LoraLinear,
  applyLora,
  loadLoraAdapter,
  loraLayers,
  mergeAndUnload,
  mergeLora,
  saveLoraAdapter,
  setLoraEnabled,
  unloadLora,
  unmergeLora,
} from '../src/peft/index.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose, maxAbsDiff } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { conv2dPlainRef, loraConv2dRef, mergedWeightRef } from './ref/lora.js';

const rt = useRuntime();
const FIX = 'tests/fixtures';

// ---------- the fixture models (same module names as scripts/fixtures/lora_peft.py) ----------

class SelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  constructor(r: Runtime, d: number, h: number, rng: Rng) {
    super();
    this.query = new Linear(r, d, h, { rng });
    this.key = new Linear(r, d, h, { rng });
    this.value = new Linear(r, h, d, { rng });
  }
}

class Attention extends Module {
  self: SelfAttention;
  constructor(r: Runtime, d: number, h: number, rng: Rng) {
    super();
    this.self = new SelfAttention(r, d, h, rng);
  }
}

class Layer extends Module {
  attention: Attention;
  constructor(r: Runtime, d: number, h: number, rng: Rng) {
    super();
    this.attention = new Attention(r, d, h, rng);
  }
}

/** h = x; per layer h = h + value(relu(query(h)) + key(h)); classifier(h). x [B, T, 24] -> [B, T, 3]. */
class Mlp extends Module {
  encoder: Module & { layer: Layer[] };
  classifier: Linear;
  constructor(r: Runtime, seed = 0) {
    super();
    const rng = new Rng(seed);
    const enc = new (class extends Module {
      layer = [new Layer(r, 24, 40, rng), new Layer(r, 24, 40, rng)];
    })();
    this.encoder = enc;
    this.classifier = new Linear(r, 24, 3, { rng });
  }
  forward(x: Tensor): Tensor {
    return scope(x.rt, () => {
      let h = x;
      for (const l of this.encoder.layer) {
        const a = l.attention.self;
        h = F.add(h, a.value.forward(F.add(F.relu(a.query.forward(h)), a.key.forward(h))));
      }
      return this.classifier.forward(h);
    });
  }
}

/** Conv2d(3, 8, 3, stride 2, padding 1) -> ReLU -> Conv2d(8, 5, 1) under `features`. */
class ConvNet extends Module {
  features: Sequential;
  constructor(r: Runtime, seed = 0) {
    super();
    const rng = new Rng(seed);
    this.features = new Sequential(new Conv2d(r, 3, 8, 3, { stride: 2, padding: 1, rng }), new ReLU(), new Conv2d(r, 8, 5, 1, { rng }));
  }
  forward(x: Tensor): Tensor {
    return this.features.forward(x);
  }
}

async function fixtureTensors(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await SafetensorsFile.open(join(FIX, 'lora-peft-base.safetensors'));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const n of f.names) {
    const t = await f.read(n);
    out.set(n, { shape: t.shape, data: t.data });
  }
  await f.close();
  return out;
}

let fixture: Map<string, { shape: number[]; data: Float32Array }> | null = null;
async function fx() {
  return (fixture ??= await fixtureTensors());
}

/** A fixture model with the base weights of the PyTorch script. */
async function baseModel<M extends Module>(which: 'mlp' | 'conv', make: () => M): Promise<M> {
  const m = make();
  const dict = new Map<string, Tensor>();
  for (const [k, v] of await fx()) if (k.startsWith(`${which}.`)) dict.set(k.slice(which.length + 1), Tensor.from(rt(), v.data, v.shape));
  m.loadStateDict(dict);
  for (const t of dict.values()) t.dispose();
  return m.eval();
}

async function input(which: 'mlp' | 'conv'): Promise<Tensor> {
  const v = (await fx()).get(`input.${which}`)!;
  return Tensor.from(rt(), v.data, v.shape);
}

async function run(m: { forward(x: Tensor): Tensor }, x: Tensor): Promise<Float32Array> {
  const y = noGrad(() => m.forward(x));
  const v = await y.read();
  y.dispose();
  return v;
}

/** Give every lora_B non-zero values (a "trained" adapter) and return the model. */
function perturbAdapters<M extends Module>(m: M, seed: number): M {
  loraLayers(m).forEach(([, l], i) => {
    l.lora_B.weight.write(randArray(l.lora_B.weight.size, seed + i, -0.5, 0.5));
  });
  return m;
}

/** The safetensors header, parsed from the raw bytes with no graft code (8-byte LE length + JSON). */
async function rawHeader(path: string): Promise<{ header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; meta: unknown; bytes: Buffer; start: number }> {
  const bytes = await readFile(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const json = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const { __metadata__: meta, ...rest } = json;
  return { header: rest as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>, meta, bytes, start: 8 + n };
}

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

// ---------- tests ----------

describe('applyLora (PEFT injection)', () => {
  it('wraps the modules matched by suffix, keeps base names, adds lora_A / lora_B keys, freezes the rest', async () => {
    const m = new Mlp(rt(), 1);
    const before = [...m.stateDict().keys()];
    const x = Tensor.from(rt(), randArray(2 * 3 * 24, 5), [2, 3, 24]);
    const y0 = await run(m, x);
    const info = applyLora(m, { r: 4, alpha: 8, targetModules: ['query', 'value'], modulesToSave: ['classifier'], rng: new Rng(3) });
    expect(info.targets).toEqual([
      'encoder.layer.0.attention.self.query',
      'encoder.layer.0.attention.self.value',
      'encoder.layer.1.attention.self.query',
      'encoder.layer.1.attention.self.value',
    ]);
    expect(info.modulesToSave).toEqual(['classifier']);
    const keys = [...m.stateDict().keys()];
    for (const k of before) expect(keys).toContain(k);
    expect(keys.length).toBe(before.length + 8);
    const sd = m.stateDict();
    expect(sd.get('encoder.layer.0.attention.self.query.lora_A.weight')!.shape).toEqual([4, 24]);
    expect(sd.get('encoder.layer.0.attention.self.query.lora_B.weight')!.shape).toEqual([40, 4]);
    expect(sd.get('encoder.layer.1.attention.self.value.lora_A.weight')!.shape).toEqual([4, 40]);
    expect(m.encoder.layer[0]!.attention.self.query).toBeInstanceOf(LoraLinear);
    expect(m.encoder.layer[0]!.attention.self.key).not.toBeInstanceOf(LoraLinear);
    const trainable = m.namedParameters().filter(([, t]) => t.requiresGrad).map(([k]) => k);
    expect(trainable.sort()).toEqual([...keys.filter((k) => k.includes('.lora_')), 'classifier.weight', 'classifier.bias'].sort());
    expect(info.trainableParams).toBe(2 * (4 * 24 + 40 * 4 + 4 * 40 + 24 * 4) + 3 * 24 + 3);
    // PEFT's init: A kaiming-uniform(a=√5) (|a| ≤ 1/√in, not all zero), B zero: the adapter starts as identity
    const a = await sd.get('encoder.layer.0.attention.self.value.lora_A.weight')!.read();
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(40));
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(40));
    expect(Array.from(await sd.get('encoder.layer.0.attention.self.value.lora_B.weight')!.read()).every((v) => v === 0)).toBe(true);
    expect(await run(m, x)).toEqual(y0);
    x.dispose();
    m.dispose();
  });

  it('matches PEFT patterns: a dotted suffix, a whole-name regular expression; errors for no match, a non-Linear match, a second adapter', () => {
    const names = (t: string[] | RegExp | string) => {
      const m = new Mlp(rt(), 2);
      try {
        return applyLora(m, { r: 2, targetModules: t }).targets;
      } finally {
        m.dispose();
      }
    };
    expect(names(['attention.self.query'])).toEqual(['encoder.layer.0.attention.self.query', 'encoder.layer.1.attention.self.query']);
    expect(names(['encoder.layer.1.attention.self.key'])).toEqual(['encoder.layer.1.attention.self.key']);
    expect(names(/encoder\.layer\.0\.attention\.self\.(query|key)/)).toEqual(['encoder.layer.0.attention.self.query', 'encoder.layer.0.attention.self.key']);
    expect(names('.*\\.value')).toHaveLength(2);
    expect(names(['classifier'])).toEqual(['classifier']);
    // 'uery' is not a '.'-separated suffix; a regex must match the whole name
    expect(() => names(['uery'])).toThrow(/match no module of the model; its Linear\/Conv2d modules: encoder\.layer\.0\.attention\.self\.query/);
    expect(() => names(/query/)).toThrow(GraftError);
    expect(() => names(['self'])).toThrow(/target 'encoder\.layer\.0\.attention\.self' is a SelfAttention; LoRA supports Linear and Conv2d/);
    const m = new Mlp(rt(), 2);
    applyLora(m, { r: 2, targetModules: ['query'] });
    expect(() => applyLora(m, { r: 2, targetModules: ['value'] })).toThrow(/already has a LoRA adapter/);
    expect(() => applyLora(new Mlp(rt(), 2), { r: 0, targetModules: ['query'] })).toThrow(/r must be a positive integer/);
    expect(() => applyLora(new Mlp(rt(), 2), { r: 2, targetModules: ['query'], modulesToSave: ['nothing'] })).toThrow(/modulesToSave/);
    m.dispose();
  });

  it('scaling is alpha / r, or alpha / √r with rsLoRA (checked on outputs)', async () => {
    for (const useRslora of [false, true]) {
      const m = new Mlp(rt(), 4);
      const x = Tensor.from(rt(), randArray(3 * 24, 6), [1, 3, 24]);
      applyLora(m, { r: 4, alpha: 6, targetModules: ['classifier'], useRslora });
      const l = m.classifier as LoraLinear;
      expect(l.lora.scaling).toBeCloseTo(useRslora ? 3 : 1.5, 12);
      perturbAdapters(m, 9);
      const y = await run(m, x);
      setLoraEnabled(m, false);
      const base = await run(m, x);
      setLoraEnabled(m, true);
      // adapter contribution = s·(x_last·Aᵀ)·Bᵀ: compare with the delta weight computed on the CPU
      const h = await noGrad(() => {
        const enc = scope(rt(), () => {
          let hh = x;
          for (const ly of m.encoder.layer) {
            const a = ly.attention.self;
            hh = F.add(hh, a.value.forward(F.add(F.relu(a.query.forward(hh)), a.key.forward(hh))));
          }
          return hh;
        });
        return enc;
      }).read();
      const A = await l.lora_A.weight.read();
      const B = await l.lora_B.weight.read();
      const delta = mergedWeightRef(new Float32Array(3 * 24), A, B, 3, 4, useRslora ? 3 : 1.5);
      const want = base.map((v, i) => {
        const [row, n] = [Math.floor(i / 3), i % 3];
        let acc = 0;
        for (let k = 0; k < 24; k++) acc += h[row * 24 + k]! * delta[n * 24 + k]!;
        return v + acc;
      });
      expectClose(y, want, { atol: 1e-5, rtol: 1e-5 });
      x.dispose();
      m.dispose();
    }
  });

  it('training mode applies lora_dropout on the adapter input only; eval mode does not', async () => {
    const m = new Mlp(rt(), 5);
    applyLora(m, { r: 4, alpha: 8, dropout: 0.5, targetModules: ['query', 'value'], rng: new Rng(1) });
    perturbAdapters(m, 3);
    const x = Tensor.from(rt(), randArray(2 * 4 * 24, 8), [2, 4, 24]);
    const ev = await run(m.eval(), x);
    setLoraEnabled(m, false);
    const base = await run(m, x);
    setLoraEnabled(m, true);
    const tr = await run(m.train(), x);
    expect(maxAbsDiff(tr, ev)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(ev, base)).toBeGreaterThan(1e-3);
    expect(await run(m.eval(), x)).toEqual(ev);
    x.dispose();
    m.dispose();
  });
});

describe('on graft\'s BertModel', () => {
  it("targets ['query', 'value'] wrap HF's module names; the adapter changes the output; merged = unmerged", async () => {
    const m = new BertModel(rt(), { hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, vocabSize: 50, maxPositionEmbeddings: 16 }, { rng: new Rng(1) }).eval();
    const info = applyLora(m, { r: 4, alpha: 8, targetModules: ['query', 'value'], rng: new Rng(2) });
    expect(info.targets).toEqual(['encoder.layer.0.attention.self.query', 'encoder.layer.0.attention.self.value', 'encoder.layer.1.attention.self.query', 'encoder.layer.1.attention.self.value']);
    const keys = [...m.stateDict().keys()];
    expect(keys).toContain('encoder.layer.1.attention.self.value.weight');
    expect(keys).toContain('encoder.layer.1.attention.self.value.lora_B.weight');
    perturbAdapters(m, 5);
    const ids = Tensor.from(rt(), [1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'i32');
    const fwd = async () => {
      const o = noGrad(() => m.forward({ inputIds: ids }));
      const v = await o.lastHiddenState.read();
      o.lastHiddenState.dispose();
      o.poolerOutput?.dispose();
      return v;
    };
    const y = await fwd();
    setLoraEnabled(m, false);
    const base = await fwd();
    setLoraEnabled(m, true);
    expect(maxAbsDiff(y, base)).toBeGreaterThan(1e-3);
    mergeLora(m);
    expectClose(await fwd(), y, { atol: 1e-4, rtol: 1e-4 });
    ids.dispose();
    m.dispose();
  });
});

describe('merge / unmerge', () => {
  it('Linear: merged and unmerged outputs agree; unmerge restores W; mergeAndUnload gives back plain Linear modules', async () => {
    const m = perturbAdapters(new Mlp(rt(), 6), 1);
    applyLora(m, { r: 4, alpha: 16, targetModules: ['query', 'value'], rng: new Rng(2) });
    perturbAdapters(m, 11);
    const x = Tensor.from(rt(), randArray(2 * 5 * 24, 12), [2, 5, 24]);
    const q = m.encoder.layer[0]!.attention.self.query as LoraLinear;
    const w0 = await q.weight.read();
    const A = await q.lora_A.weight.read();
    const B = await q.lora_B.weight.read();
    const y0 = await run(m, x);
    mergeLora(m);
    expect(q.merged).toBe(true);
    expectClose(await q.weight.read(), mergedWeightRef(w0, A, B, 40, 4, 4), { atol: 1e-5, rtol: 1e-5 }, 'merged W = W + s·B·A');
    const y1 = await run(m, x);
    expectClose(y1, y0, { atol: 1e-4, rtol: 1e-4 }, 'merged output');
    expect(maxAbsDiff(y1, y0)).toBeGreaterThan(0); // really a different computation
    mergeLora(m); // idempotent
    unmergeLora(m);
    expectClose(await q.weight.read(), w0, { atol: 1e-6, rtol: 0 }, 'unmerged W');
    expectClose(await run(m, x), y0, { atol: 1e-5, rtol: 1e-5 }, 'unmerged output');
    const keys = [...m.stateDict().keys()].filter((k) => !k.includes('.lora_'));
    const w = q.weight;
    mergeAndUnload(m);
    expect(m.encoder.layer[0]!.attention.self.query).not.toBeInstanceOf(LoraLinear);
    expect(m.encoder.layer[0]!.attention.self.query).toBeInstanceOf(Linear);
    expect(m.encoder.layer[0]!.attention.self.query.weight).toBe(w);
    expect([...m.stateDict().keys()]).toEqual(keys);
    expectClose(await run(m, x), y0, { atol: 1e-4, rtol: 1e-4 }, 'after mergeAndUnload');
    expect(() => mergeLora(m)).toThrow(/no LoRA layers/);
    x.dispose();
    m.dispose();
  });

  it('unloadLora drops the adapter and restores the base output exactly', async () => {
    const m = new Mlp(rt(), 7);
    const x = Tensor.from(rt(), randArray(5 * 24, 13), [1, 5, 24]);
    const y0 = await run(m, x);
    applyLora(m, { r: 2, targetModules: ['value'] });
    perturbAdapters(m, 2);
    expect(maxAbsDiff(await run(m, x), y0)).toBeGreaterThan(1e-4);
    unloadLora(m);
    expect(await run(m, x)).toEqual(y0);
    x.dispose();
    m.dispose();
  });

  it('Conv2d: PEFT layout (A = conv(in, r, k, stride, padding), B = 1×1), forward vs the float64 reference, gradients only to A and B, merge parity', async () => {
    const m = new ConvNet(rt(), 3);
    applyLora(m, { r: 3, alpha: 6, targetModules: 'features\\.0', rng: new Rng(4) });
    perturbAdapters(m, 21);
    const c = m.features.at(0) as LoraConv2d;
    expect(c).toBeInstanceOf(LoraConv2d);
    expect(c.lora_A.weight.shape).toEqual([3, 3, 3, 3]);
    expect(c.lora_B.weight.shape).toEqual([8, 3, 1, 1]);
    const xs = [2, 3, 9, 9] as const;
    const xv = randArray(2 * 3 * 81, 14);
    const x = Tensor.from(rt(), xv, xs);
    const y = c.forward(x);
    const [w, b, A, B] = await Promise.all([c.weight.read(), c.bias!.read(), c.lora_A.weight.read(), c.lora_B.weight.read()]);
    const ref = loraConv2dRef(xv, xs, w, [8, 3, 3, 3], b, A, B, 3, 2, 2, 1);
    expect(y.shape).toEqual(ref.shape);
    expectClose(await y.read(), ref.y, { atol: 1e-4, rtol: 1e-4 }, 'conv forward');
    const dy = Tensor.from(rt(), randArray(y.size, 15), y.shape);
    backward(y, dy);
    expect(c.weight.grad).toBeNull();
    expect(c.bias!.grad).toBeNull();
    expect(c.lora_A.weight.grad).not.toBeNull();
    expect(c.lora_B.weight.grad).not.toBeNull();
    // dB[o, q] = s·Σ dy[n, o, i, j]·u[n, q, i, j] with u = conv(x, A): check against the reference
    const ua = conv2dPlainRef(xv, xs, A, [3, 3, 3, 3], null, 2, 1);
    const dyv = await dy.read();
    const dB = new Float64Array(8 * 3);
    const hw = ua.shape[2] * ua.shape[3];
    for (let n = 0; n < 2; n++) for (let o = 0; o < 8; o++) for (let q = 0; q < 3; q++) for (let p = 0; p < hw; p++) dB[o * 3 + q]! += 2 * dyv[(n * 8 + o) * hw + p]! * ua.y[(n * 3 + q) * hw + p]!;
    expectClose(await c.lora_B.weight.grad!.read(), dB, { atol: 1e-4, rtol: 1e-4 }, 'conv dB');
    const y0 = await run(c, x);
    c.merge();
    expectClose(await c.weight.read(), mergedWeightRef(w, A, B, 8, 3, 2), { atol: 1e-5, rtol: 1e-5 }, 'merged conv kernel');
    expectClose(await run(c, x), y0, { atol: 1e-4, rtol: 1e-4 }, 'merged conv output');
    c.unmerge();
    expectClose(await c.weight.read(), w, { atol: 1e-6, rtol: 0 });
    expect(() => new LoraConv2d(new Conv2d(rt(), 4, 4, 3, { groups: 2 }), { r: 2, alpha: 2 })).toThrow(/groups 2 is not supported/);
    expect(() => new LoraConv2d(new Conv2d(rt(), 4, 4, 3, { dilation: 2 }), { r: 2, alpha: 2 })).toThrow(/dilation/);
    for (const t of [x, y, dy]) t.dispose();
    m.dispose();
  });
});

describe('PEFT adapter files', () => {
  it('round trip: keys and config as PEFT writes them (checked by an independent parser); loading reproduces the outputs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'graft-lora-'));
    try {
      const m = await baseModel('mlp', () => new Mlp(rt()));
      applyLora(m, { r: 4, alpha: 8, dropout: 0.1, targetModules: ['query', 'value'], modulesToSave: ['classifier'], rng: new Rng(8) });
      perturbAdapters(m, 31);
      m.classifier.weight.write(randArray(72, 32));
      const x = await input('mlp');
      const y = await run(m, x);
      await saveLoraAdapter(m, dir, { baseModelNameOrPath: 'bert-base-uncased', taskType: 'TOKEN_CLS' });
      expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']); // no temp files left
      const { header, meta, bytes, start } = await rawHeader(join(dir, 'adapter_model.safetensors'));
      expect(meta).toEqual({ format: 'pt' });
      const targets = ['encoder.layer.0.attention.self.query', 'encoder.layer.0.attention.self.value', 'encoder.layer.1.attention.self.query', 'encoder.layer.1.attention.self.value'];
      const want = [...targets.flatMap((t) => [`base_model.model.${t}.lora_A.weight`, `base_model.model.${t}.lora_B.weight`]), 'base_model.model.classifier.weight', 'base_model.model.classifier.bias'];
      expect(Object.keys(header).sort()).toEqual(want.sort());
      for (const k of Object.keys(header)) expect(k).not.toMatch(/\.default\.|modules_to_save/);
      const sd = m.stateDict();
      for (const [k, h] of Object.entries(header)) {
        expect(h.dtype).toBe('F32');
        const t = sd.get(k.slice('base_model.model.'.length))!;
        expect(h.shape).toEqual(t.shape);
        const raw = bytes.subarray(start + h.data_offsets[0], start + h.data_offsets[1]);
        const vals = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        expect(vals).toEqual(await t.read());
      }
      const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(cfg)).toEqual([...Object.keys(cfg)].sort());
      expect(cfg).toMatchObject({
        peft_type: 'LORA',
        r: 4,
        lora_alpha: 8,
        lora_dropout: 0.1,
        target_modules: ['query', 'value'],
        bias: 'none',
        use_rslora: false,
        modules_to_save: ['classifier'],
        task_type: 'TOKEN_CLS',
        base_model_name_or_path: 'bert-base-uncased',
        fan_in_fan_out: false,
        inference_mode: true,
        init_lora_weights: true,
        use_dora: false,
        rank_pattern: {},
        alpha_pattern: {},
      });
      // a fresh base model + the adapter = the same outputs
      const m2 = await baseModel('mlp', () => new Mlp(rt()));
      const loaded = await loadLoraAdapter(m2, dir);
      expect(loaded.applied).toBe(true);
      expect(loaded.taskType).toBe('TOKEN_CLS');
      expect(await run(m2.eval(), x)).toEqual(y);
      // loading again into the same model checks the config instead of applying
      expect((await loadLoraAdapter(m2, dir)).applied).toBe(false);
      x.dispose();
      m.dispose();
      m2.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loading validates the config, every key and every shape (errors name the key and both shapes); nothing is copied on error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'graft-lora-'));
    try {
      const m = new Mlp(rt(), 9);
      applyLora(m, { r: 5, alpha: 10, targetModules: ['query'] });
      await saveLoraAdapter(m, dir);
      const cfgPath = join(dir, 'adapter_config.json');
      const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as Record<string, unknown>;
      const setCfg = (o: Record<string, unknown>) => writeFile(cfgPath, JSON.stringify({ ...cfg, ...o }));
      const fresh = () => new Mlp(rt(), 10);

      await setCfg({ r: 4 }); // the file's tensors have rank 5
      const target = fresh();
      const q = target.encoder.layer[0]!.attention.self.query;
      const qw = await q.weight.read();
      await expect(loadLoraAdapter(target, dir)).rejects.toThrow(ShapeError);
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(/encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight: adapter file has \[5, 24\], model has \[4, 24\]/);
      expect(await q.weight.read()).toEqual(qw);

      await setCfg({ peft_type: 'IA3' });
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(/peft_type is "IA3"/);
      await setCfg({ use_dora: true });
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(/DoRA/);
      await setCfg({ bias: 'all' });
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(CheckpointError);
      await setCfg({ rank_pattern: { query: 8 } });
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(/rank_pattern/);
      await setCfg({ target_modules: ['nothing_here'] });
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(/match no module/);
      await setCfg({});

      // an existing adapter with another alpha
      const other = fresh();
      applyLora(other, { r: 5, alpha: 7, targetModules: ['query'] });
      await expect(loadLoraAdapter(other, dir)).rejects.toThrow(/lora_alpha 7 vs 10/);

      // missing and unexpected keys
      const st = await SafetensorsFile.open(join(dir, 'adapter_model.safetensors'));
      const entries: [string, { shape: number[]; data: Float32Array }][] = [];
      for (const n of st.names) entries.push([n, await st.read(n)]);
      await st.close();
      const dropped = entries.filter(([k]) => !k.includes('layer.1.attention.self.query.lora_B'));
      dropped.push(['base_model.model.encoder.layer.0.attention.self.key.lora_A.weight', { shape: [5, 24], data: new Float32Array(120) }]);
      await writeSafetensors(join(dir, 'adapter_model.safetensors'), dropped);
      await expect(loadLoraAdapter(fresh(), dir)).rejects.toThrow(
        /missing \(1\): base_model\.model\.encoder\.layer\.1\.attention\.self\.query\.lora_B\.weight[\s\S]*unexpected \(1\): base_model\.model\.encoder\.layer\.0\.attention\.self\.key\.lora_A\.weight/,
      );
      m.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('parity with the PyTorch fixture (PEFT math, PEFT files written by scripts/fixtures/lora_peft.py)', () => {
  // expected outputs are float64 in PyTorch (stored as f32); graft runs f32 over sums of ≤ 40 terms per layer, 2
  // layers deep, outputs of size ≤ 10: measured max |diff| ≤ 1e-6, so 1e-5 leaves a 10× margin
  const TOL = { atol: 1e-5, rtol: 1e-5 };

  for (const fused of [true, false]) {
    it(`BERT-style MLP: base output, then the adapter (targets ["query", "value"], modules_to_save classifier), ${fused ? 'fused' : 'unfused'}, then merged`, async () => {
      const m = await baseModel('mlp', () => new Mlp(rt()));
      const x = await input('mlp');
      expectClose(await run(m, x), (await fx()).get('expected.mlp.base')!.data, TOL, 'base');
      const loaded = await loadLoraAdapter(m, join(FIX, 'lora-mlp-adapter'), { fused });
      expect(loaded.config).toMatchObject({ r: 4, alpha: 8, dropout: 0.1, targetModules: ['query', 'value'], modulesToSave: ['classifier'], useRslora: false });
      expect(loaded.baseModelNameOrPath).toBe('graft-fixture-mlp');
      expect(loraLayers(m).map(([n]) => n)).toHaveLength(4);
      m.eval();
      const want = (await fx()).get('expected.mlp.lora')!.data;
      expectClose(await run(m, x), want, TOL, 'with adapter');
      mergeLora(m);
      expectClose(await run(m, x), want, TOL, 'merged');
      x.dispose();
      m.dispose();
    });
  }

  it('ConvNet: base output, then the rsLoRA conv adapter (target_modules regex "features\\.(0|2)"), then merged', async () => {
    const m = await baseModel('conv', () => new ConvNet(rt()));
    const x = await input('conv');
    expectClose(await run(m, x), (await fx()).get('expected.conv.base')!.data, TOL, 'base');
    const loaded = await loadLoraAdapter(m, join(FIX, 'lora-conv-adapter'));
    expect(loaded.config).toMatchObject({ r: 3, alpha: 6, targetModules: 'features\\.(0|2)', useRslora: true });
    const layers = loraLayers(m);
    expect(layers.map(([n]) => n)).toEqual(['features.0', 'features.2']);
    expect(layers[0]![1].lora.scaling).toBeCloseTo(6 / Math.sqrt(3), 12);
    m.eval();
    const want = (await fx()).get('expected.conv.lora')!.data;
    expectClose(await run(m, x), want, TOL, 'with adapter');
    mergeLora(m);
    expectClose(await run(m, x), want, TOL, 'merged');
    x.dispose();
    m.dispose();
  });

  it.runIf(hasTorch)('reverse: adapters graft saves, applied by PyTorch (scripts/fixtures/lora_apply.py; runs only where /usr/bin/python3 has torch)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'graft-lora-py-'));
    try {
      for (const which of ['mlp', 'conv'] as const) {
        const m = which === 'mlp' ? await baseModel('mlp', () => new Mlp(rt())) : await baseModel('conv', () => new ConvNet(rt()));
        applyLora(
          m,
          which === 'mlp'
            ? { r: 3, alpha: 5, targetModules: ['attention.self.query', 'key'], modulesToSave: ['classifier'], rng: new Rng(40) }
            : { r: 2, alpha: 3, useRslora: true, targetModules: ['features.2', 'features.0'], rng: new Rng(41) },
        );
        perturbAdapters(m, 50);
        const x = await input(which);
        const y = await run(m.eval(), x);
        const out = join(dir, which);
        await saveLoraAdapter(m, out);
        const res = JSON.parse(execFileSync('/usr/bin/python3', ['scripts/fixtures/lora_apply.py', out, which], { encoding: 'utf8' })) as { shape: number[]; y: number[] };
        expect(res.y.length).toBe(y.length);
        expectClose(y, res.y, TOL, `${which}: graft vs PyTorch`);
        x.dispose();
        m.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('LoRA on BERT intermediate.dense (fused GELU fast path)', () => {
  it('changes the eval output when B is non-zero', async () => {
    const { bertConfig } = await import('../src/models/bert-config.js');
    const r = rt();
    const cfg = bertConfig({ vocabSize: 50, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 16 });
    const model = new BertModel(r, cfg, { rng: new Rng(3) });
    model.eval();
    const ids = Tensor.from(r, [1, 5, 7, 9], [1, 4], 'i32');
    const run = async () => noGrad(() => model.forward({ inputIds: ids }).lastHiddenState).read();
    const before = await run();
    applyLora(model, { r: 2, alpha: 4, targetModules: ['intermediate.dense'] });
    for (const [, l] of loraLayers(model)) l.lora_B.weight.write(new Float32Array(l.lora_B.weight.size).fill(0.5));
    const after = await run();
    expect(maxAbsDiff(before, after)).toBeGreaterThan(1e-3);
  });
});
