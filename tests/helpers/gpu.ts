// Shared GPU runtime for a test file: no adapter is a hard failure, never a skip or CPU fallback.
import { afterAll, beforeAll } from 'vitest';
import { Runtime } from '../../src/runtime/runtime.js';

/** Create one Runtime for the file; `get()` returns it inside tests. */
export function useRuntime(): () => Runtime {
  let rt: Runtime | undefined;
  beforeAll(async () => {
    rt = await Runtime.create();
  });
  afterAll(() => rt?.destroy());
  return () => {
    if (!rt) throw new Error('GPU runtime was not created (see beforeAll error: no WebGPU adapter?)');
    return rt;
  };
}
