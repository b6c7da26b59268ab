// graft.nn: torch.nn-style modules with PyTorch checkpoint key names.
export { Module, matcher, type Layer, type LoadResult, type StateDictLike } from './module.js';
export { Linear, Conv2d, BatchNorm2d, LayerNorm, Embedding, type Conv2dOptions, type BatchNormOptions } from './layers.js';
export { ReLU, GELU, Tanh, Sigmoid, Identity, Dropout, Flatten, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Sequential } from './simple.js';
export { MultiheadSelfAttention, TransformerEncoderLayer, type AttentionCallOpts, type EncoderLayerOptions } from './transformer.js';
export * as init from './init.js';
export { Rng, defaultRng, manualSeed, toRng } from '../autograd/random.js';
