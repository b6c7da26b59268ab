// Autograd engine wiring: accumulation, diamonds, pre-assigned grads, grad modes, detach, retainGraph, freeing.
import { describe, expect, it } from 'vitest';
import { Tensor, scope } from '../src/tensor.js';
import { FlatArena } from '../src/runtime/arena.js';
import * as F from '../src/autograd/functional.js';
import { backward, detach, freeGraph } from '../src/autograd/engine.js';
import { enableGrad, isGradEnabled, noGrad, setGradEnabled } from '../src/autograd/grad-mode.js';
import * as ref from './ref/autograd-ref.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { gpuVsRef, inp } from './autograd-harness.js';

const rt = useRuntime();

function param(data: ArrayLike<number>, shape: number[]): Tensor {
  const t = Tensor.from(rt(), data, shape);
  t.requiresGrad = true;
  return t;
}

async function live(): Promise<number> {
  await rt().sync();
  return rt().pool.stats.live;
}

describe('autograd engine', () => {
  it('x * x accumulates both uses: d/dx = 2x', async () => {
    await gpuVsRef(rt(), 'x*x', [inp([3, 17])], ([x]) => F.mul(x!, x!), ([x]) => ref.mul(x!, x!));
    const x = param([1.5, -2, 3], [3]);
    const y = F.sum(F.mul(x, x));
    backward(y);
    expectClose(await x.grad!.read(), [3, -4, 6], { atol: 1e-6 });
  });

  it('diamond graph and a tensor feeding several ops', async () => {
    await gpuVsRef(
      rt(),
      'diamond',
      [inp([17, 3]), inp([3])],
      ([x, w]) => {
        const a = F.add(F.mul(x!, 2), w!); // used by exp, sin and the final product
        return F.mul(F.mul(F.exp(a), F.sin(a)), F.sub(a, w!));
      },
      ([x, w]) => {
        const a = ref.add(ref.affine(x!, 2, 0), w!);
        return ref.mul(ref.mul(ref.unary(a, 'exp'), ref.unary(a, 'sin')), ref.sub(a, w!));
      },
    );
  });

  it('outputs record gradFn / requiresGrad; inputs without grad record nothing', () => {
    const x = param([1, 2], [2]);
    const c = Tensor.from(rt(), [3, 4], [2]);
    const y = F.mul(x, c);
    expect(y.requiresGrad).toBe(true);
    expect(y.gradFn?.name).toBe('mul');
    const z = F.mul(c, c);
    expect(z.requiresGrad).toBe(false);
    expect(z.gradFn).toBeNull();
    expect(() => backward(z)).toThrow(/does not require grad/);
    expect(() => backward(y)).toThrow(/one-element/);
    freeGraph(y);
    for (const t of [x, c, y, z]) t.dispose();
  });

  it('gradients accumulate across backward calls; leaf grads never alias each other', async () => {
    const a = param([1, 2, 3], [3]);
    const b = param([4, 5, 6], [3]);
    backward(F.sum(F.add(a, b))); // both get the same upstream gradient: must not share a buffer
    backward(F.sum(F.mul(a, 3)));
    expectClose(await a.grad!.read(), [4, 4, 4]);
    expectClose(await b.grad!.read(), [1, 1, 1]);
    // A caller's gradOutput must not become a leaf's grad buffer either.
    const c = param([1, 2], [2]);
    const g = Tensor.from(rt(), [5, 7], [2]);
    backward(F.reshape(c, [2]), g);
    backward(F.mul(c, 2), g);
    expectClose(await c.grad!.read(), [15, 21]);
    expectClose(await g.read(), [5, 7]);
    for (const t of [a, b, c, g]) {
      t.grad?.dispose();
      t.dispose();
    }
  });

  it('accumulates in place into a pre-assigned grad (a FlatArena view) without touching its neighbours', async () => {
    const arena = new FlatArena(rt(), [[3], [5]]);
    const [g0, g1] = arena.tensors as [Tensor, Tensor];
    g1.write([9, 9, 9, 9, 9]);
    const x = param([1, 2, 3], [3]);
    x.grad = g0;
    backward(F.sum(F.mul(x, x)));
    backward(F.sum(x));
    expect(x.grad).toBe(g0);
    expectClose(await g0.read(), [3, 5, 7]);
    expectClose(await g1.read(), [9, 9, 9, 9, 9]);
    x.dispose();
    arena.dispose();
  });

  it('noGrad records nothing, enableGrad inside it does, setGradEnabled for async code', () => {
    const x = param([1, 2], [2]);
    expect(isGradEnabled()).toBe(true);
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      const inner = enableGrad(() => F.mul(x, x));
      expect(inner.gradFn).not.toBeNull();
      freeGraph(inner);
      inner.dispose();
      return F.mul(x, x);
    });
    expect(isGradEnabled()).toBe(true);
    expect(y.gradFn).toBeNull();
    expect(y.requiresGrad).toBe(false);
    const prev = setGradEnabled(false);
    expect(F.exp(x).gradFn).toBeNull();
    setGradEnabled(prev);
    expect(() => noGrad(() => Promise.resolve(1))).toThrow(/synchronous/);
    expect(isGradEnabled()).toBe(true);
    x.dispose();
    y.dispose();
  });

  it('detach shares data and stops gradients', async () => {
    const x = param([1, -2, 3], [3]);
    const d = detach(x);
    expect(d.requiresGrad).toBe(false);
    expect(d.gradFn).toBeNull();
    backward(F.sum(F.mul(x, d))); // d/dx (x · const) = const
    expectClose(await x.grad!.read(), [1, -2, 3]);
    x.grad?.dispose();
    x.dispose();
    expectClose(await d.read(), [1, -2, 3]);
    d.dispose();
  });

  it('retainGraph allows a second backward; without it the second one throws', async () => {
    const x = param([0.5, 1], [2]);
    const y = F.sum(F.exp(x));
    backward(y, undefined, { retainGraph: true });
    backward(y);
    const e = [Math.exp(0.5), Math.exp(1)];
    expectClose(await x.grad!.read(), [2 * e[0]!, 2 * e[1]!], { rtol: 1e-5 });
    expect(() => backward(y)).toThrow(/second time/);
    y.dispose();
    x.grad?.dispose();
    x.dispose();
  });

  it('frees saved tensors after backward and intermediate grads once consumed', async () => {
    const x = param(randArray(1000, 1), [10, 100]);
    const w = param(randArray(100, 2), [100]);
    const base = await live();
    const loss = scope(rt(), () => F.mean(F.tanh(F.mul(F.exp(F.mul(x, w)), F.sigmoid(x)))));
    const during = await live();
    expect(during).toBeGreaterThan(base + 1); // saved activations held by the graph
    backward(loss);
    expect(await live()).toBe(base + 3); // loss + x.grad + w.grad
    loss.dispose();
    x.grad!.dispose();
    w.grad!.dispose();
    x.grad = null;
    w.grad = null;
    expect(await live()).toBe(base);
    // A graph that is never back-propagated is released by freeGraph.
    const y = scope(rt(), () => F.sum(F.exp(F.mul(x, w))));
    freeGraph(y);
    y.dispose();
    expect(await live()).toBe(base);
    x.dispose();
    w.dispose();
  });

  it('non-scalar roots take a gradOutput; deep chains do not overflow the stack', async () => {
    const x = param([1, 2, 3], [3]);
    const y = F.mul(x, 2);
    backward(y, Tensor.from(rt(), [1, 10, 100], [3]));
    expectClose(await x.grad!.read(), [2, 20, 200]);
    x.grad!.dispose();
    x.grad = null;
    const z = scope(rt(), () => {
      let h = x;
      for (let i = 0; i < 3000; i++) h = F.add(h, 0.001);
      return F.sum(h);
    });
    backward(z);
    expectClose(await x.grad!.read(), [1, 1, 1]);
    for (const t of [x, y, z]) {
      t.grad?.dispose();
      t.dispose();
    }
  });

  it('backward on a leaf adds the seed to its grad', async () => {
    const x = param([4], [1]);
    backward(x);
    backward(x);
    expectClose(await x.grad!.read(), [2]);
    x.grad!.dispose();
    x.dispose();
  });
});

describe('Tensor.backward hook', () => {
  it('loss.backward() runs the engine and Tensor.shared tracks views', async () => {
    const r = rt();
    const x = Tensor.from(r, [1, -2, 3], [3]);
    x.requiresGrad = true;
    const y = F.sum(F.mul(x, x));
    y.backward();
    expect(Array.from(await x.grad!.read())).toEqual([2, -4, 6]);
    expect(x.shared).toBe(false);
    const v = x.reshape([3]);
    expect(x.shared).toBe(true);
    v.dispose();
    expect(x.shared).toBe(false);
    [x, y, x.grad!].forEach((t) => t.dispose());
  });
});
