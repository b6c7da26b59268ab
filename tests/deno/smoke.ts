// Deno smoke test (run by tests/deno.test.ts): the esbuild bundle under Deno's built-in WebGPU — init, a matmul, compare.
import { Runtime, Tensor, matmul } from '../../dist/index.js';

const rt = await Runtime.create();
const [M, K, N] = [17, 33, 9];
const a = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
const b = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
const ref = new Float64Array(M * N);
for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) ref[i * N + j] += a[i * K + k]! * b[k * N + j]!;
const out = await matmul(Tensor.from(rt, a, [M, K]), Tensor.from(rt, b, [K, N])).read();
let maxDiff = 0;
for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i]! - ref[i]!));
console.log(JSON.stringify({ adapter: rt.summary().description, features: rt.features, maxDiff }));
rt.destroy();
if (!(maxDiff < 1e-4)) throw new Error(`deno matmul mismatch: max |diff| ${maxDiff}`);
