// Shader manifest: every shaders/*.wgsl is listed here, imported by a source file, and (if it has an entry point) compiles on this adapter.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useRuntime } from './helpers/gpu.js';
import { formatCompileMessages } from '../src/runtime/pipelines.js';

/** Kernels with at least one @compute entry point. */
const KERNELS = [
  'accumulate', 'accumulate_vec4', 'activation_bwd', 'adamw', 'attention_bwd_dkdv', 'attention_bwd_dq', 'attention_bwd_prep',
  'attention_fwd', 'attention_repack', 'batchnorm', 'batchnorm_train_apply', 'batchnorm_train_bwd_dx',
  'batchnorm_train_bwd_finalize', 'batchnorm_train_bwd_sums', 'batchnorm_train_finalize',
  'batchnorm_train_stats', 'batchnorm_vec4', 'binary', 'cast_f16_f32', 'cast_f32_f16', 'conv2d_bwd_data',
  'conv2d_bwd_weight', 'conv2d_bwd_weight_reduce', 'conv2d_col2im', 'conv2d_dw', 'conv2d_im2row', 'conv2d_pw', 'conv2d_reg', 'conv2d_row',
  'conv2d_sg', 'conv2d_tiled', 'cross_entropy', 'cross_entropy_reduce', 'cross_entropy_scale', 'dropout',
  'embedding', 'embedding_bwd_count', 'embedding_bwd_fill', 'embedding_bwd_gather', 'embedding_bwd_scan',
  'embedding_bwd_sort', 'fill', 'global_avg_pool', 'grad_norm_finalize', 'grad_norm_partial',
  'grad_norm_scale', 'layernorm', 'layernorm_bwd_dx', 'layernorm_bwd_partial', 'layernorm_bwd_reduce',
  'layernorm_bwd_train_fwd', 'lora_linear_plain', 'lora_linear_sg', 'matmul_rb', 'matmul_sg',
  'matmul_skinny', 'matmul_tiled', 'pool2d', 'pool2d_bwd_argmax', 'pool2d_bwd_avg', 'pool2d_bwd_global',
  'pool2d_bwd_max', 'reduce', 'reduce_argmax', 'sgd', 'softmax', 'softmax_bwd', 'transpose', 'unary',
];
/** Kernel bodies their wrapper joins with fragments before compiling (compiled by tests/matmul*.test.ts, tests/lora*.test.ts). */
const COMPOSED = new Set(['matmul_rb', 'matmul_sg', 'matmul_skinny', 'matmul_tiled', 'lora_linear_plain', 'lora_linear_sg']);
/** Fragments joined into kernels by their wrapper (no entry point of their own). */
const FRAGMENTS = [
  'lora_common', 'lora_io_scalar', 'lora_io_vec4', 'matmul_common', 'matmul_io_scalar', 'matmul_io_vec4',
];

const rt = useRuntime();
const onDisk = readdirSync('shaders').filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5)).sort();

describe('shader manifest', () => {
  it('lists every shader file exactly once', () => {
    expect([...KERNELS, ...FRAGMENTS].sort()).toEqual(onDisk);
    for (const c of COMPOSED) expect(KERNELS).toContain(c);
  });

  it('every shader is imported by some source file', () => {
    const imported = execFileSync('grep', ['-rhoE', 'shaders/[a-z0-9_]+\\.wgsl', 'src'], { encoding: 'utf8' });
    const used = new Set(imported.split('\n').filter(Boolean).map((s) => s.slice('shaders/'.length, -'.wgsl'.length)));
    expect(onDisk.filter((n) => !used.has(n))).toEqual([]);
  });

  it('every kernel compiles on this adapter without errors', async () => {
    const r = rt();
    const failures: string[] = [];
    for (const name of KERNELS) {
      if (COMPOSED.has(name)) continue;
      const code = readFileSync(`shaders/${name}.wgsl`, 'utf8');
      if (/^enable f16;/m.test(code) && !r.features.f16) continue; // f16-only casts need shader-f16
      if (/^enable subgroups;/m.test(code) && !r.features.subgroups) continue; // subgroup variants need the feature
      const m = r.device.createShaderModule({ label: name, code });
      const errors = (await m.getCompilationInfo()).messages.filter((x) => x.type === 'error');
      if (errors.length) failures.push(formatCompileMessages(name, code, errors));
    }
    expect(failures).toEqual([]);
  });
});
