// Pretrained model families: torchvision and Keras ResNets, their loaders, and the known-model registry.
export { ResNet, resnet18, resnet34, resnet50, resnet101, resnet152, torchvisionResnetShapes } from './resnet.js';
export { KerasResNet } from './keras-resnet50.js';
export { loadKerasResNet } from './load-tfjs.js';
export { loadTorchvisionResnet } from './load-torchvision.js';
export { loadResnetSafetensors } from './load-safetensors.js';
export { IMAGENET_CLASSES, imagenetLabel } from './imagenet-classes.js';
export { KNOWN_MODELS, knownModel } from './registry.js';
export { BertModel, BertForSequenceClassification } from './bert.js';
export { loadBert, loadBertForSequenceClassification, saveBert, loadBertTokenizer } from './bert-load.js';
export { readBertConfig, parseBertConfig, bertConfig, type BertConfig } from './bert-config.js';
export { meanPool, clsPool, l2Normalize } from './bert-pooling.js';
export { embedTexts, bertBatch } from './bert-embed.js';
