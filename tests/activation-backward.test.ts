// Activation backward (relu, exact GELU, tanh-GELU, tanh, sigmoid): CPU reference vs finite differences, GPU vs CPU.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../src/tensor.js';
import { activationBackward, type BackwardActivation } from '../src/kernels/activation-backward.js';
import { ShapeError } from '../src/runtime/errors.js';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { randArray } from './helpers/rand.js';
import { activationBackwardRef, activationRef, erfRef, numericGrad } from './ref/transformer-backward.js';

const rt = useRuntime();
const OPS: BackwardActivation[] = ['relu', 'gelu', 'gelu_tanh', 'tanh', 'sigmoid'];

describe('activation backward: CPU reference', () => {
  it('erfRef matches known values', () => {
    // erf(0.5), erf(1), erf(2), erf(3) to 15 digits (Abramowitz & Stegun table 7.1).
    expectClose([erfRef(0.5), erfRef(1), erfRef(-2), erfRef(3)], [0.520499877813047, 0.842700792949715, -0.995322265018953, 0.999977909503001], { atol: 1e-14, rtol: 0 });
  });

  for (const op of OPS) {
    it(`${op}: backward matches central differences`, () => {
      // Avoid x = 0 for relu (kink); everything else is smooth.
      const x = Float64Array.from(randArray(40, 11, -4, 4), (v) => (Math.abs(v) < 1e-3 ? 0.5 : v));
      const dy = Float64Array.from(randArray(40, 12));
      const f = (xx: Float64Array) => {
        let s = 0;
        for (let i = 0; i < xx.length; i++) s += dy[i]! * activationRef(xx[i]!, op);
        return s;
      };
      const idx = [...Array(40).keys()];
      expectClose(activationBackwardRef(x, dy, op), numericGrad(f, x, idx), { atol: 1e-8, rtol: 1e-6 }, op);
    });
  }
});

describe('activation backward: GPU vs CPU', () => {
  for (const op of OPS) {
    it(`${op} over awkward sizes`, async () => {
      for (const shape of [[1], [3], [17], [33], [255], [1000], [3, 17, 65]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = randArray(n, n + 1, -6, 6);
        // Special points: exact zero, large magnitudes (overflow guards), tiny values.
        const specials = [0, 20, -20, 1e-20, -90, 90];
        for (let i = 0; i < Math.min(n, specials.length); i++) x[i] = specials[i]!;
        const dy = randArray(n, n + 2);
        const tx = Tensor.from(rt(), x, shape);
        const tdy = Tensor.from(rt(), dy, shape);
        const dx = activationBackward(tx, tdy, op);
        expect(dx.shape).toEqual(shape);
        expectClose(await dx.read(), activationBackwardRef(x, dy, op), { atol: 1e-7, rtol: 2e-6 }, `${op} [${shape}]`);
        for (const t of [tx, tdy, dx]) t.dispose();
      }
    });
  }

  it('rejects mismatched shapes and dtypes', () => {
    const a = Tensor.from(rt(), [1, 2, 3], [3]);
    const b = Tensor.from(rt(), [1, 2], [2]);
    const c = Tensor.from(rt(), [1, 2, 3], [3], 'i32');
    expect(() => activationBackward(a, b, 'relu')).toThrow(ShapeError);
    expect(() => activationBackward(a, c, 'gelu')).toThrow(/f32/);
    for (const t of [a, b, c]) t.dispose();
  });
});
