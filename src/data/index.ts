// graft data pipeline: datasets and loaders, deterministic splits/shuffles, image augmentation, text/MLM batching.
export {
  ArrayDataset,
  LabelledArrayDataset,
  subset,
  mapDataset,
  labelsOf,
  isLabelled,
  type Dataset,
  type Labelled,
  type LabelledDataset,
  type Subset,
  type ImageExample,
  type TextExample,
} from './dataset.js';
export { Rng, deriveSeed, checkSeed } from './rng.js';
export { parseIdx, readIdx, type IdxArray, type IdxDType, type IdxData } from './idx.js';
export { ByteImageDataset } from './byte-images.js';
export { loadFashionMnist, loadIdxImagePair, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, type IdxImageOptions } from './fashion-mnist.js';
export { loadMnist, mnistPackageDir, MNIST_CLASSES, type MnistOptions } from './mnist.js';
export {
  loadSpamAssassin,
  spamAssassinPackageDir,
  subjectAndBody,
  splitHeaders,
  headerValue,
  SPAM_ASSASSIN_GROUPS,
  SPAM_ASSASSIN_CLASSES,
  type SpamAssassinGroup,
  type SpamAssassinOptions,
  type SpamExample,
} from './spam-assassin.js';
export { loadImageFolder, ImageFolderDataset, type ImageFolderOptions } from './image-folder.js';
export { parseCsv, type CsvRecord, type CsvParseOptions } from './csv.js';
export { loadJsonl, loadCsv, type TextFileOptions, type CsvFileOptions } from './text-files.js';
export { stratifiedSplit, randomSplit, stratifiedIndices, randomIndices, type SplitOptions } from './split.js';
export { DataLoader, type DataLoaderOptions, type LoaderState, type BatchContext } from './loader.js';
export {
  grayscaleToRgb,
  resize,
  crop,
  centerCrop,
  randomCrop,
  horizontalFlip,
  randomHorizontalFlip,
  normalize,
  imagePipeline,
  type ResizeOptions,
  type RandomCropOptions,
  type ImagePipeline,
} from './image-transforms.js';
export { toBatch, type LabelledImageBatch } from './image-batch.js';
export { encodeBatch, textCollate, type TextBatchOptions, type TextBatch } from './text-batch.js';
export { maskTokens, mlmBatch, mlmCollate, specialTokenIds, IGNORE_INDEX, type MaskOptions, type MaskedTokens, type MlmBatch } from './mlm.js';
export { imageBatchTensors, textBatchTensors } from './tensors.js';
