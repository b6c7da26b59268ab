// Public API of graft: runtime, tensors, kernels.
export { Runtime, type RuntimeOptions, type AdapterSummary, type DispatchOptions } from './runtime/runtime.js';
export { GraftError, AdapterError, ShaderError, DeviceError, ShapeError } from './runtime/errors.js';
export { f32, i32, type ParamValue } from './runtime/params.js';
export type { KernelDef, Constants } from './runtime/pipelines.js';
export { Tensor, scope, keep, numel, type DType, type Shape } from './tensor.js';
export { cast } from './kernels/cast.js';
export * from './autograd/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export { FlatArena } from './runtime/arena.js';
export * from './models/index.js';
export * as image from './image/index.js';
export { SafetensorsFile, writeSafetensors } from './io/safetensors.js';
export { CheckpointReader } from './io/sharded.js';
export { TfjsLayersModel } from './io/tfjs-layers.js';
export { WordPieceTokenizer } from './text/wordpiece.js';
export { CheckpointError } from './runtime/errors.js';
export * as data from './data/index.js';
