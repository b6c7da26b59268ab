// graft.peft: LoRA adapters with PEFT semantics (injection by module pattern, merge/unmerge, PEFT adapter files), Houlsby adapters, prompt tuning and their adapter-only files.
export { loraScaling, resolveLoraConfig, moduleMatcher, fusedByDefault, type LoraOptions, type LoraConfig, type LoraInit } from './config.js';
export { loraLinear, loraConv2d, type LoraLinearOptions, type LoraConv2dOptions } from './functional.js';
export type { LoraLayerOptions, LoraLayerState } from './layer.js';
export { LoraLinear } from './lora-linear.js';
export { LoraConv2d } from './lora-conv.js';
export {
  applyLora,
  loraLayers,
  loraConfigOf,
  modulesToSaveOf,
  mergeLora,
  unmergeLora,
  setLoraEnabled,
  mergeAndUnload,
  unloadLora,
  type LoraLayer,
  type LoraApplied,
} from './inject.js';
export {
  saveLoraAdapter,
  loadLoraAdapter,
  readAdapterConfig,
  parseAdapterConfig,
  adapterConfigJson,
  adapterTensors,
  ADAPTER_WEIGHTS,
  ADAPTER_CONFIG,
  PEFT_PREFIX,
  type AdapterMeta,
  type AdapterConfigFile,
  type LoadedAdapter,
} from './adapter-io.js';
export { addAdapters, removeAdapters, trainAdaptersOnly, BottleneckAdapter, type AdapterOptions } from './adapters.js';
export { createSoftPrompt, promptForward, freezeForPromptTuning, SoftPrompt, type SoftPromptOptions } from './prompt.js';
export {
  saveHoulsbyAdapter,
  savePromptTuning,
  loadTunedAdapter,
  readTunedConfig,
  isTunedAdapterDir,
  TUNED_WEIGHTS,
  TUNED_CONFIG,
  PROMPT_KEY,
  type TunedKind,
  type TunedConfig,
  type TunedMeta,
  type LoadedTuned,
} from './tuned-io.js';
