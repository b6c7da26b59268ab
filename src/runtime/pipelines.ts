// Compiles WGSL kernels into compute pipelines, cached by (kernel, specialisation constants).
import { ShaderError } from './errors.js';

/** A WGSL compute kernel: its name (for errors and caching) and source text. */
export interface KernelDef {
  name: string;
  code: string;
  entry?: string;
}

export type Constants = Record<string, number | boolean>;

const debugShaders = (): boolean => {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  return !!env?.GRAFT_DEBUG_SHADERS;
};

function keyOf(k: KernelDef, constants?: Constants): string {
  const base = k.entry && k.entry !== 'main' ? `${k.name}:${k.entry}` : k.name;
  if (!constants) return base;
  const keys = Object.keys(constants).sort();
  return base + '|' + keys.map((n) => `${n}=${Number(constants[n])}`).join(',');
}

/** Format compiler messages as `kernel:line:col: message` plus the offending source line. */
export function formatCompileMessages(name: string, code: string, msgs: readonly GPUCompilationMessage[]): string {
  const lines = code.split('\n');
  return msgs
    .map((m) => {
      const src = m.lineNum > 0 ? `\n    ${lines[m.lineNum - 1]?.trim() ?? ''}` : '';
      return `${name}.wgsl:${m.lineNum}:${m.linePos}: ${m.type}: ${m.message}${src}`;
    })
    .join('\n');
}

/**
 * Pipelines are created synchronously so kernels can be recorded without awaiting; compile and
 * validation errors are collected asynchronously and thrown by `check()` (the runtime calls it on
 * every sync/readback), each naming the kernel and WGSL line.
 */
export class PipelineCache {
  private pipelines = new Map<string, GPUComputePipeline>();
  private modules = new Map<string, GPUShaderModule>();
  private sources = new Map<string, string>();
  private pending: Promise<string | null>[] = [];
  /** Number of pipelines compiled (cache misses). */
  compiled = 0;

  constructor(private device: GPUDevice) {}

  /** Get (compiling on first use) the pipeline for a kernel and its override constants. */
  get(k: KernelDef, constants?: Constants): GPUComputePipeline {
    const key = keyOf(k, constants);
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const known = this.sources.get(k.name);
    if (known !== undefined && known !== k.code) {
      throw new ShaderError(`two different kernels share the name '${k.name}'`);
    }
    this.sources.set(k.name, k.code);
    let module = this.modules.get(k.name);
    if (!module) {
      if (debugShaders()) console.error(`// ---- ${k.name}.wgsl ----\n${k.code}`);
      this.device.pushErrorScope('validation');
      const m = this.device.createShaderModule({ label: k.name, code: k.code });
      const scope = this.device.popErrorScope();
      this.pending.push(
        Promise.all([m.getCompilationInfo(), scope]).then(([info, err]) => {
          const errors = info.messages.filter((x) => x.type === 'error');
          if (!errors.length && !err) return null;
          const detail = errors.length ? formatCompileMessages(k.name, k.code, errors) : err!.message;
          return `kernel '${k.name}' failed to compile:\n${detail}`;
        }),
      );
      module = m;
      this.modules.set(k.name, module);
    }
    const constantsNum: Record<string, number> = {};
    for (const [n, v] of Object.entries(constants ?? {})) constantsNum[n] = Number(v);
    this.device.pushErrorScope('validation');
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: 'auto',
      compute: { module, entryPoint: k.entry ?? 'main', constants: constantsNum },
    });
    this.pending.push(
      this.device.popErrorScope().then((err) => (err ? `kernel '${key}' failed to build its pipeline: ${err.message}` : null)),
    );
    this.pipelines.set(key, pipeline);
    this.compiled++;
    return pipeline;
  }

  /** Throw a ShaderError for the first kernel that failed to compile since the last check. */
  async check(): Promise<void> {
    if (!this.pending.length) return;
    const results = await Promise.all(this.pending);
    this.pending = [];
    const bad = results.filter((r): r is string => r !== null);
    if (bad.length) throw new ShaderError(bad.join('\n'));
  }
}
