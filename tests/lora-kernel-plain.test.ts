// Fused LoRA linear kernel, variant 'plain' (no subgroups) and, where subgroups exist, 'sg' forced: the same awkward
// shapes as tests/lora-kernel.test.ts against the float64 CPU reference.
import { describe, it } from 'vitest';
import { LORA_FUSED_VARIANTS, defaultLoraVariant } from '../src/kernels/lora.js';
import { sgSupported } from '../src/kernels/matmul-variants.js';
import { useRuntime } from './helpers/gpu.js';
import { CASES, checkCase } from './lora-cases.js';

const rt = useRuntime();

describe('fused LoRA linear forward, the variants the default does not pick', () => {
  for (const c of CASES) {
    it(`M ${c.M}, in ${c.K}, out ${c.N}, r ${c.R}${c.bias === false ? ', no bias' : ''}`, async () => {
      const others = LORA_FUSED_VARIANTS.filter((v) => v !== defaultLoraVariant(rt()) && (v !== 'sg' || sgSupported(rt())));
      await checkCase(rt, c, others);
    });
  }
});
