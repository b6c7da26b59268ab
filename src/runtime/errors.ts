// Typed errors the engine throws: callers can tell user mistakes from engine/GPU failures.

/** Base class of every error graft throws on purpose. */
export class GraftError extends Error {
  override name = 'GraftError';
}

/** No WebGPU adapter/device could be obtained. */
export class AdapterError extends GraftError {
  override name = 'AdapterError';
}

/** A WGSL shader failed to compile or a pipeline failed to build; names kernel and line. */
export class ShaderError extends GraftError {
  override name = 'ShaderError';
}

/** Validation/out-of-memory/internal error reported by the GPU device, or device loss. */
export class DeviceError extends GraftError {
  override name = 'DeviceError';
}

/** Shapes or dtypes that do not fit the operation. */
export class ShapeError extends GraftError {
  override name = 'ShapeError';
}

/** A checkpoint/weights file is corrupt, truncated, or does not match the model; names the tensor. */
export class CheckpointError extends GraftError {
  override name = 'CheckpointError';
}
