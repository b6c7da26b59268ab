// Finds a WebGPU implementation: the host's navigator.gpu (Deno, browsers) or dawn.node (Node).
import { AdapterError } from './errors.js';

export interface GpuRequest {
  /** 'high-performance' | 'low-power' adapter hint. */
  powerPreference?: GPUPowerPreference;
  /** Extra dawn.node options, e.g. ['adapter=NAME', 'backend=vulkan'] (Node only). */
  dawnOptions?: string[];
}

/**
 * dawn.node instances, kept referenced for the life of the process: if the GPU object is
 * garbage-collected while a device lives, Dawn's event processing crashes on a freed mutex.
 */
const instances = new Map<string, GPU>();

/** Resolve a GPU object. Uses navigator.gpu when the host has one, else loads the `webgpu` npm package. */
export async function getGPU(req: GpuRequest = {}): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu && !req.dawnOptions) return nav.gpu;
  const key = (req.dawnOptions ?? []).join('\n');
  const known = instances.get(key);
  if (known) return known;
  let mod: { create(options: string[]): GPU; globals: object };
  try {
    const name = 'webgpu';
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (e) {
    throw new AdapterError(
      `no navigator.gpu in this host and the 'webgpu' (dawn.node) package could not be loaded: ${(e as Error).message}`,
    );
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create(req.dawnOptions ?? []);
  instances.set(key, gpu);
  return gpu;
}

/** Request an adapter or fail loudly with what is needed to get one. */
export async function getAdapter(req: GpuRequest = {}): Promise<GPUAdapter> {
  const gpu = await getGPU(req);
  const adapter = await gpu.requestAdapter({ powerPreference: req.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new AdapterError(
      'no WebGPU adapter found. On Linux without a GPU install a Vulkan driver: ' +
        'libvulkan1 and mesa-vulkan-drivers >= 24 (Debian bookworm-backports); see README "Adapter requirements".',
    );
  }
  return adapter;
}
